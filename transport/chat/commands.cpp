// SPDX-License-Identifier: MIT
#include "commands.h"

#include <algorithm>
#include <cctype>

#include "mpotr/identity.h"

namespace mpotr::chat {

namespace {

Error bad(std::string detail) { return make_error(ErrorCode::InvalidArgument, std::move(detail)); }

Error oversize_error(std::size_t max_line = kMaxLineLen) {
  return make_error(ErrorCode::LimitExceeded,
                    "line longer than " + std::to_string(max_line) + " bytes: discarded, nothing was sent");
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Spaces, tabs and colons are cosmetic in a typed fingerprint; the grouped form comes back.
Result<std::string> normalise_fingerprint(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (!is_space(c) && c != ':') {
      digits.push_back(c);
    }
  }
  if (digits.size() > 256) {
    return bad("fingerprint is too long: expected 64 hex digits");
  }
  auto fp = Fingerprint::parse(digits);
  if (!fp.ok()) {
    return bad("bad fingerprint: " + fp.error().detail);
  }
  return fp->grouped();
}

std::size_t hex_digits(std::string_view token) {
  std::size_t n = 0;
  for (char c : token) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      ++n;
    } else if (c != ':') {
      return 0;  // not part of a fingerprint
    }
  }
  return n;
}

// "/verify NICK FINGERPRINT": nicks may contain spaces and fingerprints are often typed in
// groups, so the fingerprint is the shortest run of trailing words holding exactly 64 hex digits.
Result<AdmissionPolicy> parse_policy(std::string_view word) {
  if (word == "trusted") {
    return AdmissionPolicy::Trusted;
  }
  if (word == "verified") {
    return AdmissionPolicy::VerifiedOnly;
  }
  return bad("policy '" + std::string(word.substr(0, 32)) + "': expected 'trusted' or 'verified'");
}

Result<Command> parse_verify(std::string_view args) {
  static const char* const kUsage = "usage: /verify NICK FINGERPRINT (64 hex digits, spaces allowed)";
  std::string_view rest = trim(args);
  std::size_t digits = 0;
  std::string_view nick = rest;
  while (!nick.empty() && digits < 64) {
    const auto space = nick.find_last_of(" \t");
    const std::string_view token = space == std::string_view::npos ? nick : nick.substr(space + 1);
    const std::size_t n = hex_digits(token);
    if (n == 0) {
      break;
    }
    digits += n;
    nick = space == std::string_view::npos ? std::string_view() : trim(nick.substr(0, space));
  }
  if (digits != 64) {
    return bad(std::string("/verify: no fingerprint of 64 hex digits at the end of the line; ") + kUsage);
  }
  if (nick.empty()) {
    return bad(std::string("/verify: missing nick; ") + kUsage);
  }
  const std::string_view fp_text = trim(rest.substr(nick.size()));
  MPOTR_TRY(std::string fingerprint, normalise_fingerprint(fp_text));
  return Command{VerifyKey{std::string(nick), std::move(fingerprint)}};
}

constexpr const char* kOtpUsage =
    "usage: /otp on | off | status | aliases | alias NAME NICK... | unalias NAME | to NAME TEXT";

// "/otp ...": the first word is the action; an alias member list is split on spaces (nicks
// with spaces can be given by JID instead).
Result<Command> parse_otp(std::string_view args) {
  const auto space = args.find_first_of(" \t");
  const std::string_view action = args.substr(0, space);
  std::string_view rest = space == std::string_view::npos ? std::string_view() : trim(args.substr(space + 1));
  OtpCommand c;
  auto take_word = [&]() {
    const auto sp = rest.find_first_of(" \t");
    std::string word(rest.substr(0, sp));
    rest = sp == std::string_view::npos ? std::string_view() : trim(rest.substr(sp + 1));
    return word;
  };
  auto bare = [&](OtpCommand::Action a) -> Result<Command> {
    if (!rest.empty()) return bad(std::string("/otp ") + std::string(action) + " takes no arguments");
    c.action = a;
    return Command{c};
  };
  if (action == "on") return bare(OtpCommand::Action::On);
  if (action == "off") return bare(OtpCommand::Action::Off);
  if (action == "status" || action.empty()) return bare(OtpCommand::Action::Status);
  if (action == "aliases") return bare(OtpCommand::Action::Aliases);
  if (action == "alias") {
    c.action = OtpCommand::Action::Alias;
    c.name = take_word();
    while (!rest.empty()) c.members.push_back(take_word());
    if (c.name.empty() || c.members.empty()) return bad(std::string("/otp alias needs a name and members; ") + kOtpUsage);
    return Command{c};
  }
  if (action == "unalias") {
    c.action = OtpCommand::Action::Unalias;
    c.name = take_word();
    if (c.name.empty() || !rest.empty()) return bad(std::string("/otp unalias takes one name; ") + kOtpUsage);
    return Command{c};
  }
  if (action == "to") {
    c.action = OtpCommand::Action::To;
    c.name = take_word();
    c.text = std::string(rest);
    if (c.name.empty() || c.text.empty()) return bad(std::string("/otp to needs an alias and a text; ") + kOtpUsage);
    return Command{c};
  }
  return bad("unknown /otp action '" + std::string(action.substr(0, 32)) + "'; " + kOtpUsage);
}

// Depth of [ and { outside strings; beyond kMaxJsonDepth the line is refused unparsed.
bool json_too_deep(std::string_view line) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return true;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

Result<std::string> string_field(const nlohmann::json& j, const char* name, std::string_view cmd) {
  const auto it = j.find(name);
  if (it == j.end()) {
    return bad("\"" + std::string(cmd) + "\" needs \"" + name + "\"");
  }
  if (!it->is_string()) {
    return bad("\"" + std::string(name) + "\" must be a string");
  }
  return it->get<std::string>();
}

Result<std::string> nonempty_string_field(const nlohmann::json& j, const char* name, std::string_view cmd) {
  MPOTR_TRY(std::string value, string_field(j, name, cmd));
  if (trim(value).empty()) {
    return bad("\"" + std::string(name) + "\" must not be empty");
  }
  return value;
}

Result<Command> command_from_json(const nlohmann::json& j) {
  const auto cmd_it = j.find("cmd");
  if (cmd_it == j.end()) {
    return bad("missing \"cmd\"");
  }
  if (!cmd_it->is_string()) {
    return bad("\"cmd\" must be a string");
  }
  const std::string cmd = cmd_it->get<std::string>();
  if (cmd == "send") {
    MPOTR_TRY(std::string text, nonempty_string_field(j, "text", cmd));
    return Command{SendText{std::move(text)}};
  }
  if (cmd == "who") {
    return Command{ShowWho{}};
  }
  if (cmd == "status") {
    return Command{ShowStatus{}};
  }
  if (cmd == "fingerprint") {
    if (!j.contains("nick")) {
      return Command{ShowFingerprint{}};
    }
    MPOTR_TRY(std::string nick, nonempty_string_field(j, "nick", cmd));
    return Command{ShowFingerprint{std::move(nick)}};
  }
  if (cmd == "verify") {
    MPOTR_TRY(std::string nick, nonempty_string_field(j, "nick", cmd));
    MPOTR_TRY(std::string fp_text, string_field(j, "fingerprint", cmd));
    MPOTR_TRY(std::string fingerprint, normalise_fingerprint(fp_text));
    return Command{VerifyKey{std::move(nick), std::move(fingerprint)}};
  }
  if (cmd == "trust") {
    MPOTR_TRY(std::string nick, nonempty_string_field(j, "nick", cmd));
    return Command{AcceptKey{std::move(nick)}};
  }
  if (cmd == "block") {
    MPOTR_TRY(std::string nick, nonempty_string_field(j, "nick", cmd));
    return Command{BlockMember{std::move(nick)}};
  }
  if (cmd == "policy") {
    MPOTR_TRY(std::string policy, nonempty_string_field(j, "policy", cmd));
    MPOTR_TRY(AdmissionPolicy p, parse_policy(policy));
    return Command{SetPolicy{p}};
  }
  if (cmd == "restart") {
    return Command{RestartSetup{}};
  }
  if (cmd == "leave") {
    return Command{Leave{}};
  }
  if (cmd == "quit") {
    return Command{Quit{}};
  }
  if (cmd == "otp") {
    // {"cmd":"otp","action":"on"}, {"cmd":"otp","action":"alias","name":"x","members":["bob"]},
    // {"cmd":"otp","action":"to","name":"x","text":"…"}: the same actions as /otp.
    MPOTR_TRY(std::string action, nonempty_string_field(j, "action", cmd));
    std::string line = action;
    if (j.contains("name")) {
      MPOTR_TRY(std::string name, nonempty_string_field(j, "name", cmd));
      if (name.find_first_of(" \t") != std::string::npos) return bad("\"name\" must be one word");
      line += " " + name;
    }
    if (j.contains("members")) {
      const auto& m = j.at("members");
      if (!m.is_array()) return bad("\"members\" must be an array of strings");
      for (const auto& x : m) {
        if (!x.is_string() || x.get_ref<const std::string&>().empty() ||
            x.get_ref<const std::string&>().find_first_of(" \t") != std::string::npos) {
          return bad("every member must be a nick or JID without spaces");
        }
        line += " " + x.get<std::string>();
      }
    }
    if (j.contains("text")) {
      MPOTR_TRY(std::string text, nonempty_string_field(j, "text", cmd));
      if (action != "to") return bad("\"text\" is only for the action \"to\"");
      MPOTR_TRY(Command c, parse_otp(line + " -"));
      std::get<OtpCommand>(c).text = std::move(text);  // verbatim, spaces included
      return c;
    }
    return parse_otp(line);
  }
  return bad("unknown cmd \"" + cmd + "\" (known: send, who, status, fingerprint, verify, trust, restart, leave, quit, otp)");
}

}  // namespace

std::string_view command_name(const Command& command) {
  struct Name {
    std::string_view operator()(const SendText&) const { return "send"; }
    std::string_view operator()(const ShowWho&) const { return "who"; }
    std::string_view operator()(const ShowFingerprint&) const { return "fingerprint"; }
    std::string_view operator()(const AcceptKey&) const { return "trust"; }
    std::string_view operator()(const BlockMember&) const { return "block"; }
    std::string_view operator()(const SetPolicy&) const { return "policy"; }
    std::string_view operator()(const VerifyKey&) const { return "verify"; }
    std::string_view operator()(const ShowStatus&) const { return "status"; }
    std::string_view operator()(const RestartSetup&) const { return "restart"; }
    std::string_view operator()(const Leave&) const { return "leave"; }
    std::string_view operator()(const Quit&) const { return "quit"; }
    std::string_view operator()(const ShowHelp&) const { return "help"; }
    std::string_view operator()(const OtpCommand&) const { return "otp"; }
  };
  return std::visit(Name{}, command);
}

Result<std::optional<Command>> parse_interactive_line(std::string_view line) {
  if (line.size() > kMaxLineLen) {
    return oversize_error();
  }
  if (trim(line).empty()) {
    return std::optional<Command>();
  }
  if (line.front() != '/') {
    return std::optional<Command>(SendText{std::string(line)});
  }
  if (line.size() >= 2 && line[1] == '/') {
    return std::optional<Command>(SendText{std::string(line.substr(1))});  // "//x" sends "/x"
  }
  const auto space = line.find_first_of(" \t");
  const std::string_view name = line.substr(0, space);
  const std::string_view args = space == std::string_view::npos ? std::string_view() : trim(line.substr(space + 1));
  auto no_args = [&](Command c) -> Result<std::optional<Command>> {
    if (!args.empty()) {
      return bad(std::string(name) + " takes no arguments");
    }
    return std::optional<Command>(std::move(c));
  };
  if (name == "/who") {
    return no_args(ShowWho{});
  }
  if (name == "/status") {
    return no_args(ShowStatus{});
  }
  if (name == "/restart") {
    return no_args(RestartSetup{});
  }
  if (name == "/leave") {
    return no_args(Leave{});
  }
  if (name == "/quit") {
    return no_args(Quit{});
  }
  if (name == "/help") {
    return no_args(ShowHelp{});
  }
  if (name == "/fingerprint") {
    return std::optional<Command>(ShowFingerprint{std::string(args)});
  }
  if (name == "/trust") {
    if (args.empty()) {
      return bad("usage: /trust NICK (accept NICK's new key)");
    }
    return std::optional<Command>(AcceptKey{std::string(args)});
  }
  if (name == "/verify") {
    MPOTR_TRY(Command verify, parse_verify(args));
    return std::optional<Command>(std::move(verify));
  }
  if (name == "/block") {
    if (args.empty()) {
      return bad("usage: /block NICK (refuse NICK's JID and key; you stay out of the session while NICK is in)");
    }
    return std::optional<Command>(BlockMember{std::string(args)});
  }
  if (name == "/policy") {
    auto p = parse_policy(args);
    if (!p.ok()) {
      return bad("usage: /policy trusted|verified");
    }
    return std::optional<Command>(SetPolicy{*p});
  }
  if (name == "/otp") {
    MPOTR_TRY(Command otp, parse_otp(args));
    return std::optional<Command>(std::move(otp));
  }
  return bad("unknown command " + std::string(name.substr(0, 64)) +
             " (nothing was sent; /help lists the commands, start a message with // to send a line beginning with /)");
}

JsonCommandLine parse_json_command(std::string_view line) {
  JsonCommandLine out{nullptr, std::optional<Command>()};
  if (line.size() > kMaxLineLen) {
    out.command = oversize_error();
    return out;
  }
  if (trim(line).empty()) {
    return out;
  }
  if (json_too_deep(line)) {
    out.command = bad("malformed command: JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return out;
  }
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    out.command = bad("malformed JSON: expected one object per line, like {\"cmd\":\"send\",\"text\":\"hi\"}");
    return out;
  }
  if (!j.is_object()) {
    out.command = bad("a command must be a JSON object, like {\"cmd\":\"who\"}");
    return out;
  }
  if (const auto it = j.find("id"); it != j.end()) {
    out.id = *it;
  }
  auto command = command_from_json(j);
  if (!command.ok()) {
    out.command = std::move(command).error();
    return out;
  }
  out.command = std::optional<Command>(std::move(command).value());
  return out;
}

std::vector<std::string> interactive_help() {
  return {
      "Type a line to send it to the secured session. Commands:",
      "  /who                      who is in the room and in the session, with fingerprints and trust",
      "  /status                   connection, session and the confirmation of your recent messages",
      "  /fingerprint [NICK]       your fingerprint, or NICK's",
      "  /verify NICK FINGERPRINT  mark NICK verified after comparing fingerprints out of band",
      "  /trust NICK               accept NICK's new key (after they changed devices)",
      "  /block NICK               refuse NICK's JID and key: you stay out of the session while NICK is in",
      "  /policy trusted|verified  whom you admit: any unblocked key (trust on first use) or verified keys only",
      "  /restart                  start the session setup again",
      "  /leave                    leave properly (transcript check, key publication) and exit",
      "  /quit                     exit at once without the transcript check (your key stays withheld)",
      "  /otp on|off               one-time-pad mode: every line encrypted with the pad shared with each member",
      "  /otp status               the pads you share with the members of the session",
      "  /otp alias NAME NICK...   name a group of members; /otp to NAME TEXT sends to them only",
      "  /otp aliases | unalias N  list or forget aliases",
      "  /help                     this list",
      "  //text                    send a line that starts with /",
  };
}

std::vector<Result<std::string>> LineBuffer::feed(std::string_view bytes) {
  std::vector<Result<std::string>> lines;
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const std::string_view segment = bytes.substr(0, newline);
    if (newline == std::string_view::npos) {
      bytes = {};
      if (m_discarding) {
        break;
      }
      m_partial.append(segment);
      if (m_partial.size() > m_max_line + 1) {  // + 1: room for the '\r' of a "\r\n"
        lines.emplace_back(oversize_error(m_max_line));
        m_partial.clear();
        m_discarding = true;
      }
      break;
    }
    bytes.remove_prefix(newline + 1);
    if (m_discarding) {
      m_discarding = false;  // the oversize line ends here; already reported
      continue;
    }
    m_partial.append(segment);
    if (!m_partial.empty() && m_partial.back() == '\r') {
      m_partial.pop_back();
    }
    if (m_partial.size() > m_max_line) {
      lines.emplace_back(oversize_error(m_max_line));
    } else {
      lines.emplace_back(std::move(m_partial));
    }
    m_partial.clear();
  }
  return lines;
}

std::optional<Result<std::string>> LineBuffer::finish() {
  const bool discarding = std::exchange(m_discarding, false);
  std::string last = std::exchange(m_partial, {});
  if (discarding || last.empty()) {
    return std::nullopt;
  }
  if (last.back() == '\r') {
    last.pop_back();
  }
  if (last.size() > m_max_line) {
    return Result<std::string>(oversize_error(m_max_line));
  }
  return Result<std::string>(std::move(last));
}

}  // namespace mpotr::chat
