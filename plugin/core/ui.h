// SPDX-License-Identifier: MIT
// What the plugin core asks of its XMPP client. The Profanity glue implements it over profapi
// (prof_send_stanza, prof_room_show_themed, …); tests implement it with a fake server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mpotr::plugin {

enum class Tone : std::uint8_t {
  Info,     // progress, status output
  Good,     // secured, verified
  Warning,  // something failed, nothing forged
  Alert,    // evidence of an attack, a changed key, a failed verification
};

class Ui {
 public:
  virtual ~Ui() = default;
  // Sends raw XML on the client's stream, bypassing its own stanza hooks. False if offline.
  virtual bool send_stanza(const std::string& xml) = 0;
  // A line in the room's window; false if there is no such window.
  virtual bool room_line(const std::string& room, Tone tone, const std::string& text) = 0;
  virtual void console_line(Tone tone, const std::string& text) = 0;
  // The room window's title bar shows "[text]"; an empty text removes it.
  virtual void room_title(const std::string& room, const std::string& text) = 0;
  // Marks the room's message lines as encrypted (or back to the default).
  virtual void room_encrypted_char(const std::string& room, bool encrypted) = 0;
  // Replaces the completion list for "/mpotr <subcommand>" arguments.
  virtual void completions(const std::string& key, const std::vector<std::string>& items) = 0;
  virtual void log(Tone tone, const std::string& text) = 0;
};

}  // namespace mpotr::plugin
