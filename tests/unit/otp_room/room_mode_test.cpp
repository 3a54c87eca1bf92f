// SPDX-License-Identifier: MIT
// OTP mode in a room (spec/otp.md §10) without XMPP: RoomHosts in the in-memory MUC, each
// member's pads in a real pad store behind an in-process PadDevice.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>

#include "mpotr/otp/bundle.h"
#include "mpotr/otp/room_mode.h"
#include "support/local_pad_device.h"
#include "support/host_muc.h"

using namespace mpotr;
using namespace mpotr::otp;
using mpotr::test::Client;
using mpotr::test::HostMuc;
using transport::Notice;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "otp-room-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    m_path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_path, ec);
  }
  std::string sub(const std::string& name) const {
    const std::string p = m_path + "/" + name;
    std::filesystem::create_directories(p);
    std::filesystem::permissions(p, std::filesystem::perms::owner_all);
    return p;
  }

 private:
  std::string m_path;
};

using mpotr::test::LocalPadDevice;

std::string jid(const std::string& nick) { return nick + "@localhost"; }

// Members with pads between every pair named in `pairs` (size in bytes), and OTP mode.
struct OtpRoom {
  TempDir root;
  HostMuc muc;
  std::map<std::string, std::unique_ptr<LocalPadDevice>> devices;
  std::map<std::string, OtpRoomMode> modes;

  OtpRoom(const std::vector<std::string>& nicks, const std::vector<std::tuple<std::string, std::string, std::uint64_t>>& pairs,
          const std::function<std::string(const std::string&)>& pad_id = jid) {
    SystemRng rng;
    RngByteSource src(rng);
    for (const auto& [a, b, size] : pairs) {
      REQUIRE(generate_pad(root.sub(a), pad_id(a), root.sub(b), pad_id(b), size, src).ok());
    }
    std::uint64_t seed = 1;
    for (const auto& n : nicks) {
      muc.add(n, seed++);
      devices[n] = std::make_unique<LocalPadDevice>(root.sub(n));
      modes[n].set_device(devices[n].get());
    }
    for (const auto& n : nicks) muc.join(n);
    muc.run();
    for (const auto& n : nicks) REQUIRE(muc.get(n).host->phase() == Phase::Established);
  }
  Client& c(const std::string& n) { return muc.get(n); }
  // What `n` would show: its notices since the last call, through OTP mode.
  std::vector<Notice> take(const std::string& n) {
    auto& notices = c(n).notices;
    std::vector<Notice> out = std::move(notices);
    notices.clear();
    modes[n].rewrite(*c(n).host, out);
    return out;
  }
  void send_bundle(const std::string& n, const std::string& text) {
    muc.absorb(c(n), c(n).host->send_text(text, muc.now, *c(n).rng));
    muc.run();
  }
  Result<std::string> say(const std::string& n, const std::string& text, const std::string& alias = {}) {
    auto sealed = modes[n].seal(*c(n).host, text, alias);
    if (sealed) send_bundle(n, *sealed);
    return sealed;
  }
};

const Notice* find(const std::vector<Notice>& ns, std::string_view kind) {
  for (const auto& n : ns) {
    if (n.kind == kind) return &n;
  }
  return nullptr;
}

void drain_all(OtpRoom& r, const std::vector<std::string>& nicks) {
  for (const auto& n : nicks) (void)r.take(n);
}

}  // namespace

TEST_CASE("OTP room: three members read each other's lines through their own pads", "[otp][room]") {
  OtpRoom r({"alice", "bob", "carol"},
            {{"alice", "bob", 1 << 20}, {"alice", "carol", 1 << 20}, {"bob", "carol", 1 << 20}});
  drain_all(r, {"alice", "bob", "carol"});
  auto on = r.modes["alice"].enable(*r.c("alice").host);
  REQUIRE(on.ok());
  CHECK(on->can_send);
  CHECK(r.modes["alice"].enabled());

  const auto before = r.devices["alice"]->send_remaining(jid("bob"));
  auto sent = r.say("alice", "pads only, please");
  REQUIRE(sent.ok());
  CHECK(sent->rfind(std::string(kBundlePrefix), 0) == 0);
  CHECK(sent->find("pads only") == std::string::npos);

  const auto mine = r.take("alice");
  const Notice* own = find(mine, "otp_sent");
  REQUIRE(own != nullptr);
  CHECK(own->event->text == "pads only, please");
  CHECK(find(mine, "sent") == nullptr);
  for (const std::string n : {"bob", "carol"}) {
    const auto got = r.take(n);
    const Notice* m = find(got, "otp_message");
    REQUIRE(m != nullptr);
    CHECK(m->nick == "alice");
    CHECK(m->text == "pads only, please");
    CHECK(m->event->nicks.empty());  // to the whole session
    CHECK(find(got, "message") == nullptr);
  }
  CHECK(r.devices["alice"]->send_remaining(jid("bob")) < before);

  // And back: bob to alice and carol.
  REQUIRE(r.say("bob", "reply \xe2\x9c\x93").ok());
  const auto got_back = r.take("alice");
  const Notice* back = find(got_back, "otp_message");
  REQUIRE(back != nullptr);
  CHECK(back->text == "reply \xe2\x9c\x93");
}

TEST_CASE("OTP room: a member without a pad stops sending before any pad is used", "[otp][room]") {
  OtpRoom r({"alice", "bob", "dave"}, {{"alice", "bob", 1 << 20}});
  drain_all(r, {"alice", "bob", "dave"});
  auto report = r.modes["alice"].enable(*r.c("alice").host);
  REQUIRE(report.ok());
  CHECK_FALSE(report->can_send);
  const bool warned = std::any_of(report->notices.begin(), report->notices.end(), [](const Notice& n) {
    return n.severity == transport::Severity::Warning && n.text.find("No pad shared with dave") != std::string::npos;
  });
  CHECK(warned);
  const auto before = r.devices["alice"]->send_remaining(jid("bob"));
  auto refused = r.modes["alice"].seal(*r.c("alice").host, "secret");
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::InvalidArgument);
  CHECK(refused.error().detail.find("no pad shared with dave (dave@localhost): nothing was sent") == 0);
  CHECK(r.devices["alice"]->packaged == 0);
  CHECK(r.devices["alice"]->send_remaining(jid("bob")) == before);
  // Without a session-wide pad, an alias of those who have one still works.
  REQUIRE(r.modes["alice"].define_alias(*r.c("alice").host, "b", {"bob"}).ok());
  REQUIRE(r.say("alice", "only bob", "b").ok());
  const auto bob = r.take("bob");
  const Notice* m = find(bob, "otp_message");
  REQUIRE(m != nullptr);
  CHECK(m->text == "only bob");
  CHECK(m->event->nicks == std::vector<std::string>{"you"});
  const auto dave = r.take("dave");
  const Notice* not_for = find(dave, "otp_not_for_you");
  REQUIRE(not_for != nullptr);
  CHECK(not_for->text == "alice sent an OTP message to bob (not to you)");
}

TEST_CASE("OTP room: low and exhausted pads are reported before sending", "[otp][room]") {
  OtpRoom r({"alice", "bob"}, {{"alice", "bob", 4096}});  // 2048 bytes each way
  drain_all(r, {"alice", "bob"});
  auto report = r.modes["alice"].check(*r.c("alice").host);
  REQUIRE(report.ok());
  REQUIRE(report->notices.size() == 1);
  CHECK(report->notices[0].severity == transport::Severity::Warning);
  CHECK(report->notices[0].text.find("runs low: 2048 bytes left") != std::string::npos);
  CHECK(report->can_send);
  auto big = r.modes["alice"].seal(*r.c("alice").host, std::string(3000, 'x'));
  REQUIRE_FALSE(big.ok());
  CHECK(big.error().code == ErrorCode::LimitExceeded);
  CHECK(big.error().detail.find("too low: 2048 bytes left") != std::string::npos);
  CHECK(r.devices["alice"]->packaged == 0);
  // An mpOTR message has room for a bundle of at most kMaxTextLen characters.
  OtpRoom wide({"alice", "bob"}, {{"alice", "bob", 1 << 20}});
  auto too_long = wide.modes["alice"].seal(*wide.c("alice").host, std::string(kMaxTextLen, 'y'));
  REQUIRE_FALSE(too_long.ok());
  CHECK(too_long.error().code == ErrorCode::LimitExceeded);
  const auto& d = too_long.error().detail;
  CHECK(d.find("too long for an OTP message to 1 members: at most ") == 0);
  const std::size_t max = std::stoul(d.substr(std::string("too long for an OTP message to 1 members: at most ").size()));
  CHECK(wide.modes["alice"].seal(*wide.c("alice").host, std::string(max + 1, 'y')).error().code ==
        ErrorCode::LimitExceeded);
  auto fits = wide.modes["alice"].seal(*wide.c("alice").host, std::string(max, 'y'));
  REQUIRE(fits.ok());
  CHECK(fits->size() <= kMaxTextLen);
}

TEST_CASE("OTP room: forged, replayed, spliced and mislabelled copies are refused", "[otp][room]") {
  OtpRoom r({"alice", "bob", "carol"},
            {{"alice", "bob", 1 << 20}, {"alice", "carol", 1 << 20}, {"bob", "carol", 1 << 20}});
  drain_all(r, {"alice", "bob", "carol"});
  auto& alice = r.modes["alice"];
  const auto bob_before = r.devices["bob"]->status()->contacts[0].receive_remaining;

  SECTION("a flipped bit fails the one-time MAC and uses no pad") {
    auto sealed = alice.seal(*r.c("alice").host, "original");
    REQUIRE(sealed.ok());
    auto bundle = decode_bundle_text(*sealed);
    REQUIRE(bundle.ok());
    auto b = **bundle;
    b.copies[0].packet[kHeaderSize] ^= 0x01;  // bob's copy (sorted first)
    REQUIRE(b.copies[0].recipient == jid("bob"));
    r.send_bundle("alice", *encode_bundle_text(b));
    const auto got = r.take("bob");
    const Notice* f = find(got, "otp_failed");
    REQUIRE(f != nullptr);
    CHECK(f->code == ErrorCode::BadMac);
    CHECK(f->severity == transport::Severity::Alert);
    CHECK(f->event->text.empty());
    CHECK(r.devices["bob"]->status()->contacts[0].receive_remaining == bob_before);
    // The genuine bundle still opens afterwards, once; its replay is refused.
    r.send_bundle("alice", *sealed);
    const auto got_ok = r.take("bob");
    const Notice* ok = find(got_ok, "otp_message");
    REQUIRE(ok != nullptr);
    CHECK(ok->text == "original");
    r.send_bundle("alice", *sealed);
    const auto got_replay = r.take("bob");
    const Notice* replay = find(got_replay, "otp_failed");
    REQUIRE(replay != nullptr);
    CHECK((replay->code == ErrorCode::Replay || replay->code == ErrorCode::Duplicate));
  }
  SECTION("carol's copy relabelled for bob is under a pad bob does not hold") {
    auto sealed = alice.seal(*r.c("alice").host, "for carol");
    auto b = **decode_bundle_text(*sealed);
    Bundle swapped;
    swapped.copies.push_back({jid("bob"), b.copies[1].packet});
    swapped.copies.push_back({jid("carol"), b.copies[0].packet});
    r.send_bundle("alice", *encode_bundle_text(swapped));
    const auto got_f = r.take("bob");
    const Notice* f = find(got_f, "otp_failed");
    REQUIRE(f != nullptr);
    CHECK(f->code == ErrorCode::UnknownSession);
  }
  SECTION("bob cannot pass alice's copy to carol off as his own") {
    auto sealed = alice.seal(*r.c("alice").host, "from alice");
    auto b = **decode_bundle_text(*sealed);
    Bundle relay;
    relay.copies.push_back({jid("carol"), b.copies[1].packet});
    r.send_bundle("bob", *encode_bundle_text(relay));  // signed by bob in the session
    const auto got_f = r.take("carol");
    const Notice* f = find(got_f, "otp_failed");
    REQUIRE(f != nullptr);
    CHECK(f->code == ErrorCode::NickMismatch);
  }
  SECTION("a bundle without a copy the recipient list names is refused") {
    auto g = r.devices["alice"]->package_group({jid("bob"), jid("carol")}, as_bytes(std::string("dropped carol")));
    REQUIRE(g.ok());
    Bundle partial;
    partial.copies.push_back({jid("bob"), g->packets[0].packet});
    r.send_bundle("alice", *encode_bundle_text(partial));
    const auto got_f = r.take("bob");
    const Notice* f = find(got_f, "otp_failed");
    REQUIRE(f != nullptr);
    CHECK(f->code == ErrorCode::RosterMismatch);
  }
  SECTION("a one-to-one packet spliced into the room is refused") {
    Bundle spliced;
    spliced.copies.push_back({jid("bob"), r.devices["alice"]->one_to_one(jid("bob"), "one to one")});
    r.send_bundle("alice", *encode_bundle_text(spliced));
    const auto got = r.take("bob");
    const Notice* f = find(got, "otp_failed");
    REQUIRE(f != nullptr);
    CHECK(f->code == ErrorCode::UnexpectedMessage);
    CHECK(find(got, "otp_message") == nullptr);
  }
  SECTION("a skipped copy is reported as a gap when the next one arrives") {
    auto lost = alice.seal(*r.c("alice").host, "never delivered");
    REQUIRE(lost.ok());
    REQUIRE(r.say("alice", "delivered").ok());
    const auto got = r.take("bob");
    const Notice* m = find(got, "otp_message");
    REQUIRE(m != nullptr);
    CHECK(m->text == "delivered");
    const Notice* gap = find(got, "otp_gap");
    REQUIRE(gap != nullptr);
    CHECK(gap->severity == transport::Severity::Warning);
    CHECK(gap->text.find("an earlier OTP message from alice may never have arrived") != std::string::npos);
  }
  SECTION("a malformed bundle is an alert, not a message") {
    r.send_bundle("alice", std::string(kBundlePrefix) + "AAAA");
    const auto got_f = r.take("bob");
    const Notice* f = find(got_f, "otp_failed");
    REQUIRE(f != nullptr);
    CHECK(f->text.find("alice sent a malformed OTP message") == 0);
  }
}

TEST_CASE("OTP room: a device whose pads name someone else is refused before use", "[otp][room]") {
  OtpRoom r({"alice", "bob"}, {{"alice", "bob", 1 << 20}}, [](const std::string& n) { return n; });
  drain_all(r, {"alice", "bob"});
  auto sealed = r.modes["alice"].seal(*r.c("alice").host, "hi");
  REQUIRE_FALSE(sealed.ok());
  CHECK(sealed.error().detail ==
        "the pad device holds pads for alice, but you are alice@localhost in this room: nothing was sent");
  CHECK(r.devices["alice"]->packaged == 0);
}

TEST_CASE("OTP room: no session, no device: refused with the reason", "[otp][room]") {
  HostMuc muc;
  auto& alone = muc.add("alice", 1);
  OtpRoomMode mode;
  CHECK(mode.check(*alone.host).error().code == ErrorCode::InvalidState);
  CHECK(mode.enable(*alone.host).error().code == ErrorCode::InvalidState);
  CHECK_FALSE(mode.enabled());
  CHECK(mode.seal(*alone.host, "hi").error().code == ErrorCode::NotReady);
  OtpRoom r({"alice", "bob"}, {{"alice", "bob", 1 << 20}});
  {
    // bob closes the session: alice's still exists, closing, and would refuse the bundle, so no
    // pad is used for it.
    OtpRoom leaving({"alice", "bob"}, {{"alice", "bob", 1 << 20}});
    auto& alice = leaving.c("alice");
    auto& bob = leaving.c("bob");
    leaving.muc.absorb(bob, bob.host->leave(leaving.muc.now, *bob.rng));
    leaving.muc.run();
    REQUIRE(alice.host->session().has_value());
    REQUIRE(alice.host->phase() != Phase::Established);
    auto refused = leaving.modes["alice"].seal(*alice.host, "too late");
    CHECK(refused.error().code == ErrorCode::NotReady);
    CHECK(refused.error().detail.find("the session is not secure yet (") == 0);
    CHECK(leaving.devices["alice"]->packaged == 0);
  }
  OtpRoomMode no_device;
  auto s = no_device.seal(*r.c("alice").host, "hi");
  CHECK(s.error().code == ErrorCode::InvalidState);
  CHECK(s.error().detail == "no pad device connected: nothing was sent");
  // Receiving without a device says why the line cannot be read.
  REQUIRE(r.say("bob", "to alice").ok());
  auto notices = std::move(r.c("alice").notices);
  no_device.rewrite(*r.c("alice").host, notices);
  const Notice* f = find(notices, "otp_failed");
  REQUIRE(f != nullptr);
  CHECK(f->text == "bob sent you an OTP message, but no pad device is connected: it cannot be read");
}

TEST_CASE("OTP room: aliases are checked and bounded", "[otp][room]") {
  OtpRoom r({"alice", "bob"}, {{"alice", "bob", 1 << 20}});
  auto& m = r.modes["alice"];
  const auto& host = *r.c("alice").host;
  CHECK(m.define_alias(host, "bad name", {"bob"}).error().code == ErrorCode::InvalidArgument);
  CHECK(m.define_alias(host, "x", {}).error().code == ErrorCode::InvalidArgument);
  CHECK(m.define_alias(host, "x", {"mallory"}).error().detail == "no member 'mallory' with a known JID");
  CHECK(m.define_alias(host, "x", {"alice"}).error().detail == "an alias does not include yourself");
  CHECK(m.define_alias(host, "x", {"bob", "bob@localhost"}).error().code == ErrorCode::InvalidArgument);
  REQUIRE(m.define_alias(host, "x", {"bob", "dave@localhost"}).ok());
  CHECK(m.aliases()[0].jids == std::vector<std::string>{"bob@localhost", "dave@localhost"});
  // dave is not in the session: an alias send names him and sends nothing.
  auto s = m.seal(host, "hi", "x");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().detail == "dave@localhost (alias 'x') is not in this session: nothing was sent");
  CHECK(m.seal(host, "hi", "nope").error().detail == "no alias 'nope': nothing was sent");
  for (std::size_t i = 1; i < kMaxAliases; ++i) REQUIRE(m.define_alias(host, "a" + std::to_string(i), {"bob"}).ok());
  CHECK(m.define_alias(host, "one-more", {"bob"}).error().code == ErrorCode::LimitExceeded);
  REQUIRE(m.define_alias(host, "x", {"bob"}).ok());  // redefining is not one more
  REQUIRE(m.remove_alias("x").ok());
  CHECK(m.remove_alias("x").error().code == ErrorCode::InvalidArgument);
}

TEST_CASE("OTP bundle: strict text codec", "[otp][room]") {
  Bundle b;
  b.copies.push_back({"carol@x", Bytes(kPacketOverhead + 1, 0x22)});
  b.copies.push_back({"bob@x", Bytes(kPacketOverhead + 2, 0x11)});
  auto text = encode_bundle_text(b);
  REQUIRE(text.ok());
  CHECK(text->size() == bundle_text_size(bundle_raw_size({{5, kPacketOverhead + 2}, {7, kPacketOverhead + 1}})));
  CHECK(bundle_raw_capacity(text->size()) >= bundle_raw_size({{5, kPacketOverhead + 2}, {7, kPacketOverhead + 1}}));
  auto back = decode_bundle_text(*text);
  REQUIRE(back.ok());
  REQUIRE(back->has_value());
  CHECK((**back).copies[0].recipient == "bob@x");  // sorted on encode
  CHECK((**back).copies[1].packet == b.copies[0].packet);
  CHECK_FALSE(decode_bundle_text("hello").value().has_value());
  CHECK_FALSE(decode_bundle_text("?mpOTR-OTP2:AAAA").value().has_value());

  auto raw_text = [](const Bytes& raw) { return std::string(kBundlePrefix) + to_base64(raw); };
  Bytes raw;
  REQUIRE(from_base64(text->substr(kBundlePrefix.size()), raw));
  CHECK(decode_bundle_text(std::string(kBundlePrefix) + "AAA").error().code == ErrorCode::DecodeBadValue);
  Bytes v = raw;
  v[0] = 2;
  CHECK(decode_bundle_text(raw_text(v)).error().code == ErrorCode::DecodeBadVersion);
  v = raw;
  v[1] = 0;
  CHECK(decode_bundle_text(raw_text(v)).error().code == ErrorCode::DecodeBadValue);
  v = raw;
  v.push_back(0);
  CHECK(decode_bundle_text(raw_text(v)).error().code == ErrorCode::DecodeTrailingBytes);
  v = raw;
  v.pop_back();
  CHECK(decode_bundle_text(raw_text(v)).error().code == ErrorCode::DecodeTruncated);
  v = raw;
  v[3] = 'z';  // "bob@x" → "zob@x": no longer before "carol@x"
  CHECK(decode_bundle_text(raw_text(v)).error().detail == "recipients not in strictly increasing order");
  Bundle dup;
  dup.copies = {b.copies[0], b.copies[0]};
  CHECK(encode_bundle_text(dup).error().code == ErrorCode::InvalidArgument);
  Bundle short_packet;
  short_packet.copies.push_back({"bob@x", Bytes(kPacketOverhead, 0)});
  CHECK(encode_bundle_text(short_packet).error().code == ErrorCode::InvalidArgument);
  // A pinned encoding (spec/otp.md §10 example).
  Bundle pin;
  pin.copies.push_back({"b@x", Bytes(kPacketOverhead + 1, 0x4F)});
  CHECK(*encode_bundle_text(pin) ==
        "?mpOTR-OTP1:AQEDYkB4AAAAME9PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PTw==");
}
