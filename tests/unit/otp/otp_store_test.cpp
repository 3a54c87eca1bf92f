// SPDX-License-Identifier: MIT
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "mpotr/otp/pad_store.h"

using namespace mpotr;
using namespace mpotr::otp;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mpotr-otp-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string sub(const std::string& s) const { return (path / s).string(); }
};

Bytes slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

struct Pair {
  TempDir tmp;
  GeneratedPad gen;
  std::string alice_dir, bob_dir;
  explicit Pair(std::uint64_t size = 64 * 1024, std::uint64_t seed = 42) {
    alice_dir = tmp.sub("alice");
    bob_dir = tmp.sub("bob");
    DeterministicRng rng(seed);
    RngByteSource src(rng, "test");
    gen = generate_pad(alice_dir, "alice@example.org", bob_dir, "bob@example.org", size, src).value();
  }
  std::unique_ptr<PadStore> alice() const { return PadStore::open(alice_dir, gen.pad_id).value(); }
  std::unique_ptr<PadStore> bob() const { return PadStore::open(bob_dir, gen.pad_id).value(); }
};

OutgoingMessage msg(std::string_view text) {
  OutgoingMessage m;
  m.body.assign(text.begin(), text.end());
  return m;
}
std::string text(const ReceivedMessage& r) { return std::string(r.plaintext.body.begin(), r.plaintext.body.end()); }
bool overlaps(Range a, Range b) { return a.begin < b.end && b.begin < a.end; }

}  // namespace

TEST_CASE("otp store round trip in both directions with private file modes", "[otp][store]") {
  Pair p;
  auto a = p.alice();
  auto b = p.bob();
  CHECK(a->descriptor().role == Role::A);
  CHECK(b->descriptor().role == Role::B);
  CHECK(a->descriptor().peer == "bob@example.org");
  auto s1 = a->send_package(msg("hi bob"));
  REQUIRE(s1.ok());
  CHECK(s1->region == Range{0, 45 + 6});
  auto r1 = b->receive_unpackage(view(s1->packet));
  REQUIRE(r1.ok());
  CHECK(text(*r1) == "hi bob");
  CHECK(r1->plaintext.seq == s1->seq);
  CHECK_FALSE(r1->gap_detected);
  auto s2 = b->send_package(msg("hi alice"));
  REQUIRE(s2.ok());
  CHECK(s2->region.end == 64 * 1024);
  auto r2 = a->receive_unpackage(view(s2->packet));
  REQUIRE(r2.ok());
  CHECK(text(*r2) == "hi alice");

  for (const auto& dir : {p.gen.path_a, p.gen.path_b}) {
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    for (const char* f : {"/pad.bin", "/descriptor.json", "/state.bin", "/lock"}) {
      INFO(dir + f);
      REQUIRE(::stat((dir + f).c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
    }
  }
  // Destroy after use: both copies of the used regions are zeros now.
  const Bytes pad_a = slurp(p.gen.path_a + "/pad.bin");
  const Bytes pad_b = slurp(p.gen.path_b + "/pad.bin");
  for (std::uint64_t i = s1->region.begin; i < s1->region.end; ++i) REQUIRE(pad_b[i] == 0);
  for (std::uint64_t i = s2->region.begin; i < s2->region.end; ++i) REQUIRE(pad_a[i] == 0);
  // The sender zeroed its whole reservation (here clamped to its 32 KiB half) before use.
  REQUIRE(a->state().reserve_ptr == 32 * 1024);
  for (std::uint64_t i = 0; i < a->state().reserve_ptr; ++i) REQUIRE(pad_a[i] == 0);
  // The receiver zeroed only the region it consumed.
  int nonzero = 0;
  for (std::uint64_t i = s1->region.end; i < s1->region.end + 64; ++i) nonzero += pad_b[i] != 0 ? 1 : 0;
  CHECK(nonzero > 32);

  const PadStatus st = b->status();
  CHECK(st.peer_consumed == s1->region.size());
  CHECK(st.send_used == s2->region.size());  // reserved-not-used counts as remaining until a restart burns it
  CHECK(st.phase == SendPhase::Healthy);
  auto listed = list_pads(p.alice_dir);
  REQUIRE(listed.ok());
  CHECK(*listed == std::vector<PadId>{p.gen.pad_id});
  CHECK(read_descriptor(p.bob_dir, p.gen.pad_id).value().me == "bob@example.org");
}

TEST_CASE("otp store tampered packets burn nothing and write nothing", "[otp][store]") {
  Pair p;
  auto a = p.alice();
  auto b = p.bob();
  const Bytes packet = a->send_package(msg("tamper me")).value().packet;
  const Bytes state_before = slurp(p.gen.path_b + "/state.bin");
  const Bytes pad_before = slurp(p.gen.path_b + "/pad.bin");
  const PadState mem_before = b->state();
  for (std::size_t i = 0; i < packet.size(); ++i) {
    Bytes t = packet;
    t[i] ^= 0x20;
    auto r = b->receive_unpackage(view(t));
    INFO("byte " << i);
    REQUIRE_FALSE(r.ok());
    const ErrorCode c = r.error().code;
    // Header fields: decoding or routing errors; anything the MAC covers: BadMac.
    const bool expected = c == ErrorCode::BadMac || c == ErrorCode::UnknownSession || c == ErrorCode::NickMismatch ||
                          c == ErrorCode::DecodeBadVersion || c == ErrorCode::DecodeBadValue ||
                          c == ErrorCode::DecodeTruncated || c == ErrorCode::DecodeTrailingBytes ||
                          c == ErrorCode::DecodeOversize;
    CHECK(expected);
    if (i >= kHeaderSize) CHECK(c == ErrorCode::BadMac);
  }
  Bytes t = packet;
  t.back() ^= 1;
  CHECK(b->receive_unpackage(view(t)).error().code == ErrorCode::BadMac);
  CHECK(b->state() == mem_before);
  CHECK(slurp(p.gen.path_b + "/state.bin") == state_before);
  CHECK(slurp(p.gen.path_b + "/pad.bin") == pad_before);
  // The genuine packet still decrypts afterwards: nothing was burnt.
  CHECK(text(b->receive_unpackage(view(packet)).value()) == "tamper me");
}

TEST_CASE("otp store replay wrong pad and reflection are refused without state change", "[otp][store]") {
  Pair p;
  auto a = p.alice();
  auto b = p.bob();
  const Bytes packet = a->send_package(msg("once")).value().packet;
  REQUIRE(b->receive_unpackage(view(packet)).ok());
  const Bytes state_before = slurp(p.gen.path_b + "/state.bin");
  const PadState mem_before = b->state();
  CHECK(b->receive_unpackage(view(packet)).error().code == ErrorCode::Duplicate);
  Bytes other = packet;
  other[3] ^= 1;  // pad id
  CHECK(b->receive_unpackage(view(other)).error().code == ErrorCode::UnknownSession);
  CHECK(a->receive_unpackage(view(packet)).error().code == ErrorCode::NickMismatch);
  Bytes trailing = packet;
  trailing.push_back(0);
  CHECK(b->receive_unpackage(view(trailing)).error().code == ErrorCode::DecodeTrailingBytes);
  CHECK(b->receive_unpackage(ByteView(packet).first(40)).error().code == ErrorCode::DecodeTruncated);
  CHECK(b->state() == mem_before);
  CHECK(slurp(p.gen.path_b + "/state.bin") == state_before);
  // Replay after a restart as well.
  b.reset();
  b = p.bob();
  CHECK(b->receive_unpackage(view(packet)).error().code == ErrorCode::Duplicate);
}

TEST_CASE("otp store reports gaps and accepts out of order delivery", "[otp][store]") {
  Pair p;
  auto a = p.alice();
  auto b = p.bob();
  std::vector<Bytes> pk;
  for (int i = 0; i < 3; ++i) pk.push_back(a->send_package(msg("m" + std::to_string(i))).value().packet);
  auto r0 = b->receive_unpackage(view(pk[0]));
  auto r2 = b->receive_unpackage(view(pk[2]));
  REQUIRE(r2.ok());
  CHECK(r2->gap_detected);
  CHECK(b->status().gaps.size() == 1);
  auto r1 = b->receive_unpackage(view(pk[1]));
  REQUIRE(r1.ok());
  CHECK(r1->out_of_order);
  CHECK(text(*r1) == "m1");
  CHECK(b->status().gaps.empty());
}

TEST_CASE("otp store exhausted pad is a specific error and burns nothing", "[otp][store]") {
  Pair p(kMinPadSize);
  auto a = p.alice();
  REQUIRE(a->set_reserve_block(100).ok());
  int sent = 0;
  for (;;) {
    auto s = a->send_package(msg(std::string(50, 'x')));
    if (!s.ok()) {
      CHECK(s.error().code == ErrorCode::LimitExceeded);
      CHECK(s.error().detail.find("pad exhausted") != std::string::npos);
      break;
    }
    ++sent;
    REQUIRE(sent < 100);
  }
  CHECK(sent == 1024 / 95);
  CHECK(a->check_can_send(msg(std::string(50, 'x'))).error().code == ErrorCode::LimitExceeded);
  CHECK(a->check_can_send(msg(std::string(29, 'x'))).value() == 74);
  // A smaller message still fits in what is left: the failed one burnt nothing.
  const auto left = a->status().send_remaining;
  CHECK(left == 1024 - 95 * 10);
  CHECK(a->send_package(msg(std::string(left - 45, 'y'))).ok());
  CHECK(a->status().phase == SendPhase::Exhausted);
  CHECK(a->send_package(msg("")).error().code == ErrorCode::LimitExceeded);
}

TEST_CASE("otp store crash at any send or receive step never reuses a region", "[otp][store]") {
  for (auto point : {CrashPoint::SendAfterStateDurable, CrashPoint::SendAfterBlockZeroed, CrashPoint::SendBeforeRelease}) {
    Pair p;
    auto b = p.bob();
    std::vector<Range> handed;  // every region any run produced a packet from
    std::vector<Bytes> released;
    for (int round = 0; round < 6; ++round) {
      auto a = p.alice();
      REQUIRE(a->set_reserve_block(200).ok());
      int calls = 0;
      a->set_crash_hook([&](CrashPoint c) { return !(c == point && ++calls == 2); });
      for (int i = 0; i < 6; ++i) {
        auto s = a->send_package(msg("round " + std::to_string(round) + " msg " + std::to_string(i)));
        if (!s.ok()) {
          CHECK(s.error().code == ErrorCode::Internal);
          break;  // "the process died": the store is dropped and reopened
        }
        for (const auto& r : handed) REQUIRE_FALSE(overlaps(r, s->region));
        handed.push_back(s->region);
        released.push_back(s->packet);
      }
    }
    for (const auto& pk : released) REQUIRE(b->receive_unpackage(view(pk)).ok());
  }
  // Receive: a crash before recording lets the message be delivered again; after recording it
  // is lost (Duplicate), never decrypted twice.
  for (auto point : {CrashPoint::ReceiveAfterVerify, CrashPoint::ReceiveAfterRecord, CrashPoint::ReceiveAfterZero}) {
    Pair p;
    auto a = p.alice();
    const Bytes pk = a->send_package(msg("crash")).value().packet;
    {
      auto b = p.bob();
      b->set_crash_hook([&](CrashPoint c) { return c != point; });
      CHECK(b->receive_unpackage(view(pk)).error().code == ErrorCode::Internal);
    }
    auto b = p.bob();
    auto again = b->receive_unpackage(view(pk));
    if (point == CrashPoint::ReceiveAfterVerify) {
      CHECK(again.ok());
    } else {
      CHECK(again.error().code == ErrorCode::Duplicate);
    }
  }
}

TEST_CASE("otp store rolled back state halts sending", "[otp][store]") {
  Pair p;
  const std::string state = p.gen.path_a + "/state.bin";
  const Bytes old_state = slurp(state);
  {
    auto a = p.alice();
    REQUIRE(a->send_package(msg("first")).ok());
  }
  {  // restore the old snapshot, as a backup restore or VM snapshot would
    std::ofstream out(state, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(old_state.data()), static_cast<std::streamsize>(old_state.size()));
  }
  auto a = p.alice();
  auto s = a->send_package(msg("second"));
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().code == ErrorCode::Storage);
  CHECK(a->status().phase == SendPhase::Halted);
  CHECK(a->send_package(msg("third")).error().code == ErrorCode::InvalidState);
  a.reset();
  a = p.alice();  // halted is persisted
  CHECK(a->send_package(msg("fourth")).error().code == ErrorCode::InvalidState);
}

TEST_CASE("otp store rolled back receive state still refuses a replay", "[otp][store]") {
  Pair p;
  const std::string state = p.gen.path_b + "/state.bin";
  const Bytes old_state = slurp(state);
  const Bytes pk = p.alice()->send_package(msg("only once")).value().packet;
  REQUIRE(p.bob()->receive_unpackage(view(pk)).ok());
  {
    std::ofstream out(state, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(old_state.data()), static_cast<std::streamsize>(old_state.size()));
  }
  auto b = p.bob();
  CHECK(b->state().received.empty());  // the record is gone, the zeroed pad region is not
  CHECK(b->receive_unpackage(view(pk)).error().code == ErrorCode::Duplicate);
}

TEST_CASE("otp store refuses a second opener and corrupt files", "[otp][store]") {
  Pair p;
  {
    auto a = p.alice();
    auto again = PadStore::open(p.alice_dir, p.gen.pad_id);
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == ErrorCode::Storage);
  }
  ::chmod((p.gen.path_a + "/pad.bin").c_str(), 0644);
  CHECK(PadStore::open(p.alice_dir, p.gen.pad_id).error().code == ErrorCode::Storage);
  ::chmod((p.gen.path_a + "/pad.bin").c_str(), 0600);
  ::truncate((p.gen.path_a + "/state.bin").c_str(), 10);
  CHECK(PadStore::open(p.alice_dir, p.gen.pad_id).error().code == ErrorCode::Storage);
  ::unlink((p.gen.path_b + "/state.bin").c_str());
  CHECK(PadStore::open(p.bob_dir, p.gen.pad_id).error().code == ErrorCode::Storage);
}

TEST_CASE("otp store batches durable reservations", "[otp][store]") {
  Pair p(4u << 20);
  auto a = p.alice();
  auto b = p.bob();
  const std::uint64_t gen0 = a->state().generation;
  constexpr int kMessages = 5000;
  std::vector<Bytes> packets;
  for (int i = 0; i < kMessages; ++i) packets.push_back(a->send_package(msg(std::string(100, 'z'))).value().packet);
  // One durable state write per 64 KiB block: 5000 × 145 bytes ≈ 12 writes, not 5000.
  CHECK(a->state().generation - gen0 <= (kMessages * 145) / kDefaultReserveBlock + 1);
  for (int i : {0, 1, 2499, 4999}) CHECK(b->receive_unpackage(view(packets[static_cast<std::size_t>(i)])).ok());
}

TEST_CASE("otp generation from a file source with progress and cleanup", "[otp][store]") {
  TempDir tmp;
  const std::string src = tmp.sub("random.bin");
  {
    std::ofstream out(src, std::ios::binary);
    for (int i = 0; i < 3 * 1024 * 1024 + 100; ++i) out.put(static_cast<char>((i * 131 + 7) & 0xFF));
  }
  auto fs_src = FileByteSource::open(src);
  REQUIRE(fs_src.ok());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  auto g = generate_pad(tmp.sub("a"), "zed@x", tmp.sub("b"), "amy@x", 3u << 20, **fs_src,
                        [&](std::uint64_t done, std::uint64_t total) { calls.emplace_back(done, total); });
  REQUIRE(g.ok());
  CHECK(calls.size() == 3);
  CHECK(calls.back() == std::pair<std::uint64_t, std::uint64_t>{3u << 20, 3u << 20});
  CHECK(read_descriptor(tmp.sub("a"), g->pad_id).value().role == Role::B);  // "zed@x" sorts after "amy@x"
  CHECK(slurp(g->path_a + "/pad.bin") == slurp(g->path_b + "/pad.bin"));
  CHECK(read_descriptor(tmp.sub("b"), g->pad_id).value().source == src);
  // A source that runs dry: an error, and no partial pad left behind.
  auto short_src = FileByteSource::open(src);
  REQUIRE(short_src.ok());
  auto bad = generate_pad(tmp.sub("c"), "a", tmp.sub("d"), "b", 4u << 20, **short_src);
  CHECK(bad.error().code == ErrorCode::Storage);
  CHECK(list_pads(tmp.sub("c")).value().empty());
  CHECK(list_pads(tmp.sub("d")).value().empty());
  DeterministicRng rng(1);
  RngByteSource rs(rng);
  CHECK(generate_pad(tmp.sub("e"), "same", tmp.sub("f"), "same", 4096, rs).error().code == ErrorCode::InvalidArgument);
  CHECK(generate_pad(tmp.sub("e"), "a", tmp.sub("f"), "b", 100, rs).error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("otp store killed processes never reuse a region", "[otp][store]") {
  Pair p(256 * 1024);
  std::vector<Bytes> released;
  for (int round = 0; round < 12; ++round) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Child: send until the hook kills the process at its (round*2+1)-th step, like a power cut.
      ::close(fds[0]);
      auto a = PadStore::open(p.alice_dir, p.gen.pad_id);
      if (!a.ok()) ::_exit(3);
      (void)(*a)->set_reserve_block(300);
      int steps = 0;
      (*a)->set_crash_hook([&](CrashPoint) {
        if (++steps == round * 2 + 1) ::_exit(0);
        return true;
      });
      for (int i = 0; i < 20; ++i) {
        auto s = (*a)->send_package(msg("kill round " + std::to_string(round)));
        if (!s.ok()) ::_exit(4);
        const auto n = static_cast<std::uint32_t>(s->packet.size());
        if (::write(fds[1], &n, sizeof n) != sizeof n || ::write(fds[1], s->packet.data(), n) != static_cast<ssize_t>(n)) ::_exit(5);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    for (;;) {
      std::uint32_t n = 0;
      if (::read(fds[0], &n, sizeof n) != sizeof n) break;
      Bytes b(n);
      REQUIRE(::read(fds[0], b.data(), n) == static_cast<ssize_t>(n));
      released.push_back(std::move(b));
    }
    ::close(fds[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
  }
  REQUIRE(released.size() > 20);
  std::vector<Range> regions;
  for (const auto& pk : released) {
    const auto h = parse_packet(view(pk)).value().header;
    const Range r{h.offset, h.offset + h.region_len()};
    for (const auto& q : regions) REQUIRE_FALSE(overlaps(q, r));
    regions.push_back(r);
  }
  auto b = p.bob();
  for (const auto& pk : released) REQUIRE(b->receive_unpackage(view(pk)).ok());
}
