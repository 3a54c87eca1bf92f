// SPDX-License-Identifier: MIT
// The /mpotr command: its subcommands, parsed from the arguments Profanity splits (the last
// argument takes the rest of the line, so a question or a secret may contain spaces).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "mpotr/result.h"

namespace mpotr::plugin {

// Longest question or secret accepted from the command line.
inline constexpr std::size_t kMaxCommandArgLen = 1024;

namespace cmd {
struct Start {};
struct End {};
struct Status {};
struct Fingerprint {
  std::string who;  // empty: ours
};
struct Trust {  // the user checked this member's current key: it becomes verified
  std::string who;  // nick in the current room, or a bare JID
};
struct Untrust {  // forget the recorded key: trusted on first use again at the next session
  std::string who;
};
struct Block {  // never accept this member's key, under this JID or any other
  std::string who;
};
// Who this room admits to our session (spec §7.10): everyone whose key is not blocked or
// changed, or verified members only. Without an argument: show the room's policy.
struct Policy {
  enum class Admission : std::uint8_t { Show, Trusted, VerifiedOnly };
  Admission admission = Admission::Show;
};
struct Verify {  // SMP: ask `nick` to prove we share a secret and see the same keys
  std::string nick;
  std::string question;  // optional, shown to the other side
};
struct Secret {  // the shared secret for a verification we started or were asked for
  std::string nick;
  std::string secret;
};
// One-time-pad mode in the current room (spec/otp.md §10). Profanity hands over at most three
// arguments, the last one holding the rest of the line ("otp", "to", "core see you"), so the
// words after the action are split here, whichever way they arrived.
struct Otp {
  enum class Action : std::uint8_t { On, Off, Status, Device, Alias, Unalias, Aliases, To };
  Action action = Action::Status;
  std::string name;                  // Alias, Unalias, To: the alias
  std::vector<std::string> members;  // Alias: nicks or bare JIDs
  std::string text;                  // To: the line, verbatim apart from the ends
  std::string path;                  // Device: the socket
};
struct Help {};
}  // namespace cmd

using Command = std::variant<cmd::Start, cmd::End, cmd::Status, cmd::Fingerprint, cmd::Trust, cmd::Untrust, cmd::Block,
                             cmd::Verify, cmd::Secret, cmd::Policy, cmd::Otp, cmd::Help>;

// args: what Profanity passes after "/mpotr" (no argument at all is Help).
// Errors: InvalidArgument with a sentence for the user.
Result<Command> parse_command(const std::vector<std::string>& args);

// Subcommand names, in the order completion offers them.
const std::vector<std::string>& subcommands();
// Subcommands whose first argument is a member's nick (completed from the room).
const std::vector<std::string>& nick_subcommands();
// Actions of /mpotr otp, in the order completion offers them.
const std::vector<std::string>& otp_actions();
// Values of /mpotr policy, in the order completion offers them.
const std::vector<std::string>& policy_values();
// What /mpotr otp accepts, for usage errors.
extern const char* const kOtpUsage;
// One line per subcommand for /mpotr help.
std::vector<std::string> help_lines();

}  // namespace mpotr::plugin
