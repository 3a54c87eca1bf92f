// SPDX-License-Identifier: MIT
#include "sim/scenario.h"

#include <algorithm>
#include <stdexcept>

#include "mpotr/engine/key_schedule.h"

namespace mpotr::sim {

std::vector<Event> events_of(const SimMember& m, EventKind kind, std::size_t from_index) {
  std::vector<Event> out;
  for (std::size_t i = from_index; i < m.events.size(); ++i) {
    if (m.events[i].kind == kind) {
      out.push_back(m.events[i]);
    }
  }
  return out;
}

std::vector<Event> events_in(const SimMember& m, const Delivery& d) {
  return std::vector<Event>(m.events.begin() + static_cast<std::ptrdiff_t>(d.events_begin),
                            m.events.begin() + static_cast<std::ptrdiff_t>(d.events_end));
}

bool has_event(const SimMember& m, EventKind kind, std::string_view nick, std::size_t from_index) {
  return count_events(m, kind, nick, from_index) > 0;
}

std::size_t count_events(const SimMember& m, EventKind kind, std::string_view nick, std::size_t from_index) {
  std::size_t n = 0;
  for (std::size_t i = from_index; i < m.events.size(); ++i) {
    if (m.events[i].kind == kind && (nick.empty() || m.events[i].nick == nick)) {
      ++n;
    }
  }
  return n;
}

std::vector<std::string> event_trace(const SimMember& m) {
  std::vector<std::string> out;
  for (const auto& e : m.events) {
    if (e.kind == EventKind::Rejected) {
      continue;
    }
    std::string s(to_string(e.kind));
    s += " " + e.nick + " " + e.by + " " + std::to_string(e.seq) + ".." + std::to_string(e.seq_end) + " " + e.text;
    for (const auto& n : e.nicks) {
      s += " " + n;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string dump_events(const SimMember& m, std::size_t from_index) {
  std::string s = m.nick + ":\n";
  for (std::size_t i = from_index; i < m.events.size(); ++i) {
    s += "  " + describe(m.events[i]) + "\n";
  }
  for (const auto& e : m.errors) {
    s += "  error " + std::string(to_string(e.code)) + " (" + e.detail + ")\n";
  }
  return s;
}

std::optional<Hash32> sid_of(const SimMember& m) {
  auto s = m.engine->session();
  if (!s) {
    return std::nullopt;
  }
  return s->session_id;
}

std::vector<std::string> roster_of(const SimMember& m) {
  std::vector<std::string> out;
  if (auto s = m.engine->session()) {
    for (const auto& mi : s->members) {
      out.push_back(mi.nick);
    }
  }
  return out;
}

bool converged(Room& room) {
  std::optional<Hash32> sid;
  std::vector<std::string> roster;
  std::vector<std::string> present;
  for (const auto& m : room.members()) {
    if (m.present) {
      present.push_back(m.nick);
    }
  }
  std::sort(present.begin(), present.end());
  for (const auto& m : room.members()) {
    if (!m.present) {
      continue;
    }
    if (m.engine->phase() != Phase::Established) {
      return false;
    }
    if (!sid) {
      sid = sid_of(m);
      roster = roster_of(m);
    } else if (sid_of(m) != sid || roster_of(m) != roster) {
      return false;
    }
  }
  return sid.has_value() && roster == present;
}

std::string room_state(Room& room) {
  std::string s;
  for (const auto& m : room.members()) {
    s += m.nick + (m.present ? "" : " (absent)") + ": " + std::string(to_string(m.engine->phase()));
    if (auto sid = sid_of(m)) {
      s += " sid " + to_hex(ByteView(sid->data(), 4));
    }
    s += "\n";
  }
  return s;
}

std::vector<std::string> texts_from(const SimMember& m, std::string_view author, std::size_t from_index) {
  std::vector<std::string> out;
  for (const auto& e : events_of(m, EventKind::MessageReceived, from_index)) {
    if (e.nick == author) {
      out.push_back(e.text);
    }
  }
  return out;
}

bool leave_room(Adversary& adv, std::string_view nick, TimeMs horizon) {
  SimMember& m = adv.room().by_nick(nick);
  const std::size_t mark = m.events.size();
  adv.room().absorb(m, m.engine->leave(adv.now(), *m.rng));
  const std::string name = m.nick;
  adv.run();
  if (!has_event(adv.room().by_nick(name), EventKind::ReadyToLeave, {}, mark)) {
    const TimeMs start = adv.now();
    while (adv.now() < start + horizon && !has_event(adv.room().by_nick(name), EventKind::ReadyToLeave, {}, mark)) {
      adv.advance(1000);
    }
  }
  const bool ready = has_event(adv.room().by_nick(name), EventKind::ReadyToLeave, {}, mark);
  if (ready) {
    adv.part(name);
  }
  return ready;
}

void send(Adversary& adv, std::string_view nick, std::string_view text) {
  SimMember& m = adv.room().by_nick(nick);
  adv.room().absorb(m, m.engine->send_text(text, adv.now(), *m.rng));
}

Bytes last_broadcast(Room& room, std::string_view nick) {
  for (auto it = room.log().rbegin(); it != room.log().rend(); ++it) {
    if (it->from == nick) {
      return it->payload;
    }
  }
  throw std::runtime_error("no broadcast from " + std::string(nick));
}

Hash32 last_sid(const SimMember& m) {
  if (auto s = sid_of(m)) {
    return *s;
  }
  auto est = events_of(m, EventKind::SessionEstablished);
  if (est.empty()) {
    throw std::runtime_error(m.nick + " never established a session");
  }
  return est.back().session_id;
}

namespace {
template <class M>
Bytes sign_generic(M msg, const crypto::PrivateKey& key, const Hash32& sid, Rng& rng) {
  const Bytes signed_part = codec::encode_signed_part(msg);
  auto sig = key.sign_digest(ks::signed_digest(sid, view(signed_part)), rng);
  if (!sig.ok()) {
    throw std::runtime_error("sign failed");
  }
  msg.signature = sig.value();
  return codec::encode(msg);
}

crypto::PrivateKey gen(Rng& rng) {
  auto k = crypto::PrivateKey::generate(rng);
  if (!k.ok()) {
    throw std::runtime_error("key generation failed");
  }
  return std::move(k).value();
}

template <class T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) {
    throw std::runtime_error(std::string(what) + ": " + r.error().detail);
  }
  return std::move(r).value();
}
}  // namespace

Bytes sign_and_encode(codec::Data msg, const crypto::PrivateKey& key, const Hash32& sid, Rng& rng) {
  return sign_generic(std::move(msg), key, sid, rng);
}
Bytes sign_and_encode(codec::Shutdown msg, const crypto::PrivateKey& key, const Hash32& sid, Rng& rng) {
  return sign_generic(std::move(msg), key, sid, rng);
}
Bytes sign_and_encode(codec::Digest msg, const crypto::PrivateKey& key, const Hash32& sid, Rng& rng) {
  return sign_generic(std::move(msg), key, sid, rng);
}

// --- puppet --------------------------------------------------------------------------------

PuppetMember::PuppetMember(std::string nick, std::uint64_t seed) : m_nick(std::move(nick)), m_rng(seed) {
  m_identity = gen(m_rng);
  m_dh = gen(m_rng);
  m_signing = gen(m_rng);
  m_r = gen(m_rng);
}

Bytes PuppetMember::offer(const std::vector<std::string>& sorted_nicks, std::uint32_t attempt) {
  codec::Offer o;
  o.roster_digest = ks::roster_digest(Room::kRoomName, sorted_nicks);
  o.attempt = attempt;
  o.nick = m_nick;
  o.nonce = m_rng.array<32>();
  o.identity_key = m_identity->public_key().point();
  o.dh_key = m_dh->public_key().point();
  o.signing_key = m_signing->public_key().point();
  return codec::encode(o);
}

Bytes PuppetMember::key_share(const std::vector<codec::Offer>& offers,
                              const std::function<Hash32(std::size_t)>& secret_for, std::optional<Hash32> committed,
                              const std::function<bool(std::size_t)>& bad_mac_for) {
  m_sid = ks::session_id(Room::kRoomName, offers);
  m_self = offers.size();
  for (std::size_t j = 0; j < offers.size(); ++j) {
    if (offers[j].nick == m_nick) {
      m_self = j;
    }
  }
  if (m_self == offers.size()) {
    throw std::runtime_error("puppet not in the offers");
  }
  const auto self = static_cast<std::uint8_t>(m_self);
  codec::KeyShare msg;
  msg.session_id = m_sid;
  msg.sender = self;
  msg.elgamal_r = m_r->public_key().point();
  if (!committed) {
    committed = secret_for(m_self == 0 ? 1 : 0);
  }
  msg.commit = ks::commit(m_sid, self, SecretBytes(view(*committed)));
  for (std::size_t j = 0; j < offers.size(); ++j) {
    if (j == m_self) {
      continue;
    }
    const auto pj = static_cast<std::uint8_t>(j);
    const auto peer_e = must(crypto::PublicKey::from_point(view(offers[j].dh_key)), "peer dh");
    const SecretBytes mac_key = must(ks::dake_key_to(m_sid, self, pj, *m_identity, *m_dh, peer_e), "dake key");
    codec::PairShare share;
    share.mac = ks::dake_mac(mac_key, m_sid, self, pj, m_signing->public_key().point(), m_dh->public_key().point(),
                             msg.elgamal_r);
    if (bad_mac_for && bad_mac_for(j)) {
      share.mac[0] ^= 0x01;
    }
    const SecretBytes shared = must(m_r->ecdh(peer_e), "ecdh");
    const SecretBytes pad = must(ks::elgamal_pad(m_sid, self, pj, shared, msg.elgamal_r, offers[j].dh_key), "pad");
    const Hash32 x = secret_for(j);
    for (std::size_t b = 0; b < 32; ++b) {
      share.secret_ct[b] = static_cast<std::uint8_t>(x[b] ^ pad.data()[b]);
    }
    msg.shares.push_back(share);
  }
  return sign_generic(std::move(msg), *m_signing, m_sid, m_rng);
}

Hash32 PuppetMember::open_share(const std::vector<codec::Offer>& offers, std::size_t from, const codec::KeyShare& msg) {
  const auto r = must(crypto::PublicKey::from_point(view(msg.elgamal_r)), "R");
  const SecretBytes shared = must(m_dh->ecdh(r), "ecdh");
  const SecretBytes pad = must(ks::elgamal_pad(m_sid, static_cast<std::uint8_t>(from), static_cast<std::uint8_t>(m_self),
                                               shared, msg.elgamal_r, offers[m_self].dh_key),
                               "pad");
  const codec::PairShare& share = msg.shares[m_self < from ? m_self : m_self - 1];
  Hash32 x{};
  for (std::size_t b = 0; b < 32; ++b) {
    x[b] = static_cast<std::uint8_t>(share.secret_ct[b] ^ pad.data()[b]);
  }
  return x;
}

Bytes PuppetMember::attest(const std::vector<Bytes>& offers, const std::vector<Bytes>& key_shares,
                           const std::vector<Hash32>& secrets) {
  std::vector<SecretBytes> s;
  for (const auto& x : secrets) {
    s.emplace_back(view(x));
  }
  const SecretBytes group = ks::group_secret(m_sid, s);
  // The setup transcript covers the offers and the signed parts of the key shares (a second
  // valid signature over the same key share must not change it).
  std::vector<Bytes> signed_shares;
  for (const auto& k : key_shares) {
    signed_shares.emplace_back(k.begin(), k.end() - static_cast<std::ptrdiff_t>(crypto::kSignatureLen));
  }
  const Hash32 th = ks::setup_transcript_hash(offers, signed_shares);
  codec::Attest msg;
  msg.session_id = m_sid;
  msg.sender = static_cast<std::uint8_t>(m_self);
  msg.transcript_hash = th;
  msg.key_confirm = must(ks::key_confirm(group, th), "key confirm");
  const Bytes signed_part = codec::encode_signed_part(msg);
  msg.signature = must(m_signing->sign_digest(ks::signed_digest(m_sid, view(signed_part)), m_rng), "sign");
  return codec::encode(msg);
}

void reference_conversation(Adversary& adv) {
  adv.run();
  send(adv, "alice", "hello");
  adv.run();
  adv.advance(kDefaultHeartbeatMs + 1);
  leave_room(adv, "bob");
  adv.run();
}

std::map<std::string, std::vector<std::string>> clean_traces(std::uint64_t room_seed) {
  Room room(3, room_seed);
  Adversary adv(room, 1);
  reference_conversation(adv);
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& m : room.members()) {
    out[m.nick] = event_trace(m);
  }
  return out;
}

}  // namespace mpotr::sim
