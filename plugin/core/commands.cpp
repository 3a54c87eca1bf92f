// SPDX-License-Identifier: MIT
#include "plugin/core/commands.h"

namespace mpotr::plugin {

namespace {

Error usage(const std::string& text) { return Error{ErrorCode::InvalidArgument, text}; }

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

}  // namespace

const std::vector<std::string>& subcommands() {
  static const std::vector<std::string> k{"start", "end",    "status", "fingerprint", "trust", "untrust",
                                          "block", "verify", "secret", "otp",         "help"};
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
      "/mpotr block <nick|jid>      never accept this member's key",
      "/mpotr verify <nick> [question]   verify by a shared secret (SMP), then /mpotr secret",
      "/mpotr secret <nick> <secret>     the secret for a verification you started or were asked for",
      "/mpotr otp                   reserved for the one-time-pad mode",
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
  if (sub == "start" || sub == "end" || sub == "status" || sub == "otp") {
    if (auto a = arity(0, sub == "otp" ? 8 : 0); !a.ok()) return a.error();
    if (sub == "start") return Command{cmd::Start{}};
    if (sub == "end") return Command{cmd::End{}};
    if (sub == "status") return Command{cmd::Status{}};
    return Command{cmd::Otp{}};
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
