// SPDX-License-Identifier: MIT
//
// A plain libstrophe client, with no mpOTR code at all, that sits in a room and records the XML
// of every stanza it receives and sends. End-to-end tests use it as the eavesdropper: whatever
// it can read crossed the wire (and the server) in that form.
//
// libstrophe runs on the observer's own thread (its own xmpp_ctx; libstrophe objects are only
// touched there); the public methods are thread-safe and may be called from the test thread.
// Stream management is disabled (no XEP-0198 bounces when it disconnects).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mpotr::test {

class TestServer;

struct RawObserverOptions {
  std::string user;  // JID localpart
  std::string password;
  std::string domain = "localhost";
  std::string host = "127.0.0.1";
  std::uint16_t port = 5222;
  // true: STARTTLS without any certificate check (XMPP_CONN_FLAG_TRUST_TLS); false: no TLS.
  bool tls = false;
  std::string resource = "observer";
  std::string room;  // bare room JID to join once connected; "" joins nothing
  std::string nick = "observer";
};

// Options for `user` on `server` (host, port, TLS when the server offers it), joining `room`.
RawObserverOptions raw_observer_options(const TestServer& server, std::string user, std::string password,
                                        std::string room = {}, std::string nick = "observer");

struct RecordedStanza {
  bool sent = false;  // false: received
  std::string xml;    // as libstrophe serializes it (xmpp_stanza_to_text)
};

class RawObserver {
 public:
  // Starts the thread, which connects and, after the connect callback, joins options.room
  // (with <history maxstanzas='0'/>). Does not wait: see wait_connected() / wait_joined().
  explicit RawObserver(RawObserverOptions options);
  // Leaves the room (unavailable presence), disconnects cleanly (bounded wait), joins the thread.
  ~RawObserver();
  RawObserver(const RawObserver&) = delete;
  RawObserver& operator=(const RawObserver&) = delete;

  bool wait_connected(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  // Our own presence came back from the room (status 110).
  bool wait_joined(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

  // Every stanza received (message, presence, iq) and every stanza this observer sent, in order.
  std::vector<RecordedStanza> records() const;
  // Just the XML texts of records().
  std::vector<std::string> stanzas() const;
  // Plain substring search over every recorded stanza's XML (nothing is decoded).
  bool contains_text(const std::string& needle) const;
  // Waits until contains_text(needle).
  bool wait_for_text(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));
  // Received stanzas whose XML contains `needle`.
  std::vector<std::string> received_containing(const std::string& needle) const;
  std::size_t size() const;

  // Sends <message type='groupchat'><body>body</body></message> to the room (for harness tests).
  void send_groupchat(const std::string& body);
  // Sends raw XML (one stanza) as is.
  void send_raw(const std::string& xml);
  // Unavailable presence to the room; waits (bounded) until the server confirmed it.
  bool leave(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  // Leaves, disconnects and stops the thread; idempotent. The destructor calls it.
  void stop();

  bool connected() const;
  bool joined() const;
  // Connection failure, stream error or error presence from the room; "" if none.
  std::string error() const;
  std::string room_jid_with_nick() const { return m_opts.room + "/" + m_opts.nick; }
  const RawObserverOptions& options() const { return m_opts; }

 private:
  struct Impl;
  void run();
  void record(bool sent, std::string xml);
  bool wait(const std::function<bool()>& pred, std::chrono::milliseconds timeout);
  void post(std::function<void(Impl&)> job);

  RawObserverOptions m_opts;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<RecordedStanza> m_records;
  std::deque<std::function<void(Impl&)>> m_jobs;
  bool m_connected = false;
  bool m_joined = false;
  bool m_left = false;
  bool m_finished = false;  // the thread is done with libstrophe
  bool m_stop = false;
  std::string m_error;
  std::thread m_thread;
};

}  // namespace mpotr::test
