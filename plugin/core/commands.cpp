// SPDX-License-Identifier: MIT
#include "plugin/core/commands.h"

#include <sys/un.h>

namespace mpotr::plugin {

const char* const kOtpUsage =
    "usage: /mpotr otp on|off|status|aliases, /mpotr otp device <path>, /mpotr otp alias <name> <nick|jid>..., "
    "/mpotr otp unalias <name>, /mpotr otp to <name> <text>";

namespace {

Error usage(const std::string& text) { return Error{ErrorCode::InvalidArgument, text}; }

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Splits off the first word of `s` (after leading blanks); `rest` keeps what follows, trimmed.
std::string first_word(const std::string& s, std::string* rest) {
  const std::string t = trim(s);
  const auto end = t.find_first_of(" \t");
  if (rest != nullptr) *rest = end == std::string::npos ? std::string() : trim(t.substr(end));
  return t.substr(0, end);
}

std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::string rest = s;
  for (std::string w = first_word(rest, &rest); !w.empty(); w = first_word(rest, &rest)) out.push_back(w);
  return out;
}

Result<Command> parse_otp(const std::vector<std::string>& args) {
  if (args.size() < 2) return usage(kOtpUsage);
  const std::string& action = args[1];
  // Everything after the action as one line: Profanity may have split it into words, or kept
  // it as one free-text argument.
  std::string rest;
  for (std::size_t i = 2; i < args.size(); ++i) rest += (rest.empty() ? "" : " ") + args[i];
  rest = trim(rest);
  cmd::Otp c;
  using Action = cmd::Otp::Action;
  auto bare = [&](Action a) -> Result<Command> {
    if (!rest.empty()) return usage("/mpotr otp " + action + " takes no arguments; " + kOtpUsage);
    c.action = a;
    return Command{c};
  };
  if (action == "on") return bare(Action::On);
  if (action == "off") return bare(Action::Off);
  if (action == "status") return bare(Action::Status);
  if (action == "aliases") return bare(Action::Aliases);
  if (action == "device") {
    c.action = Action::Device;
    c.path = rest;
    if (c.path.empty()) return usage("/mpotr otp device needs the socket path of your pad device; " + std::string(kOtpUsage));
    // A Unix socket: an absolute path that fits sockaddr_un.
    if (c.path[0] != '/') return usage("the pad device socket must be an absolute path");
    if (c.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return usage("the pad device socket path is too long (at most " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                   " bytes)");
    }
    return Command{c};
  }
  if (action == "alias") {
    c.action = Action::Alias;
    auto w = words(rest);
    if (w.size() < 2) return usage("/mpotr otp alias needs a name and at least one nick or JID; " + std::string(kOtpUsage));
    c.name = w[0];
    c.members.assign(w.begin() + 1, w.end());
    return Command{c};
  }
  if (action == "unalias") {
    c.action = Action::Unalias;
    auto w = words(rest);
    if (w.size() != 1) return usage("/mpotr otp unalias takes one alias name; " + std::string(kOtpUsage));
    c.name = w[0];
    return Command{c};
  }
  if (action == "to") {
    c.action = Action::To;
    c.name = first_word(rest, &c.text);
    if (c.name.empty() || c.text.empty()) return usage("/mpotr otp to needs an alias and a text; " + std::string(kOtpUsage));
    return Command{c};
  }
  return usage("unknown /mpotr otp action '" + action.substr(0, 32) + "'; " + kOtpUsage);
}

}  // namespace

const std::vector<std::string>& subcommands() {
  static const std::vector<std::string> k{"start", "end",    "status", "fingerprint", "trust", "untrust",
                                          "block", "verify", "secret", "policy",      "otp",     "help"};
  return k;
}

const std::vector<std::string>& otp_actions() {
  static const std::vector<std::string> k{"on", "off", "status", "to", "alias", "unalias", "aliases", "device"};
  return k;
}

const std::vector<std::string>& policy_values() {
  static const std::vector<std::string> k{"verified", "trusted"};
  return k;
}

const std::vector<std::string>& nick_subcommands() {
  static const std::vector<std::string> k{"fingerprint", "trust", "untrust", "block", "verify", "secret"};
  return k;
}

std::vector<std::string> help_lines() {
  return {
      "/mpotr start                 secure the current room (every member with mpOTR joins the session)",
      "/mpotr end                   end the session here: transcripts are compared, then keys published",
      "/mpotr status                members, their fingerprints and trust, session id and phase",
      "/mpotr fingerprint [nick]    your fingerprint, or a member's",
      "/mpotr trust <nick|jid>      you compared the member's fingerprint: mark it verified",
      "/mpotr untrust <nick|jid>    forget the recorded key (trusted on first use again)",
      "/mpotr block <nick|jid>      never accept this member's key (under any JID); you stay out while they are in",
      "/mpotr policy [verified|trusted]  admit verified members only to this room's session, or everyone not blocked",
      "/mpotr verify <nick> [question]   verify by a shared secret (SMP), then /mpotr secret",
      "/mpotr secret <nick> <secret>     the secret for a verification you started or were asked for",
      "/mpotr otp on|off            one-time-pad mode here: every line encrypted with the pad you share with each member",
      "/mpotr otp status            OTP mode, the pads you share with the members, the pad device",
      "/mpotr otp device <path>     your pad device's socket (mpotr-padd); for this run only (MPOTR_PAD_SOCKET keeps it)",
      "/mpotr otp alias <name> <nick|jid>...   name some members; /mpotr otp aliases lists, /mpotr otp unalias <name> forgets",
      "/mpotr otp to <name> <text>  one OTP line to that alias only (the others see that one was sent)",
  };
}

Result<Command> parse_command(const std::vector<std::string>& raw) {
  std::vector<std::string> args;
  for (const auto& a : raw) {
    if (a.size() > kMaxCommandArgLen) return usage("argument too long (at most " + std::to_string(kMaxCommandArgLen) + " bytes)");
    args.push_back(a);
  }
  if (args.empty() || args[0] == "help") return Command{cmd::Help{}};
  const std::string& sub = args[0];
  auto arity = [&](std::size_t min, std::size_t max) -> Result<void> {
    const std::size_t n = args.size() - 1;
    if (n < min || n > max) {
      return usage("wrong number of arguments for /mpotr " + sub + " (see /mpotr help)");
    }
    return {};
  };
  auto who = [&]() -> Result<std::string> {
    std::string w = trim(args[1]);
    if (w.empty()) return usage("/mpotr " + sub + " needs a nick or a JID");
    return w;
  };
  if (sub == "otp") return parse_otp(args);
  if (sub == "start" || sub == "end" || sub == "status") {
    if (auto a = arity(0, 0); !a.ok()) return a.error();
    if (sub == "start") return Command{cmd::Start{}};
    if (sub == "end") return Command{cmd::End{}};
    return Command{cmd::Status{}};
  }
  if (sub == "fingerprint") {
    if (auto a = arity(0, 1); !a.ok()) return a.error();
    return Command{cmd::Fingerprint{args.size() > 1 ? trim(args[1]) : std::string()}};
  }
  if (sub == "trust" || sub == "untrust" || sub == "block") {
    if (auto a = arity(1, 1); !a.ok()) return a.error();
    auto w = who();
    if (!w.ok()) return w.error();
    if (sub == "trust") return Command{cmd::Trust{w.value()}};
    if (sub == "untrust") return Command{cmd::Untrust{w.value()}};
    return Command{cmd::Block{w.value()}};
  }
  if (sub == "policy") {
    if (auto a = arity(0, 1); !a.ok()) return a.error();
    const std::string which = args.size() > 1 ? trim(args[1]) : std::string();
    if (which.empty()) return Command{cmd::Policy{}};
    if (which == "verified") return Command{cmd::Policy{cmd::Policy::Admission::VerifiedOnly}};
    if (which == "trusted") return Command{cmd::Policy{cmd::Policy::Admission::Trusted}};
    return usage("/mpotr policy takes 'verified' (verified members only) or 'trusted' (everyone not blocked)");
  }
  if (sub == "verify") {
    if (auto a = arity(1, 2); !a.ok()) return a.error();
    auto w = who();
    if (!w.ok()) return w.error();
    return Command{cmd::Verify{w.value(), args.size() > 2 ? trim(args[2]) : std::string()}};
  }
  if (sub == "secret") {
    if (auto a = arity(2, 2); !a.ok()) return a.error();
    auto w = who();
    if (!w.ok()) return w.error();
    std::string secret = trim(args[2]);
    if (secret.empty()) return usage("the secret is empty");
    return Command{cmd::Secret{w.value(), std::move(secret)}};
  }
  return usage("unknown subcommand '" + sub + "' (see /mpotr help)");
}

}  // namespace mpotr::plugin
