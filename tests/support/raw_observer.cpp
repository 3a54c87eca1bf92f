// SPDX-License-Identifier: MIT
#include "support/raw_observer.h"

#include <strophe.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "support/testserver.h"

namespace mpotr::test {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr unsigned long kRunOnceMs = 20;
constexpr Millis kDisconnectWait{2000};
constexpr const char* kMucNs = "http://jabber.org/protocol/muc";
constexpr const char* kMucUserNs = "http://jabber.org/protocol/muc#user";

// xmpp_initialize once per process, never xmpp_shutdown (other libstrophe users may live on).
void strophe_init_once() {
  static const bool done = [] {
    xmpp_initialize();
    // libstrophe writes with send(): a peer that closed first must give EPIPE, not kill us.
    std::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  (void)done;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string to_text(xmpp_stanza_t* stanza) {
  char* buf = nullptr;
  size_t len = 0;
  if (xmpp_stanza_to_text(stanza, &buf, &len) != XMPP_EOK || buf == nullptr) return {};
  std::string out(buf, len);
  xmpp_free(xmpp_stanza_get_context(stanza), buf);
  return out;
}

bool has_status(xmpp_stanza_t* presence, const char* code) {
  xmpp_stanza_t* x = xmpp_stanza_get_child_by_name_and_ns(presence, "x", kMucUserNs);
  if (x == nullptr) return false;
  for (xmpp_stanza_t* c = xmpp_stanza_get_children(x); c != nullptr; c = xmpp_stanza_get_next(c)) {
    const char* name = xmpp_stanza_get_name(c);
    const char* value = xmpp_stanza_get_attribute(c, "code");
    if (name != nullptr && std::strcmp(name, "status") == 0 && value != nullptr && std::strcmp(value, code) == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

struct RawObserver::Impl {
  RawObserver* self = nullptr;
  xmpp_ctx_t* ctx = nullptr;
  xmpp_conn_t* conn = nullptr;
  bool connected = false;
  bool disconnected = false;
  bool stopping = false;

  void send(const std::string& xml) {
    if (!connected || disconnected) return;
    xmpp_stanza_t* stanza = xmpp_stanza_new_from_string(ctx, xml.c_str());
    if (stanza == nullptr) {
      self->record(true, "<!-- could not parse, not sent: " + xml + " -->");
      return;
    }
    self->record(true, to_text(stanza));
    xmpp_send(conn, stanza);
    xmpp_stanza_release(stanza);
  }

  void join() {
    const auto& o = self->m_opts;
    send("<presence to='" + xml_escape(o.room + "/" + o.nick) + "'><x xmlns='" + kMucNs +
         "'><history maxstanzas='0'/></x></presence>");
  }

  void leave() {
    const auto& o = self->m_opts;
    send("<presence to='" + xml_escape(o.room + "/" + o.nick) + "' type='unavailable'/>");
  }

  static void on_connection(xmpp_conn_t* /*conn*/, xmpp_conn_event_t event, int error,
                            xmpp_stream_error_t* stream_error, void* userdata) {
    auto* impl = static_cast<Impl*>(userdata);
    RawObserver* self = impl->self;
    if (event == XMPP_CONN_RAW_CONNECT) return;
    if (event == XMPP_CONN_CONNECT) {
      impl->connected = true;
      {
        std::lock_guard<std::mutex> lock(self->m_mutex);
        self->m_connected = true;
      }
      self->m_cv.notify_all();
      if (!self->m_opts.room.empty()) impl->join();
      return;
    }
    impl->disconnected = true;
    {
      std::lock_guard<std::mutex> lock(self->m_mutex);
      self->m_connected = false;
      if (!impl->stopping && self->m_error.empty()) {
        self->m_error = std::string(event == XMPP_CONN_FAIL ? "connection failed" : "disconnected") +
                        " (error " + std::to_string(error) + ")";
        if (stream_error != nullptr && stream_error->text != nullptr) {
          self->m_error += ": " + std::string(stream_error->text);
        }
      }
    }
    self->m_cv.notify_all();
  }

  static int on_stanza(xmpp_conn_t* /*conn*/, xmpp_stanza_t* stanza, void* userdata) {
    auto* impl = static_cast<Impl*>(userdata);
    RawObserver* self = impl->self;
    self->record(false, to_text(stanza));
    const char* name = xmpp_stanza_get_name(stanza);
    const char* from = xmpp_stanza_get_from(stanza);
    if (name == nullptr || std::strcmp(name, "presence") != 0 || from == nullptr) return 1;
    const auto& o = self->m_opts;
    if (o.room.empty() || from != o.room + "/" + o.nick) return 1;
    const char* type = xmpp_stanza_get_type(stanza);
    {
      std::lock_guard<std::mutex> lock(self->m_mutex);
      if (type != nullptr && std::strcmp(type, "error") == 0) {
        self->m_error = "join refused: " + to_text(stanza);
      } else if (has_status(stanza, "110")) {
        if (type != nullptr && std::strcmp(type, "unavailable") == 0) {
          self->m_joined = false;
          self->m_left = true;
        } else {
          self->m_joined = true;
          self->m_left = false;
        }
      }
    }
    self->m_cv.notify_all();
    return 1;
  }
};

RawObserverOptions raw_observer_options(const TestServer& server, std::string user, std::string password,
                                        std::string room, std::string nick) {
  RawObserverOptions o;
  o.user = std::move(user);
  o.password = std::move(password);
  o.domain = TestServer::domain();
  o.host = server.host();
  o.port = server.c2s_port();
  o.tls = !server.cert_fingerprint().empty();
  o.room = std::move(room);
  o.nick = std::move(nick);
  return o;
}

RawObserver::RawObserver(RawObserverOptions options) : m_opts(std::move(options)) {
  strophe_init_once();
  m_thread = std::thread([this] { run(); });
}

RawObserver::~RawObserver() { stop(); }

void RawObserver::run() {
  Impl impl;
  impl.self = this;
  const xmpp_log_t* log =
      std::getenv("MPOTR_XMPP_DEBUG") != nullptr ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : nullptr;
  impl.ctx = xmpp_ctx_new(nullptr, log);
  impl.conn = impl.ctx != nullptr ? xmpp_conn_new(impl.ctx) : nullptr;
  bool started = false;
  if (impl.conn != nullptr) {
    long flags = XMPP_CONN_FLAG_DISABLE_SM;
    flags |= m_opts.tls ? XMPP_CONN_FLAG_TRUST_TLS : XMPP_CONN_FLAG_DISABLE_TLS;
    xmpp_conn_set_flags(impl.conn, flags);
    const std::string jid = m_opts.user + "@" + m_opts.domain + "/" + m_opts.resource;
    xmpp_conn_set_jid(impl.conn, jid.c_str());
    xmpp_conn_set_pass(impl.conn, m_opts.password.c_str());
    xmpp_handler_add(impl.conn, &Impl::on_stanza, nullptr, nullptr, nullptr, &impl);
    started = xmpp_connect_client(impl.conn, m_opts.host.c_str(), m_opts.port, &Impl::on_connection, &impl) ==
              XMPP_EOK;
  }
  if (!started) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_error = "cannot start the connection to " + m_opts.host + ":" + std::to_string(m_opts.port);
    impl.disconnected = true;
  }

  Clock::time_point stop_deadline{};
  for (;;) {
    std::deque<std::function<void(Impl&)>> jobs;
    bool stop_requested = false;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      stop_requested = m_stop;
      // Nothing is sent before the connect callback: libstrophe drops such a connection.
      if (impl.connected) jobs.swap(m_jobs);
    }
    for (auto& job : jobs) job(impl);
    if (stop_requested && !impl.stopping) {
      impl.stopping = true;
      stop_deadline = Clock::now() + kDisconnectWait;
      if (impl.connected && !impl.disconnected) {
        bool in_room = false;
        {
          std::lock_guard<std::mutex> lock(m_mutex);
          in_room = m_joined && !m_left;
        }
        if (in_room) impl.leave();
        xmpp_disconnect(impl.conn);
      } else if (impl.conn != nullptr && !impl.disconnected) {
        // still connecting: drop it
        xmpp_disconnect(impl.conn);
      }
    }
    if (impl.stopping && (impl.disconnected || Clock::now() >= stop_deadline)) break;
    if (impl.ctx != nullptr && !impl.disconnected) {
      xmpp_run_once(impl.ctx, kRunOnceMs);
    } else {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_cv.wait_for(lock, Millis(kRunOnceMs), [this] { return m_stop; });
    }
  }
  if (impl.conn != nullptr) xmpp_conn_release(impl.conn);
  if (impl.ctx != nullptr) xmpp_ctx_free(impl.ctx);
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_connected = false;
    m_finished = true;
    m_jobs.clear();
  }
  m_cv.notify_all();
}

void RawObserver::record(bool sent, std::string xml) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_records.push_back(RecordedStanza{sent, std::move(xml)});
  }
  m_cv.notify_all();
}

bool RawObserver::wait(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(m_mutex);
  m_cv.wait_for(lock, timeout, [&] { return pred() || m_finished; });
  return pred();
}

void RawObserver::post(std::function<void(Impl&)> job) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_stop || m_finished) return;
    m_jobs.push_back(std::move(job));
  }
  m_cv.notify_all();
}

bool RawObserver::wait_connected(std::chrono::milliseconds timeout) {
  return wait([this] { return m_connected || !m_error.empty(); }, timeout) && m_connected;
}

bool RawObserver::wait_joined(std::chrono::milliseconds timeout) {
  return wait([this] { return m_joined || !m_error.empty(); }, timeout) && m_joined;
}

std::vector<RecordedStanza> RawObserver::records() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_records;
}

std::vector<std::string> RawObserver::stanzas() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  std::vector<std::string> out;
  out.reserve(m_records.size());
  for (const auto& r : m_records) out.push_back(r.xml);
  return out;
}

bool RawObserver::contains_text(const std::string& needle) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return std::any_of(m_records.begin(), m_records.end(),
                     [&](const RecordedStanza& r) { return r.xml.find(needle) != std::string::npos; });
}

bool RawObserver::wait_for_text(const std::string& needle, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(m_mutex);
  auto has = [&] {
    return std::any_of(m_records.begin(), m_records.end(),
                       [&](const RecordedStanza& r) { return r.xml.find(needle) != std::string::npos; });
  };
  m_cv.wait_for(lock, timeout, [&] { return has() || m_finished; });
  return has();
}

std::vector<std::string> RawObserver::received_containing(const std::string& needle) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  std::vector<std::string> out;
  for (const auto& r : m_records) {
    if (!r.sent && r.xml.find(needle) != std::string::npos) out.push_back(r.xml);
  }
  return out;
}

std::size_t RawObserver::size() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_records.size();
}

void RawObserver::send_groupchat(const std::string& body) {
  const std::string xml = "<message to='" + xml_escape(m_opts.room) + "' type='groupchat'><body>" +
                          xml_escape(body) + "</body></message>";
  post([xml](Impl& impl) { impl.send(xml); });
}

void RawObserver::send_raw(const std::string& xml) {
  post([xml](Impl& impl) { impl.send(xml); });
}

bool RawObserver::leave(std::chrono::milliseconds timeout) {
  post([](Impl& impl) { impl.leave(); });
  return wait([this] { return m_left; }, timeout);
}

void RawObserver::stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stop = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

bool RawObserver::connected() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_connected;
}

bool RawObserver::joined() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_joined;
}

std::string RawObserver::error() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_error;
}

}  // namespace mpotr::test
