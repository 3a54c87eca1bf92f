// SPDX-License-Identifier: MIT
//
// RAII handle on a private ejabberd 23.01 on 127.0.0.1 (testserver/ejabberd-test), for
// integration tests that need a real XMPP server: host "localhost", MUC service
// "conference.localhost", users and rooms created through the loopback HTTP API.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mpotr::test {

struct TestServerOptions {
  bool tls = false;           // offer STARTTLS with a self-signed certificate
  bool tls_required = false;  // refuse plaintext sessions (implies tls)
};

class TestServer {
 public:
  // Picks two free loopback ports, makes a temp dir under $TMPDIR and starts the server; returns
  // once c2s and the HTTP API answer. Throws std::runtime_error with the script's output.
  explicit TestServer(TestServerOptions opts = {});
  // Stops the server, then removes the temp dir unless MPOTR_KEEP_TESTSERVER=1.
  ~TestServer();

  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  TestServer(TestServer&&) = delete;
  TestServer& operator=(TestServer&&) = delete;

  // SIGTERM, then SIGKILL after ~3 s; no-op when already stopped.
  void stop();
  bool running() const { return m_running; }

  // Registers (or resets the password of) user@localhost for each (user, password).
  void register_users(const std::vector<std::pair<std::string, std::string>>& users);
  // Creates room@conference.localhost: unlocked, non-anonymous (real JIDs visible to all),
  // persistent (survives the last occupant leaving), no history, no MAM.
  void create_rooms(const std::vector<std::string>& rooms);
  // Calls one ejabberd HTTP API command with a JSON body and returns the JSON answer.
  std::string api(const std::string& command, const std::string& json_body = "{}") const;

  std::uint16_t c2s_port() const { return m_c2s_port; }
  std::uint16_t http_port() const { return m_http_port; }
  const std::string& dir() const { return m_dir; }
  // SHA-256 of the server certificate as libstrophe's xmpp_tlscert_get_string(cert,
  // XMPP_CERT_FINGERPRINT_SHA256) returns it (64 lowercase hex digits); "" without TLS.
  std::string cert_fingerprint() const;
  std::string host() const { return "127.0.0.1"; }
  static std::string domain() { return "localhost"; }
  static std::string muc_service() { return "conference.localhost"; }

  static std::string script_path();

  struct ScriptResult {
    int status = -1;     // exit status, or 128 + signal
    std::string output;  // stdout and stderr, interleaved
  };
  // Runs testserver/ejabberd-test with the given arguments (fork/execv, output through a pipe).
  static ScriptResult run_script(const std::vector<std::string>& args);

 private:
  void check(const ScriptResult& result, const char* what) const;
  void remove_dir() noexcept;

  TestServerOptions m_opts;
  std::string m_dir;
  std::uint16_t m_c2s_port = 0;
  std::uint16_t m_http_port = 0;
  bool m_running = false;
};

}  // namespace mpotr::test
