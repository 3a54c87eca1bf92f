// SPDX-License-Identifier: MIT
// What a hostile server (or room) can make Profanity hand the plugin: any stanza text in any
// hook, in any order, around a room the plugin has secured. The input is up to 16 items
// separated by NUL bytes; the first byte of an item picks the hook, the rest is its text.
// Properties: nothing crashes or leaks, and the outgoing-message hook never lets a <body>
// through to the secured room, whatever came before.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "plugin/core/plugin_core.h"

using namespace mpotr;
using namespace mpotr::plugin;

namespace {

constexpr std::string_view kRoom = "room@conference.localhost";
constexpr std::size_t kMaxItems = 16;

class NullUi final : public Ui {
 public:
  bool send_stanza(const std::string&) override { return true; }
  bool room_line(const std::string&, Tone, const std::string&) override { return true; }
  void console_line(Tone, const std::string&) override {}
  void room_title(const std::string&, const std::string&) override {}
  void room_encrypted_char(const std::string&, bool) override {}
  void completions(const std::string&, const std::vector<std::string>&) override {}
  void log(Tone, const std::string&) override {}
};

// One data directory for the whole run (the identity key is created by the first input),
// removed when the fuzzer exits.
struct DataDir {
  DataDir() {
    char tmpl[] = "/tmp/mpotr-fuzz-plugin-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    path = tmpl;
  }
  ~DataDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

const std::string& data_dir() {
  static const DataDir dir;
  return dir.path;
}

const std::string kSelfPresence =
    "<presence from='room@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc#user'>"
    "<item jid='alice@localhost/prof'/><status code='100'/><status code='110'/></x></presence>";
const std::string kBobPresence =
    "<presence from='room@conference.localhost/bob'><x xmlns='http://jabber.org/protocol/muc#user'>"
    "<item jid='bob@localhost/prof'/></x><mpotr xmlns='urn:mpotr:2'/></presence>";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  NullUi ui;
  PluginCore core(ui, PluginPaths{data_dir()}, std::make_unique<DeterministicRng>(size));
  TimeMs now = 1000;
  core.on_connect("alice@localhost/prof", now);
  core.on_presence_stanza_receive(kBobPresence, now);
  core.on_presence_stanza_receive(kSelfPresence, now);
  core.on_command({"start"}, std::string(kRoom), now, "alice");
  FUZZ_CHECK(core.secured(kRoom));

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  for (std::size_t n = 0; n < kMaxItems && start < input.size(); ++n) {
    const std::size_t end = std::min(input.find('\0', start), input.size());
    const std::string_view item = input.substr(start, end - start);
    start = end + 1;
    if (item.empty()) continue;
    const std::string text(item.substr(1));
    now += 500;
    switch (item[0] % 7) {
      case 0:
        (void)core.on_message_stanza_receive(text, now);
        break;
      case 1:
        core.on_presence_stanza_receive(text, now);
        break;
      case 2:
        (void)core.on_presence_stanza_send(text);
        break;
      case 3:
        (void)core.on_room_message_display(kRoom, "bob", text);
        break;
      case 4:
        (void)core.on_room_message_send(kRoom, text, now);
        break;
      case 5: {
        std::vector<std::string> args;
        std::size_t a = 0;
        while (a <= text.size() && args.size() < 4) {
          const std::size_t b = std::min(text.find(' ', a), text.size());
          args.push_back(text.substr(a, b - a));
          a = b + 1;
        }
        core.on_command(args, std::string(kRoom), now, "alice");
        break;
      }
      default:
        core.on_timer(now);
        break;
    }
    // while the room is secured, a plaintext line to it never leaves.
    if (core.secured(kRoom)) {
      const auto out = core.on_message_stanza_send(
          "<message to='room@conference.localhost' type='groupchat' id='x'><body>secret words</body></message>");
      FUZZ_CHECK(out && out->find("secret words") == std::string::npos);
    }
  }
  core.shutdown(now);
  return 0;
}
