// SPDX-License-Identifier: MIT
#include "options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

#include "mpotr/limits.h"

namespace mpotr::chat {

namespace {

Error bad(std::string detail) { return make_error(ErrorCode::InvalidArgument, std::move(detail)); }

bool has_control_or_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f || u == ' ';
  });
}

// local@domain with both parts non-empty, no resource, nothing a JID cannot contain.
bool is_bare_jid(std::string_view s) {
  const auto at = s.find('@');
  return at != std::string_view::npos && at != 0 && at + 1 < s.size() && s.find('@', at + 1) == std::string_view::npos &&
         s.find('/') == std::string_view::npos && !has_control_or_space(s) && s.size() <= 3071;  // RFC 7622 bound
}

Result<std::uint64_t> parse_number(std::string_view option, std::string_view text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return bad(std::string(option) + ": '" + std::string(text) + "' is not a number of milliseconds");
  }
  if (value < min || value > max) {
    return bad(std::string(option) + ": " + std::to_string(value) + " is out of range (" + std::to_string(min) + ".." +
               std::to_string(max) + ")");
  }
  return value;
}

// HOST, HOST:PORT, [V6] or [V6]:PORT. A bare IPv6 address (more than one colon) is HOST.
Result<void> parse_server(std::string_view text, std::string& host, std::uint16_t& port) {
  const std::string what = "--server '" + std::string(text) + "'";
  std::string_view host_part = text;
  std::string_view port_part;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return bad(what + ": missing ']' after the IPv6 address");
    }
    host_part = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return bad(what + ": expected ':PORT' after ']'");
      }
      port_part = rest.substr(1);
      if (port_part.empty()) {
        return bad(what + ": empty port");
      }
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const auto colon = text.find(':');
    host_part = text.substr(0, colon);
    port_part = text.substr(colon + 1);
    if (port_part.empty()) {
      return bad(what + ": empty port");
    }
  }
  if (host_part.empty() || has_control_or_space(host_part)) {
    return bad(what + ": expected HOST or HOST:PORT");
  }
  host = std::string(host_part);
  port = kDefaultXmppPort;
  if (!port_part.empty()) {
    std::uint64_t value = 0;
    const char* end = port_part.data() + port_part.size();
    const auto [ptr, ec] = std::from_chars(port_part.data(), end, value);
    if (ec != std::errc() || ptr != end || value == 0 || value > 65535) {
      return bad(what + ": the port must be a number from 1 to 65535");
    }
    port = static_cast<std::uint16_t>(value);
  }
  return {};
}

// The certificate pin as libstrophe prints it: hex, colons or spaces allowed between digits.
Result<std::string> parse_pin(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c == ':' || c == ' ') {
      continue;
    }
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return bad("--pin-sha256: '" + std::string(text) + "' is not hex (expected the certificate's SHA-256, 64 hex digits, colons allowed)");
    }
    digits.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (digits.size() != 64) {
    return bad("--pin-sha256: expected 64 hex digits (the certificate's SHA-256), got " + std::to_string(digits.size()));
  }
  return digits;
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return {};
  }
  return slash == 0 ? std::string("/") : path.substr(0, slash);
}

std::string join_path(const std::string& dir, std::string_view name) {
  if (dir.empty()) {
    return std::string(name);
  }
  return dir.back() == '/' ? dir + std::string(name) : dir + "/" + std::string(name);
}

bool is_valid_nick(std::string_view nick) {
  if (nick.empty() || nick.size() > kMaxNickLen) {
    return false;
  }
  const bool controls = std::any_of(nick.begin(), nick.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
  const bool blank = std::all_of(nick.begin(), nick.end(), [](char c) { return c == ' '; });
  return !controls && !blank;
}

enum class Kind : std::uint8_t { Flag, Value };

const std::map<std::string, Kind, std::less<>>& known_options() {
  static const std::map<std::string, Kind, std::less<>> options = {
      {"--jid", Kind::Value},         {"--password", Kind::Value},   {"--password-file", Kind::Value},
      {"--room", Kind::Value},        {"--nick", Kind::Value},       {"--server", Kind::Value},
      {"--tls", Kind::Value},         {"--ca-file", Kind::Value},    {"--pin-sha256", Kind::Value},
      {"--key-file", Kind::Value},    {"--trust-file", Kind::Value}, {"--trust", Kind::Value},
      {"--timeouts", Kind::Value},    {"--roster-settle", Kind::Value},
      {"--insecure-trust-any-cert", Kind::Flag}, {"--json", Kind::Flag}, {"--verbose", Kind::Flag},
      {"--no-reconnect", Kind::Flag}, {"--help", Kind::Flag},        {"--version", Kind::Flag},
      {"--pad-socket", Kind::Value},  {"--otp", Kind::Flag},
  };
  return options;
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  if (lower == "localhost" || lower == "::1" || lower == "0:0:0:0:0:0:0:1") {
    return true;
  }
  // Dotted quad with the first octet 127: four decimal numbers 0..255, nothing else.
  int octets = 0;
  int first = -1;
  std::string_view rest = lower;
  while (true) {
    const auto dot = rest.find('.');
    const std::string_view part = rest.substr(0, dot);
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || part.size() > 3 || ec != std::errc() || ptr != part.data() + part.size() || value > 255) {
      return false;
    }
    if (octets == 0) {
      first = static_cast<int>(value);
    }
    ++octets;
    if (dot == std::string_view::npos) {
      break;
    }
    rest = rest.substr(dot + 1);
  }
  return octets == 4 && first == 127;
}

Result<Timeouts> parse_timeouts(std::string_view spec, Timeouts base) {
  static const char* const kKeys = "setup, heartbeat, gap, confirm, shutdown";
  if (spec.empty()) {
    return bad(std::string("--timeouts: empty; expected KEY=MS[,KEY=MS...] with KEY one of ") + kKeys);
  }
  std::set<std::string, std::less<>> seen;
  std::string_view rest = spec;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const auto eq = item.find('=');
    if (item.empty() || eq == std::string_view::npos) {
      return bad("--timeouts: '" + std::string(item) + "' is not KEY=MS (KEY one of " + kKeys + ")");
    }
    const std::string_view key = item.substr(0, eq);
    TimeMs* field = nullptr;
    if (key == "setup") {
      field = &base.setup;
    } else if (key == "heartbeat") {
      field = &base.heartbeat;
    } else if (key == "gap") {
      field = &base.gap;
    } else if (key == "confirm") {
      field = &base.confirm;
    } else if (key == "shutdown") {
      field = &base.shutdown;
    } else {
      return bad("--timeouts: unknown timeout '" + std::string(key) + "' (known: " + kKeys + ")");
    }
    if (!seen.insert(std::string(key)).second) {
      return bad("--timeouts: '" + std::string(key) + "' given more than once");
    }
    MPOTR_TRY(*field, parse_number("--timeouts " + std::string(key), item.substr(eq + 1), 1, kMaxTimeoutMs));
    if (comma == std::string_view::npos) {
      break;
    }
    rest = rest.substr(comma + 1);
  }
  return base;
}

Result<Options> parse_options(const std::vector<std::string>& args, const Environment& env) {
  Options o;
  std::map<std::string, std::string, std::less<>> values;  // option → value, each at most once
  std::set<std::string, std::less<>> flags;

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h") {
      arg = "--help";
    } else if (arg == "-V") {
      arg = "--version";
    }
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      return bad("unexpected argument '" + std::string(arg) + "' (options start with --; see --help)");
    }
    const auto eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const auto known = known_options().find(name);
    if (known == known_options().end()) {
      return bad("unknown option '" + std::string(name) + "' (see --help)");
    }
    if (known->second == Kind::Flag) {
      if (eq != std::string_view::npos) {
        return bad(std::string(name) + " takes no value");
      }
      if (name == "--help") {
        o.help = true;
        return o;  // the user asked how to call us: nothing else matters
      }
      if (name == "--version") {
        o.version = true;
        return o;
      }
      if (!flags.insert(std::string(name)).second) {
        return bad(std::string(name) + " given more than once");
      }
      continue;
    }
    std::string value;
    if (eq != std::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return bad(std::string(name) + " needs a value");
    }
    if (!values.emplace(std::string(name), std::move(value)).second) {
      return bad(std::string(name) + " given more than once");
    }
  }

  auto value_of = [&](std::string_view name) -> const std::string* {
    const auto it = values.find(name);
    return it == values.end() ? nullptr : &it->second;
  };

  // Account and room.
  const std::string* jid = value_of("--jid");
  if (jid == nullptr) {
    return bad("--jid is required (the account to log in with, e.g. --jid alice@example.org)");
  }
  if (!is_bare_jid(*jid)) {
    return bad("--jid '" + *jid + "': expected a bare JID like alice@example.org (no resource, no spaces)");
  }
  o.jid = *jid;
  const std::string* room = value_of("--room");
  if (room == nullptr) {
    return bad("--room is required (the group chat to join, e.g. --room room@conference.example.org)");
  }
  if (!is_bare_jid(*room)) {
    return bad("--room '" + *room + "': expected a room JID like room@conference.example.org (no nick, no spaces)");
  }
  o.room = *room;
  const std::string domain = o.jid.substr(o.jid.find('@') + 1);
  o.nick = o.jid.substr(0, o.jid.find('@'));
  if (const std::string* nick = value_of("--nick")) {
    if (!is_valid_nick(*nick)) {
      return bad("--nick: must be 1 to " + std::to_string(kMaxNickLen) + " bytes, not blank, without control characters");
    }
    o.nick = *nick;
  } else if (!is_valid_nick(o.nick)) {
    return bad("the JID's local part cannot be used as a nick (at most " + std::to_string(kMaxNickLen) +
               " bytes); choose one with --nick");
  }

  // Password: exactly one source; the environment variable is the fallback.
  const std::string* password = value_of("--password");
  const std::string* password_file = value_of("--password-file");
  if (password != nullptr && password_file != nullptr) {
    return bad("give only one of --password and --password-file");
  }
  if (password_file != nullptr) {
    if (password_file->empty()) {
      return bad("--password-file: empty file name");
    }
    o.password_file = *password_file;
  } else if (password != nullptr) {
    if (password->empty()) {
      return bad("--password: empty password");
    }
    o.password = *password;
  } else if (env.password && !env.password->empty()) {
    o.password = *env.password;
  } else {
    return bad("no password: use --password-file FILE or the MPOTR_PASSWORD environment variable (or --password PW, which other users can see in ps)");
  }

  // Server and TLS.
  if (const std::string* server = value_of("--server")) {
    MPOTR_CHECK(parse_server(*server, o.server_host, o.server_port));
  }
  if (const std::string* tls = value_of("--tls")) {
    if (*tls == "required") {
      o.tls_disabled = false;
    } else if (*tls == "disabled") {
      o.tls_disabled = true;
    } else {
      return bad("--tls '" + *tls + "': expected 'required' or 'disabled'");
    }
  }
  if (const std::string* ca = value_of("--ca-file")) {
    if (ca->empty()) {
      return bad("--ca-file: empty file name");
    }
    o.ca_file = *ca;
  }
  if (const std::string* pin = value_of("--pin-sha256")) {
    MPOTR_TRY(o.pin_sha256, parse_pin(*pin));
  }
  o.trust_any_cert = flags.contains("--insecure-trust-any-cert");
  if (o.tls_disabled) {
    // Without --server the host would come from DNS (SRV), which could point anywhere: the
    // loopback check must see the host actually connected to, so it becomes explicit.
    if (o.server_host.empty()) {
      o.server_host = domain;
      o.server_port = kDefaultXmppPort;
    }
    if (!is_loopback_host(o.server_host)) {
      return bad("--tls disabled is only allowed for a server on this machine (127.0.0.0/8, ::1, localhost), not '" +
                 o.server_host + "': messages, passwords and presence would cross the network in clear text");
    }
    if (!o.ca_file.empty() || !o.pin_sha256.empty() || o.trust_any_cert) {
      return bad("--ca-file, --pin-sha256 and --insecure-trust-any-cert need TLS; they make no sense with --tls disabled");
    }
  }

  // Files.
  if (const std::string* key = value_of("--key-file")) {
    if (key->empty()) {
      return bad("--key-file: empty file name");
    }
    o.key_file = *key;
  } else if (!env.xdg_data_home.empty() && env.xdg_data_home.front() == '/') {
    // The XDG spec says relative values are invalid and must be ignored.
    o.key_file = join_path(join_path(env.xdg_data_home, "mpotr"), "identity.json");
  } else if (!env.home.empty()) {
    o.key_file = join_path(env.home, ".local/share/mpotr/identity.json");
  } else {
    return bad("cannot choose where the key file goes: neither XDG_DATA_HOME nor HOME is set; use --key-file FILE");
  }
  if (const std::string* trust_file = value_of("--trust-file")) {
    if (trust_file->empty()) {
      return bad("--trust-file: empty file name");
    }
    o.trust_file = *trust_file;
  } else {
    o.trust_file = join_path(parent_dir(o.key_file), "trust.json");
  }
  if (o.trust_file == o.key_file) {
    return bad("--trust-file and --key-file must be different files");
  }
  if (const std::string* trust = value_of("--trust")) {
    if (*trust == "tofu") {
      o.admission = AdmissionPolicy::Trusted;
    } else if (*trust == "verified") {
      o.admission = AdmissionPolicy::VerifiedOnly;
    } else {
      return bad("--trust '" + *trust + "': expected 'tofu' or 'verified'");
    }
  }

  // Behaviour.
  o.json = flags.contains("--json");
  o.verbose = flags.contains("--verbose");
  o.reconnect = !flags.contains("--no-reconnect");
  if (const std::string* pad = value_of("--pad-socket")) {
    if (pad->empty()) {
      return bad("--pad-socket: empty path");
    }
    o.pad_socket = *pad;
  }
  o.otp = flags.contains("--otp");
  if (o.otp && o.pad_socket.empty()) {
    return bad("--otp needs --pad-socket PATH (the socket of your pad device, mpotr-padd)");
  }
  if (const std::string* timeouts = value_of("--timeouts")) {
    MPOTR_TRY(o.timeouts, parse_timeouts(*timeouts, o.timeouts));
  }
  if (const std::string* settle = value_of("--roster-settle")) {
    MPOTR_TRY(o.roster_settle_ms, parse_number("--roster-settle", *settle, 0, kMaxRosterSettleMs));
  }
  return o;
}

std::string usage_text() {
  return R"(Usage: mpotr-chat --jid JID --room ROOM [options]

Multi-party Off-the-Record group chat in one XMPP multi-user chat room.

Account and room:
  --jid JID                 bare JID to log in with (alice@example.org)
  --room ROOM               room to join (room@conference.example.org); it must show real JIDs
  --nick NICK               nick in the room (default: the JID's local part)
  --password-file FILE      read the password from FILE (first line)
  --password PW             the password itself: visible to other users in ps; prefer
                            --password-file or the MPOTR_PASSWORD environment variable
  --server HOST[:PORT]      server to connect to (default: the JID's domain, port 5222)

TLS:
  --tls required|disabled   default required; disabled only for loopback servers (tests)
  --ca-file FILE            extra CA certificates (PEM) to verify the server with
  --pin-sha256 FP           accept the server certificate with this SHA-256 fingerprint
  --insecure-trust-any-cert accept any server certificate (tests only)

Identity and trust:
  --key-file FILE           identity key (default $XDG_DATA_HOME/mpotr/identity.json or
                            ~/.local/share/mpotr/identity.json; created with mode 0600 on first run)
  --trust-file FILE         trust store (default: trust.json next to the key file)
  --trust tofu|verified     tofu (default): new keys are trusted on first use;
                            verified: you admit verified members only, and stay out of any
                            session with a member you have not verified (/policy changes it)

One-time pads (spec/otp.md §10; pads generated with mpotr-pad, served by mpotr-padd):
  --pad-socket PATH         your pad device's socket: OTP messages can be read, /otp works
  --otp                     start in OTP mode: every line encrypted with the pad shared with
                            each member (refused, never sent otherwise, if one has no pad)

Behaviour:
  --json                    scriptable mode: JSON events on stdout, JSON commands on stdin
  --verbose                 also show protocol details (interactive mode)
  --no-reconnect            exit when the connection is lost instead of reconnecting
  --timeouts K=MS[,K=MS]    protocol timers: setup, heartbeat, gap, confirm, shutdown
  --roster-settle MS        fold presence changes within MS into one re-key (default 0)
  --help, --version

Interactive commands: type /help once running. Exit status: 0 after leaving the room,
1 on failure, 2 for bad arguments.
)";
}

}  // namespace mpotr::chat
