// SPDX-License-Identifier: MIT
// mpotr-pad: generate pads, and show what a device holds (through its daemon, or the files).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "mpotr/otp/pad_store.h"
#include "mpotr/otp/otc_import.h"
#include "mpotr/rng.h"
#include "otp/device/client.h"

namespace {

using namespace mpotr;
using namespace mpotr::otp;
using json = nlohmann::json;

constexpr const char* kUsage =
    "usage: mpotr-pad generate --me ID --peer ID --size N[K|M|G] --out DIR --peer-out DIR [--source FILE]\n"
    "       mpotr-pad status (--socket PATH | --dir PADDIR) [--contact ID]\n"
    "       mpotr-pad list   (--socket PATH | --dir PADDIR)\n"
    "       mpotr-pad import-otc --store UID.RID.random.store --metadata UID.RID.random.metadata --out PADDIR\n"
    "  generate writes your copy to --out and the peer's to --peer-out (e.g. removable media);\n"
    "  --source defaults to the system CSPRNG (getrandom); /dev/random or a file also work.\n";

int fail(const std::string& msg) {
  std::cerr << "mpotr-pad: " << msg << "\n";
  return 2;
}

// "1M" = 1 MiB. Only digits and one optional suffix; overflow is refused.
bool parse_size(const std::string& s, std::uint64_t& out) {
  if (s.empty()) return false;
  std::uint64_t mult = 1;
  std::string digits = s;
  switch (s.back()) {
    case 'K': case 'k': mult = 1ull << 10; digits.pop_back(); break;
    case 'M': case 'm': mult = 1ull << 20; digits.pop_back(); break;
    case 'G': case 'g': mult = 1ull << 30; digits.pop_back(); break;
    default: break;
  }
  if (digits.empty() || digits.size() > 13) return false;
  std::uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v * mult;
  return out / mult == v;
}

using Options = std::map<std::string, std::string>;

// --name value pairs; only the names in `allowed`.
bool parse_options(int argc, char** argv, const std::vector<std::string>& allowed, Options& out, std::string& err) {
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    bool ok = false;
    for (const auto& n : allowed) ok = ok || a == "--" + n;
    if (!ok) {
      err = "unknown option " + a;
      return false;
    }
    if (i + 1 >= argc) {
      err = "option " + a + " needs a value";
      return false;
    }
    if (!out.emplace(a.substr(2), argv[++i]).second) {
      err = "option " + a + " given twice";
      return false;
    }
  }
  return true;
}

std::string human(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
  return buf;
}

// A progress line on stderr: percent, amount, throughput, ETA (redrawn in place on a terminal).
class Progress {
 public:
  void operator()(std::uint64_t done, std::uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done != total && now - m_last < std::chrono::milliseconds(200)) return;
    m_last = now;
    const double secs = std::chrono::duration<double>(now - m_start).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
    std::fprintf(stderr, "%s%5.1f%%  %s / %s  %.1f MB/s  ETA %.0f s%s", m_tty ? "\r" : "",
                 total ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0,
                 human(static_cast<double>(done)).c_str(), human(static_cast<double>(total)).c_str(), rate / 1e6, eta,
                 m_tty ? "   " : "\n");
  }
  void finish() const {
    if (m_tty) std::fputc('\n', stderr);
  }

 private:
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last = m_start - std::chrono::seconds(1);
  bool m_tty = ::isatty(STDERR_FILENO) != 0;
};

int cmd_generate(const Options& o) {
  for (const char* k : {"me", "peer", "size", "out", "peer-out"}) {
    if (!o.count(k)) return fail(std::string("generate needs --") + k + "\n" + kUsage);
  }
  std::uint64_t size = 0;
  if (!parse_size(o.at("size"), size)) return fail("--size must be a number with an optional K, M or G suffix");
  SystemRng rng;
  RngByteSource system_source(rng);
  std::unique_ptr<FileByteSource> file_source;
  ByteSource* source = &system_source;
  if (o.count("source")) {
    auto fs = FileByteSource::open(o.at("source"));
    if (!fs) return fail("cannot open the source: " + fs.error().detail);
    file_source = std::move(fs).value();
    source = file_source.get();
  }
  Progress progress;
  auto gen = generate_pad(o.at("out"), o.at("me"), o.at("peer-out"), o.at("peer"), size, *source, std::ref(progress));
  progress.finish();
  if (!gen) return fail("generate failed: " + gen.error().detail);
  std::cout << "pad " << pad_id_hex(gen->pad_id) << "\n  yours: " << gen->path_a << "\n  " << o.at("peer")
            << "'s: " << gen->path_b << "\n";
  return 0;
}

// status/list through the daemon.
int via_socket(const std::string& path, const json& request) {
  auto c = otp::device::Client::connect_unix(path);
  if (!c) return fail(c.error().detail);
  auto r = c->call(request);
  if (!r) return fail(r.error().detail);
  const json& j = r.value();
  if (!j.value("ok", false)) {
    return fail("the daemon refused: " + j["error"].value("code", std::string("?")) + ": " +
                j["error"].value("detail", std::string("?")));
  }
  for (const auto& c2 : j["contacts"]) {
    if (c2.is_string()) {
      std::cout << c2.get<std::string>() << "\n";
    } else {
      std::cout << c2["contact"].get<std::string>() << "  send " << c2["send_remaining"].get<std::uint64_t>()
                << " B left  receive " << c2["receive_remaining"].get<std::uint64_t>() << " B left\n";
    }
  }
  return 0;
}

int cmd_status_or_list(const Options& o, bool list) {
  if (o.count("socket") == o.count("dir")) return fail(std::string("give exactly one of --socket and --dir\n") + kUsage);
  if (list && o.count("contact")) return fail("list takes no --contact");
  if (o.count("socket")) {
    json req = {{"id", 1}, {"op", list ? "list" : "status"}};
    if (o.count("contact")) req["contact"] = o.at("contact");
    return via_socket(o.at("socket"), req);
  }
  const std::string& dir = o.at("dir");
  auto ids = list_pads(dir);
  if (!ids) return fail(ids.error().detail);
  for (const auto& id : ids.value()) {
    auto d = read_descriptor(dir, id);
    if (!d) return fail(d.error().detail);
    if (o.count("contact") && d->peer != o.at("contact")) continue;
    if (list) {
      std::cout << d->peer << "  pad " << pad_id_hex(id) << "  " << human(static_cast<double>(d->size)) << "\n";
      continue;
    }
    // Opening takes the pad's lock: with a daemon running, ask it instead (--socket).
    auto pad = PadStore::open(dir, id);
    if (!pad) return fail(pad.error().detail);
    const auto s = pad.value()->status();
    std::cout << d->peer << "  pad " << pad_id_hex(id) << "  send " << s.send_remaining << " B left  receive "
              << s.peer_remaining << " B left  gaps " << s.gaps.size()
              << (s.phase == SendPhase::Halted ? "  HALTED" : s.phase == SendPhase::Exhausted ? "  exhausted" : "") << "\n";
  }
  return 0;
}

int cmd_import_otc(const Options& o) {
  for (const char* k : {"store", "metadata", "out"}) {
    if (!o.count(k)) return fail(std::string("import-otc needs --") + k + "\n" + kUsage);
  }
  Progress progress;
  auto imp = import_one_time_chat(o.at("store"), o.at("metadata"), o.at("out"), std::ref(progress));
  progress.finish();
  if (!imp) return fail("import failed: " + imp.error().detail);
  std::cout << "pad " << pad_id_hex(imp->pad_id) << " imported to " << imp->path << (imp->mirrored ? " (mirrored)" : "")
            << "\n  burnt: " << imp->burnt_own << " B of ours, " << imp->burnt_peer << " B of the peer's (used by One Time Chat)\n";
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 2) return fail(std::string("missing command\n") + kUsage);
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help") {
    std::cout << kUsage;
    return 0;
  }
  Options o;
  std::string err;
  if (cmd == "generate") {
    if (!parse_options(argc, argv, {"me", "peer", "size", "out", "peer-out", "source"}, o, err)) return fail(err);
    return cmd_generate(o);
  }
  if (cmd == "status" || cmd == "list") {
    if (!parse_options(argc, argv, {"socket", "dir", "contact"}, o, err)) return fail(err);
    return cmd_status_or_list(o, cmd == "list");
  }
  if (cmd == "import-otc") {
    if (!parse_options(argc, argv, {"store", "metadata", "out"}, o, err)) return fail(err);
    return cmd_import_otc(o);
  }
  return fail("unknown command " + cmd + "\n" + kUsage);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "mpotr-pad: internal error: " << e.what() << "\n";
    return 70;
  }
}
