// SPDX-License-Identifier: MIT
// mpotr-chat's command line, parsed into one struct. Pure: the environment comes in as a
// struct and files are not touched (main.cpp reads the password file and the key file), so
// every accepted and refused argument is unit-tested without a process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpotr/engine.h"
#include "mpotr/result.h"

namespace mpotr::chat {

inline constexpr std::uint16_t kDefaultXmppPort = 5222;
// Upper bounds for the numeric options: larger values are typos, not intentions.
inline constexpr TimeMs kMaxTimeoutMs = 24ULL * 60 * 60 * 1000;
inline constexpr TimeMs kMaxRosterSettleMs = 10ULL * 60 * 1000;

struct Options {
  std::string jid;   // bare JID we log in as
  std::string room;  // bare room JID
  std::string nick;  // nick we ask the room for
  // Exactly one source of the password: the file (read by main), or the text itself (from
  // --password or MPOTR_PASSWORD).
  std::string password;
  std::string password_file;
  // Empty host: the JID's domain, found by DNS SRV then port 5222 (libstrophe's default).
  std::string server_host;
  std::uint16_t server_port = 0;
  bool tls_disabled = false;  // only ever true for a loopback server_host
  std::string ca_file;
  std::string pin_sha256;     // 64 lower-case hex digits
  bool trust_any_cert = false;
  std::string key_file;
  std::string trust_file;
  // --trust tofu|verified: whom the room admits (spec §7.10). Verified: we stay out of any
  // session with a member we have not verified.
  AdmissionPolicy admission = AdmissionPolicy::Trusted;
  bool json = false;
  bool verbose = false;
  bool reconnect = true;
  Timeouts timeouts;
  TimeMs roster_settle_ms = 0;
  std::string pad_socket;  // the pad device (mpotr-padd) socket; empty: no one-time-pad mode
  bool otp = false;        // OTP mode on from the start (needs pad_socket)
  bool help = false;     // --help: print usage, nothing else is checked
  bool version = false;  // --version
};

// What parse_options needs from the process environment (main fills it from getenv).
struct Environment {
  std::string home;                     // $HOME
  std::string xdg_data_home;            // $XDG_DATA_HOME
  std::optional<std::string> password;  // $MPOTR_PASSWORD
};

// args excludes argv[0]. Errors: InvalidArgument, with a detail that names the option and
// says what was expected (shown to the user as is).
Result<Options> parse_options(const std::vector<std::string>& args, const Environment& env);

// --help text.
std::string usage_text();

// 127.0.0.0/8, ::1 and "localhost" (any case): where --tls disabled is allowed.
bool is_loopback_host(std::string_view host);

// "setup=MS,heartbeat=MS,gap=MS,confirm=MS,shutdown=MS" (any subset, each key once) applied
// over `base`. Errors: InvalidArgument.
Result<Timeouts> parse_timeouts(std::string_view spec, Timeouts base);

}  // namespace mpotr::chat
