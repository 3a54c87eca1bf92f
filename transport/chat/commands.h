// SPDX-License-Identifier: MIT
// What the user (interactive lines) or a script (JSON lines) asks mpotr-chat to do, parsed
// into one Command variant. Pure: main.cpp executes commands, this file only understands them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "mpotr/engine.h"
#include "mpotr/result.h"

namespace mpotr::chat {

// Longest input line accepted on stdin; a longer one is discarded whole.
inline constexpr std::size_t kMaxLineLen = 64 * 1024;
// JSON nesting accepted in a command line; commands are flat, deeper input is refused before
// the parser (and its recursion) sees it.
inline constexpr std::size_t kMaxJsonDepth = 16;

struct SendText {
  std::string text;
};
struct ShowWho {};
struct ShowFingerprint {
  std::string nick;  // empty: our own
};
struct AcceptKey {  // /trust NICK: trust NICK's current (changed) key on first use
  std::string nick;
};
struct VerifyKey {  // /verify NICK FINGERPRINT after comparing out of band
  std::string nick;
  std::string fingerprint;  // grouped form ("1A2B3C4D 5E6F…"), already checked to be 64 hex digits
};
struct BlockMember {  // /block NICK: refuse NICK's JID and key; we stay out while NICK is in
  std::string nick;
};
struct SetPolicy {  // /policy trusted|verified: whom this room admits (spec §7.10)
  AdmissionPolicy policy = AdmissionPolicy::Trusted;
};
struct ShowStatus {};
struct RestartSetup {};
struct Leave {};  // graceful: shutdown protocol, then exit
struct Quit {};   // at once: keys are not published
struct ShowHelp {};  // interactive only
// One-time-pad mode (spec/otp.md §10): /otp on|off|status|aliases, /otp alias NAME MEMBER...,
// /otp unalias NAME, /otp to NAME TEXT.
struct OtpCommand {
  enum class Action { On, Off, Status, Alias, Unalias, Aliases, To };
  Action action = Action::Status;
  std::string name;                  // alias name (Alias, Unalias, To)
  std::vector<std::string> members;  // Alias: nicks or bare JIDs
  std::string text;                  // To
};

using Command = std::variant<SendText, ShowWho, ShowFingerprint, AcceptKey, VerifyKey, BlockMember, SetPolicy, ShowStatus,
                             RestartSetup, Leave, Quit, ShowHelp, OtpCommand>;

// The command's name as in JSON mode ("send", "who", …; "help" for ShowHelp).
std::string_view command_name(const Command& command);

// One interactive line. Nothing (no value) for a blank line. Plain text is SendText; "//x"
// sends "/x". Errors: InvalidArgument with a message for the user (unknown command, missing
// or extra arguments, bad fingerprint, oversize line).
Result<std::optional<Command>> parse_interactive_line(std::string_view line);

// One JSON command line: {"cmd":"send","text":"…","id":…}. `id` is whatever the line carried
// under "id" (null if none or unreadable) and goes back in the reply, also for errors.
struct JsonCommandLine {
  nlohmann::json id;
  Result<std::optional<Command>> command;  // no value: blank line
};
JsonCommandLine parse_json_command(std::string_view line);

// /help text, one entry per line.
std::vector<std::string> interactive_help();

// Splits stdin bytes into lines without ever holding more than max_line bytes of one line:
// a longer line is reported once as an error and its remaining bytes are dropped up to its end.
class LineBuffer {
 public:
  explicit LineBuffer(std::size_t max_line = kMaxLineLen) : m_max_line(max_line) {}

  // Complete lines without their "\n" or "\r\n", in order; an Error (LimitExceeded) in place
  // of each oversize line.
  std::vector<Result<std::string>> feed(std::string_view bytes);
  // End of input: the last line if it had no newline.
  std::optional<Result<std::string>> finish();

 private:
  std::size_t m_max_line;
  std::string m_partial;
  bool m_discarding = false;  // inside an oversize line, waiting for its newline
};

}  // namespace mpotr::chat
