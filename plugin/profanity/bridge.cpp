// SPDX-License-Identifier: MIT
// C entry points over PluginCore. Each one is a wall: exceptions are caught, logged, and turned
// into the safe answer for that hook (an outgoing stanza we cannot judge is not sent, a room
// line we cannot encrypt is not sent).
#include "plugin/profanity/bridge.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "plugin/core/plugin_core.h"

namespace {

using mpotr::plugin::PluginCore;
using mpotr::plugin::Tone;

class OpsUi final : public mpotr::plugin::Ui {
 public:
  explicit OpsUi(const mpotr_ui_ops& ops) : m_ops(ops) {}
  bool send_stanza(const std::string& xml) override { return m_ops.send_stanza(xml.c_str()) != 0; }
  bool room_line(const std::string& room, Tone tone, const std::string& text) override {
    return m_ops.room_line(room.c_str(), static_cast<int>(tone), text.c_str()) != 0;
  }
  void console_line(Tone tone, const std::string& text) override { m_ops.console_line(static_cast<int>(tone), text.c_str()); }
  void room_title(const std::string& room, const std::string& text) override { m_ops.room_title(room.c_str(), text.c_str()); }
  void room_encrypted_char(const std::string& room, bool encrypted) override { m_ops.room_char(room.c_str(), encrypted ? 1 : 0); }
  void completions(const std::string& key, const std::vector<std::string>& items) override {
    std::vector<char*> ptrs;
    ptrs.reserve(items.size() + 1);
    for (const auto& i : items) ptrs.push_back(const_cast<char*>(i.c_str()));
    ptrs.push_back(nullptr);
    m_ops.completions(key.c_str(), ptrs.data());
  }
  void log(Tone tone, const std::string& text) override { m_ops.log(static_cast<int>(tone), text.c_str()); }

 private:
  mpotr_ui_ops m_ops;
};

struct State {
  std::unique_ptr<OpsUi> ui;
  std::unique_ptr<PluginCore> core;
};

// Never destroyed: Profanity calls hooks from its own exit handler, possibly after the
// plugin's static destructors would have run. The core itself is freed by shutdown.
State& state() {
  static State& s = *new State;
  return s;
}

void report(const char* where, const char* what) {
  auto& s = state();
  if (s.ui) s.ui->log(Tone::Alert, std::string("mpOTR internal error in ") + where + ": " + what);
}

template <class F, class R>
R guarded(const char* where, R fallback, F&& f) noexcept {
  try {
    if (!state().core) return fallback;
    return f(*state().core);
  } catch (const std::exception& e) {
    report(where, e.what());
  } catch (...) {
    report(where, "unknown exception");
  }
  return fallback;
}

char* dup(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// The suppressing answer when we cannot even build a string: Profanity frees what we return.
char* suppressed() { return dup(" "); }

// A NULL-terminated array over strings of static storage, as Profanity's completer wants it
// (callers keep it for the process); an empty list if even that fails.
char** c_list(const char* what, const std::vector<std::string>& (*strings)()) noexcept {
  static char* empty[] = {nullptr};
  try {
    auto* v = new std::vector<char*>;  // kept for the process, like the strings it points to
    for (const auto& s : strings()) v->push_back(const_cast<char*>(s.c_str()));
    v->push_back(nullptr);
    return v->data();
  } catch (const std::exception& e) {
    report(what, e.what());
  } catch (...) {
    report(what, "unknown exception");
  }
  return empty;
}

}  // namespace

extern "C" {

int mpotr_bridge_init(const mpotr_ui_ops* ops, const char* data_dir) {
  try {
    auto& s = state();
    s.core.reset();
    s.ui = std::make_unique<OpsUi>(*ops);
    s.core = std::make_unique<PluginCore>(*s.ui, mpotr::plugin::PluginPaths{data_dir}, std::make_unique<mpotr::SystemRng>());
    return 1;
  } catch (const std::exception& e) {
    ops->console_line(MPOTR_TONE_ALERT, (std::string("mpOTR could not start: ") + e.what()).c_str());
  } catch (...) {
    ops->console_line(MPOTR_TONE_ALERT, "mpOTR could not start");
  }
  return 0;
}

void mpotr_bridge_connect(const char* fulljid, int64_t now) {
  guarded("connect", 0, [&](PluginCore& c) {
    c.on_connect(fulljid != nullptr ? fulljid : "", now);
    return 0;
  });
}

void mpotr_bridge_disconnect(int64_t now) {
  guarded("disconnect", 0, [&](PluginCore& c) {
    c.on_disconnect(now);
    return 0;
  });
}

void mpotr_bridge_shutdown(int64_t now) {
  guarded("shutdown", 0, [&](PluginCore& c) {
    c.shutdown(now);
    return 0;
  });
  try {
    state().core.reset();
    state().ui.reset();
  } catch (...) {  // destructors do not throw; nothing to report to once the UI is gone
  }
}

int mpotr_bridge_message_receive(const char* xml, int64_t now) {
  return guarded("message receive", 1, [&](PluginCore& c) { return c.on_message_stanza_receive(xml, now) ? 1 : 0; });
}

void mpotr_bridge_presence_receive(const char* xml, int64_t now) {
  guarded("presence receive", 0, [&](PluginCore& c) {
    c.on_presence_stanza_receive(xml, now);
    return 0;
  });
}

char* mpotr_bridge_presence_send(const char* xml) {
  return guarded("presence send", static_cast<char*>(nullptr), [&](PluginCore& c) -> char* {
    auto r = c.on_presence_stanza_send(xml);
    return r ? dup(*r) : nullptr;
  });
}

char* mpotr_bridge_message_send(const char* xml) {
  // Fail closed: if the core cannot decide, the stanza is not sent.
  char* fallback = nullptr;
  try {
    if (state().core) fallback = suppressed();
  } catch (...) {
  }
  char* result = guarded("message send", fallback, [&](PluginCore& c) -> char* {
    auto r = c.on_message_stanza_send(xml);
    return r ? dup(*r) : nullptr;
  });
  if (result != fallback) std::free(fallback);
  return result;
}

int mpotr_bridge_room_send(const char* room, const char* text, int64_t now) {
  if (!state().core) return 1;
  return guarded("room send", 0, [&](PluginCore& c) {
    return c.on_room_message_send(room, text, now) == mpotr::plugin::SendVerdict::Unchanged ? 1 : 0;
  });
}

char* mpotr_bridge_room_display(const char* room, const char* nick, const char* body) {
  return guarded("room display", static_cast<char*>(nullptr), [&](PluginCore& c) -> char* {
    auto r = c.on_room_message_display(room, nick != nullptr ? nick : "", body != nullptr ? body : "");
    return r ? dup(*r) : nullptr;
  });
}

void mpotr_bridge_command(char** args, const char* current_room, const char* room_nick, int64_t now) {
  guarded("command", 0, [&](PluginCore& c) {
    std::vector<std::string> a;
    for (char** p = args; p != nullptr && *p != nullptr; ++p) a.emplace_back(*p);
    c.on_command(a, current_room != nullptr ? std::optional<std::string>(current_room) : std::nullopt, now,
                 room_nick != nullptr ? room_nick : "");
    return 0;
  });
}

void mpotr_bridge_timer(int64_t now) {
  guarded("timer", 0, [&](PluginCore& c) {
    c.on_timer(now);
    return 0;
  });
}

char** mpotr_bridge_subcommands(void) {
  static char** items = c_list("subcommands", mpotr::plugin::subcommands);
  return items;
}

char** mpotr_bridge_otp_actions(void) {
  static char** items = c_list("otp actions", mpotr::plugin::otp_actions);
  return items;
}

char** mpotr_bridge_policy_values(void) {
  static char** items = c_list("policy values", mpotr::plugin::policy_values);
  return items;
}

}  // extern "C"
