// SPDX-License-Identifier: MIT
// RoomHost without XMPP: a tiny in-memory MUC delivers presence and payload text the way a
// server would (every groupchat message to every occupant, the sender included). Used by the
// RoomHost tests and by the OTP room-mode tests.
#pragma once

#include <catch2/catch.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mpotr/transport/room_host.h"
#include "mpotr/transport/stanza.h"

namespace mpotr::test {

using transport::HostOutput;
using transport::Notice;
using transport::Occupant;
using transport::RoomHost;
using transport::RoomHostConfig;

inline constexpr const char* kRoom = "room@conference.localhost";

struct Client {
  std::string nick;
  std::unique_ptr<DeterministicRng> rng;
  std::unique_ptr<TrustStore> trust;
  std::unique_ptr<RoomHost> host;
  std::vector<Notice> notices;
  bool present = false;
};

class HostMuc {
 public:
  explicit HostMuc(TimeMs settle = 0) : m_settle(settle) {}

  Client& add(const std::string& nick, std::uint64_t seed) {
    auto c = std::make_unique<Client>();
    c->nick = nick;
    c->rng = std::make_unique<DeterministicRng>(seed);
    c->trust = std::make_unique<TrustStore>();
    auto id = IdentityKey::generate(*c->rng);
    REQUIRE(id.ok());
    c->host = std::make_unique<RoomHost>(RoomHostConfig{kRoom, nick + "@localhost", {}, m_settle}, std::move(id).value(),
                                         c->trust.get());
    m_clients.push_back(std::move(c));
    return *m_clients.back();
  }
  Client& get(const std::string& nick) {
    for (auto& c : m_clients) {
      if (c->nick == nick) return *c;
    }
    FAIL("no client " << nick);
    throw std::logic_error("unreachable");
  }
  // MUC join: the newcomer gets everyone's presence then its own; the others get its presence.
  void join(const std::string& nick, bool shows_jids = true) {
    Client& c = get(nick);
    for (auto& o : m_clients) {
      if (o->present) {
        absorb(c, c.host->on_occupant_present(presence_of(*o), now, *c.rng));
      }
    }
    c.present = true;
    absorb(c, c.host->on_self_present(nick, shows_jids, now, *c.rng));
    for (auto& o : m_clients) {
      if (o->present && o.get() != &c) {
        absorb(*o, o->host->on_occupant_present(presence_of(c), now, *o->rng));
      }
    }
  }
  void part(const std::string& nick) {
    get(nick).present = false;
    for (auto& o : m_clients) {
      if (o->present) absorb(*o, o->host->on_occupant_gone(nick, now, *o->rng));
    }
  }
  void absorb(Client& c, HostOutput out) {
    for (auto& p : out.payloads) m_queue.push_back({c.nick, transport::encode_payload_text(view(p))});
    for (auto& n : out.notices) c.notices.push_back(std::move(n));
    // A presence with the new marker, sent like every stanza: in order with the payloads.
    if (out.marker_changed && c.present) m_queue.push_back({c.nick, std::nullopt});
  }
  // The presence a client's occupants see: with its current participation marker.
  static Occupant presence_of(const Client& c) {
    return Occupant{c.nick, c.nick + "@localhost", true, c.host->marker() == transport::Marker::Out};
  }
  void run() {
    for (int steps = 0; !m_queue.empty() && steps < 100000; ++steps) {
      auto [from, text] = m_queue.front();
      m_queue.pop_front();
      Client& sender = get(from);
      for (auto& c : m_clients) {
        if (!c->present) continue;
        if (text) {
          absorb(*c, c->host->on_payload(from, *text, now, *c->rng));
        } else if (c.get() != &sender) {
          absorb(*c, c->host->on_occupant_present(presence_of(sender), now, *c->rng));
        }
      }
    }
  }
  void advance(TimeMs ms) {
    now += ms;
    for (auto& c : m_clients) {
      if (c->present) {
        auto w = c->host->wake_at();
        if (w && *w <= now) absorb(*c, c->host->tick(now, *c->rng));
      }
    }
    run();
  }
  // What the room delivers next: a payload text from a nick, or (nullopt) its new presence.
  std::deque<std::pair<std::string, std::optional<std::string>>>& queue() { return m_queue; }

  TimeMs now = 1000;

 private:
  TimeMs m_settle;
  std::vector<std::unique_ptr<Client>> m_clients;
  std::deque<std::pair<std::string, std::optional<std::string>>> m_queue;
};

}  // namespace mpotr::test
