// SPDX-License-Identifier: MIT
// mpotr-padd as a real process over its real socket: bad requests are clear errors that
// consume no pad, clients are served concurrently, TCP needs the token, alice's device
// packages what bob's device unpackages.
#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "mpotr/otp/packet.h"
#include "padd_harness.h"

using namespace padd_test;

namespace {

struct Pair {
  TempDir root;
  std::string alice_sock;
  std::string bob_sock;
  explicit Pair(std::uint64_t size = 1 << 20) {
    make_pad(root, size);
    alice_sock = root.sub("run-a") + "/padd.sock";
    bob_sock = root.sub("run-b") + "/padd.sock";
  }
  std::string alice_dir() const { return root.path() + "/alice"; }
  std::string bob_dir() const { return root.path() + "/bob"; }
};

void check_error(const json& r, const std::string& code) {
  INFO(r.dump());
  CHECK(r["ok"] == false);
  CHECK(r["error"]["code"] == code);
  CHECK_FALSE(r["error"]["detail"].get<std::string>().empty());
}

}  // namespace

TEST_CASE("padd: bad requests get clear errors and consume no pad", "[otp][device]") {
  Pair p;
  Daemon alice(p.alice_dir(), p.alice_sock, opts({"--anomaly-log", p.root.path() + "/anomaly.log"}));
  auto c = connect(p.alice_sock);
  const auto before = send_remaining(c, "bob");

  struct Bad {
    std::string line;
    std::string code;
  };
  const std::vector<Bad> bad = {
      {"{oops", "decode_bad_value"},
      {"", "decode_bad_value"},
      {R"({"id":1,"op":"teapot"})", "decode_unknown_type"},
      {R"({"id":2,"op":"package","contact":"bob","message_b64":"aGk"})", "invalid_argument"},
      {R"({"id":3,"op":"package","contact":"bob","message_b64":"aGk=","x":1})", "invalid_argument"},
      {R"({"id":4,"op":"package","contact":"bob"})", "invalid_argument"},
      {R"({"id":5,"op":"package","contact":["bob"],"message_b64":"aGk="})", "invalid_argument"},
      {R"({"id":6,"op":"package","contact":"carol","message_b64":"aGk="})", "invalid_argument"},
      {R"({"id":7,"op":"unpackage","contact":"bob","packet_b64":"aGk="})", "decode_bad_version"},
      {R"({"id":8,"op":"auth","token":"whatever-token-xx"})", "invalid_state"},
  };
  for (const auto& b : bad) {
    REQUIRE(c.send_raw(b.line + "\n").ok());
    auto line = c.read_line();
    REQUIRE(line.ok());
    check_error(json::parse(*line), b.code);
  }
  // The same connection still works, nothing was consumed: the first packet starts at 0.
  CHECK(send_remaining(c, "bob") == before);
  auto r = call(c, package_req(9, "bob", "after the errors"));
  REQUIRE(r["ok"] == true);
  CHECK(r["id"] == 9);
  CHECK(r["offset"] == 0);
  const auto log = read_text(p.root.path() + "/anomaly.log");
  CHECK(log.find("refused_request") != std::string::npos);
  CHECK(alice.terminate() == 0);
}

TEST_CASE("padd: an oversized request line is refused and its connection closed", "[otp][device]") {
  Pair p;
  Daemon alice(p.alice_dir(), p.alice_sock);
  auto c = connect(p.alice_sock);
  const auto before = send_remaining(c, "bob");
  // 1 MiB without a newline: the daemon answers once it passed 256 KiB and stops reading.
  const std::string huge = R"({"id":1,"op":"package","contact":"bob","message_b64":")" + std::string(1 << 20, 'A');
  std::thread writer([&] { (void)c.send_raw(huge); });  // fails with EPIPE once closed: expected
  auto line = c.read_line();
  writer.join();
  REQUIRE(line.ok());
  check_error(json::parse(*line), "decode_oversize");
  CHECK_FALSE(c.read_line(std::chrono::seconds(5)).ok());  // closed
  auto c2 = connect(p.alice_sock);
  CHECK(send_remaining(c2, "bob") == before);
}

TEST_CASE("padd: 8 clients in parallel get disjoint regions that bob can open", "[otp][device]") {
  Pair p;
  Daemon alice(p.alice_dir(), p.alice_sock);
  Daemon bob(p.bob_dir(), p.bob_sock);
  constexpr int kClients = 8;
  constexpr int kEach = 25;
  std::vector<std::vector<std::pair<std::string, json>>> got(kClients);
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> threads;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      try {
        auto c = connect(p.alice_sock);
        for (int i = 0; i < kEach; ++i) {
          const std::string msg = "client " + std::to_string(t) + " message " + std::to_string(i);
          auto r = call(c, package_req(i, "bob", msg));
          if (r["ok"] != true || r["id"] != i) throw std::runtime_error(r.dump());
          got[t].emplace_back(msg, r);
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) CHECK(e.empty());
  std::set<std::pair<std::uint64_t, std::uint64_t>> regions;
  auto bc = connect(p.bob_sock);
  int n = 0;
  for (const auto& per : got) {
    for (const auto& [msg, r] : per) {
      regions.emplace(r["offset"].get<std::uint64_t>(), r["pad_bytes"].get<std::uint64_t>());
      auto o = call(bc, unpackage_req(++n, "alice", r["packet_b64"]));
      REQUIRE(o["ok"] == true);
      CHECK(unb64(o["message_b64"]) == msg);
    }
  }
  REQUIRE(regions.size() == kClients * kEach);
  std::uint64_t end = 0;
  for (const auto& [off, len] : regions) {
    CHECK(off >= end);  // no overlap
    end = off + len;
  }
}

TEST_CASE("padd: TCP clients need the token", "[otp][device]") {
  Pair p;
  const std::string token_file = p.root.path() + "/token";
  {
    std::ofstream(token_file) << "correct-horse-battery-staple-42\n";
    ::chmod(token_file.c_str(), 0600);
  }
  const std::string log = p.root.path() + "/anomaly.log";
  Daemon alice(p.alice_dir(), p.alice_sock,
               opts({"--tcp", "127.0.0.1:0", "--token-file", token_file, "--anomaly-log", log}));
  REQUIRE(alice.tcp_port() != 0);
  auto tcp = [&] {
    auto c = Client::connect_tcp("127.0.0.1", alice.tcp_port());
    REQUIRE(c.ok());
    return std::move(c).value();
  };
  {  // no token
    auto c = tcp();
    check_error(call(c, package_req(1, "bob", "x")), "invalid_state");
    CHECK_FALSE(c.read_line(std::chrono::seconds(5)).ok());  // closed
  }
  {  // wrong token (same length and shorter)
    for (const char* t : {"correct-horse-battery-staple-43", "short"}) {
      auto c = tcp();
      check_error(call(c, {{"id", 1}, {"op", "auth"}, {"token", t}}), "invalid_state");
      CHECK_FALSE(c.read_line(std::chrono::seconds(5)).ok());
    }
  }
  {  // garbage before auth
    auto c = tcp();
    REQUIRE(c.send_raw("GET / HTTP/1.1\r\n\r\n").ok());
    auto line = c.read_line();
    REQUIRE(line.ok());
    check_error(json::parse(*line), "decode_bad_value");
  }
  auto c = tcp();
  auto a = call(c, {{"id", "a"}, {"op", "auth"}, {"token", "correct-horse-battery-staple-42"}});
  CHECK(a["ok"] == true);
  auto r = call(c, package_req(2, "bob", "over tcp"));
  REQUIRE(r["ok"] == true);
  CHECK(r["offset"] == 0);  // the refused requests used nothing
  const auto text = read_text(log);
  CHECK(text.find("auth_failure") != std::string::npos);
  CHECK(text.find("correct-horse") == std::string::npos);  // tokens never logged
}

TEST_CASE("padd: alice's device packages, bob's device unpackages, replays and forgeries fail", "[otp][device]") {
  Pair p;
  const std::string log = p.root.path() + "/bob-anomaly.log";
  Daemon alice(p.alice_dir(), p.alice_sock);
  Daemon bob(p.bob_dir(), p.bob_sock, opts({"--anomaly-log", log}));
  auto a = connect(p.alice_sock);
  auto b = connect(p.bob_sock);
  auto r1 = call(a, package_req(1, "bob", "first"));
  auto r2 = call(a, package_req(2, "bob", "second, with \xe2\x9c\x93 UTF-8"));
  auto r3 = call(a, package_req(3, "bob", ""));
  REQUIRE((r1["ok"] == true && r2["ok"] == true && r3["ok"] == true));

  // A forged packet (one ciphertext bit flipped) and a wrong contact change nothing.
  mpotr::Bytes pkt;
  REQUIRE(mpotr::from_base64(r2["packet_b64"].get<std::string>(), pkt));
  pkt[mpotr::otp::kHeaderSize] ^= 1;
  check_error(call(b, unpackage_req(10, "alice", mpotr::to_base64(pkt))), "bad_mac");
  check_error(call(b, unpackage_req(11, "carol", r2["packet_b64"])), "nick_mismatch");
  // Out of order: 2 before 1, then 1, then 3; a replay of 2 is refused.
  auto o2 = call(b, unpackage_req(12, "alice", r2["packet_b64"]));
  REQUIRE(o2["ok"] == true);
  CHECK(o2["warnings"] == json::array({"skipped_offset"}));  // packet 1 not seen yet
  CHECK(unb64(o2["message_b64"]) == "second, with \xe2\x9c\x93 UTF-8");
  auto o1 = call(b, unpackage_req(13, "alice", r1["packet_b64"]));
  REQUIRE(o1["ok"] == true);
  CHECK(unb64(o1["message_b64"]) == "first");
  auto o3 = call(b, unpackage_req(14, "alice", r3["packet_b64"]));
  REQUIRE(o3["ok"] == true);
  CHECK(unb64(o3["message_b64"]).empty());
  auto replay = call(b, unpackage_req(15, "alice", r2["packet_b64"]));
  CHECK(replay["ok"] == false);
  const auto text = read_text(log);
  CHECK(text.find("mac_failure") != std::string::npos);
  CHECK(text.find("replay") != std::string::npos);
  CHECK(text.find("skipped_offset") != std::string::npos);
  // Every line starts with an ISO 8601 UTC timestamp.
  CHECK(text.size() > 21);
  CHECK(text[4] == '-');
  CHECK(text[10] == 'T');
  CHECK(text[19] == 'Z');
}

TEST_CASE("padd: confirm ask releases pad only after a yes", "[otp][device]") {
  Pair p;
  int answers[2];
  REQUIRE(::pipe2(answers, O_CLOEXEC) == 0);  // the daemon must not hold the write end
  Daemon alice(p.alice_dir(), p.alice_sock, opts({"--confirm", "ask"}, answers[0]));
  ::close(answers[0]);
  auto c = connect(p.alice_sock);
  const auto before = send_remaining(c, "bob");
  REQUIRE(::write(answers[1], "n\n", 2) == 2);
  check_error(call(c, package_req(1, "bob", "denied")), "invalid_state");
  CHECK(send_remaining(c, "bob") == before);
  REQUIRE(::write(answers[1], "y\n", 2) == 2);
  auto r = call(c, package_req(2, "bob", "allowed"));
  CHECK(r["ok"] == true);
  CHECK(r["offset"] == 0);
  ::close(answers[1]);  // EOF: nobody can answer any more, so nothing more is released
  check_error(call(c, package_req(3, "bob", "nobody there")), "invalid_state");
}

TEST_CASE("padd: bad command lines and unsafe socket directories are refused", "[otp][device]") {
  Pair p;
  CHECK_THROWS(Daemon(p.alice_dir(), p.alice_sock, opts({"--confirm", "maybe"})));
  CHECK_THROWS(Daemon(p.alice_dir(), p.alice_sock, opts({"--tcp", "127.0.0.1:0"})));  // no token file
  const std::string open_dir = p.root.sub("open");
  ::chmod(open_dir.c_str(), 0755);
  CHECK_THROWS(Daemon(p.alice_dir(), open_dir + "/padd.sock"));
  // A second daemon on the same pads is refused (the store's lock), the first keeps serving.
  Daemon first(p.alice_dir(), p.alice_sock);
  CHECK_THROWS(Daemon(p.alice_dir(), p.root.sub("run-other") + "/padd.sock"));
  auto c = connect(p.alice_sock);
  CHECK(call(c, package_req(1, "bob", "still here"))["ok"] == true);
  CHECK(first.terminate() == 0);
  CHECK_FALSE(std::filesystem::exists(p.alice_sock));  // removed on SIGTERM
}

TEST_CASE("padd: at most 16 clients at once, the 17th is told why", "[otp][device]") {
  Pair p;
  Daemon alice(p.alice_dir(), p.alice_sock);
  std::vector<Client> clients;
  for (int i = 0; i < 16; ++i) {
    clients.push_back(connect(p.alice_sock));
    REQUIRE(call(clients.back(), {{"id", i}, {"op", "list"}})["ok"] == true);
  }
  auto extra = connect(p.alice_sock);
  auto line = extra.read_line();
  REQUIRE(line.ok());
  check_error(json::parse(*line), "limit_exceeded");
  CHECK_FALSE(extra.read_line(std::chrono::seconds(5)).ok());
  // One leaves: a newcomer is served again.
  clients.erase(clients.begin());
  bool served = false;
  for (int attempt = 0; attempt < 50 && !served; ++attempt) {
    auto c = connect(p.alice_sock);
    auto r = c.call({{"id", 1}, {"op", "list"}});
    served = r.ok() && r.value()["ok"] == true;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(served);
  for (auto& c : clients) CHECK(call(c, {{"id", 2}, {"op", "list"}})["ok"] == true);
}

TEST_CASE("padd: SIGTERM during an open prompt exits cleanly and releases nothing", "[otp][device]") {
  Pair p;
  int answers[2];
  REQUIRE(::pipe2(answers, O_CLOEXEC) == 0);
  {
    Daemon alice(p.alice_dir(), p.alice_sock, opts({"--confirm", "ask"}, answers[0]));
    auto c = connect(p.alice_sock);
    REQUIRE(c.send_raw(package_req(1, "bob", "never answered").dump() + "\n").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the prompt is open now
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(alice.terminate() == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
    auto line = c.read_line(std::chrono::seconds(2));
    if (line.ok()) CHECK(json::parse(*line)["ok"] == false);  // refused, or closed unanswered
  }
  ::close(answers[0]);
  ::close(answers[1]);
  Daemon again(p.alice_dir(), p.alice_sock);
  auto c = connect(p.alice_sock);
  auto r = call(c, package_req(2, "bob", "after restart"));
  REQUIRE(r["ok"] == true);
  CHECK(r["offset"] == 0);
}

TEST_CASE("padd: unfinished and idle connections time out with an error", "[otp][device]") {
  Pair p;
  Daemon alice(p.alice_dir(), p.alice_sock, opts({"--idle-timeout", "2", "--request-timeout", "1"}));
  auto slow = connect(p.alice_sock);
  REQUIRE(slow.send_raw(R"({"id":1,"op":"li)").ok());  // and nothing more
  auto idle = connect(p.alice_sock);
  const auto t0 = std::chrono::steady_clock::now();
  auto a = slow.read_line(std::chrono::seconds(5));
  REQUIRE(a.ok());
  CHECK(json::parse(*a)["error"]["detail"] == "request not finished in time");
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(1900));
  auto b = idle.read_line(std::chrono::seconds(5));
  REQUIRE(b.ok());
  CHECK(json::parse(*b)["error"]["detail"] == "idle timeout");
  CHECK_FALSE(slow.read_line(std::chrono::seconds(3)).ok());
  CHECK_FALSE(idle.read_line(std::chrono::seconds(3)).ok());
}

TEST_CASE("padd: pipelined requests are answered in order", "[otp][device]") {
  Pair p;
  Daemon alice(p.alice_dir(), p.alice_sock);
  auto c = connect(p.alice_sock);
  std::string batch;
  for (int i = 1; i <= 20; ++i) {
    batch += (i % 5 == 0 ? json{{"id", i}, {"op", "nope"}} : package_req(i, "bob", "m" + std::to_string(i))).dump() + "\n";
  }
  REQUIRE(c.send_raw(batch).ok());
  std::uint64_t next = 0;
  for (int i = 1; i <= 20; ++i) {
    auto line = c.read_line();
    REQUIRE(line.ok());
    auto r = json::parse(*line);
    CHECK(r["id"] == i);
    CHECK(r["ok"] == (i % 5 != 0));
    if (r["ok"] == true) {
      CHECK(r["offset"] == next);  // consecutive regions: the failed ones took nothing
      next += r["pad_bytes"].get<std::uint64_t>();
    }
  }
}

TEST_CASE("padd: an exhausted pad is a clear error, everything sent before still opens", "[otp][device]") {
  Pair p(2048);  // the smallest pad: 1 KiB per direction
  Daemon alice(p.alice_dir(), p.alice_sock);
  Daemon bob(p.bob_dir(), p.bob_sock);
  auto a = connect(p.alice_sock);
  std::vector<std::pair<std::string, std::string>> sent;
  json last;
  for (int i = 0; i < 100; ++i) {
    const std::string msg = "message number " + std::to_string(i) + std::string(40, '.');
    last = call(a, package_req(i, "bob", msg));
    if (last["ok"] != true) break;
    sent.emplace_back(msg, last["packet_b64"]);
  }
  check_error(last, "limit_exceeded");
  CHECK(sent.size() >= 5);
  CHECK(send_remaining(a, "bob") < 100);
  auto st = call(a, {{"id", "s"}, {"op", "status"}});
  CHECK(st["contacts"][0]["contact"] == "bob");
  CHECK(st["contacts"][0]["receive_remaining"] == 1024);  // bob's half untouched
  auto b = connect(p.bob_sock);
  int n = 0;
  for (const auto& [msg, pkt] : sent) {
    auto o = call(b, unpackage_req(++n, "alice", pkt));
    REQUIRE(o["ok"] == true);
    CHECK(unb64(o["message_b64"]) == msg);
  }
}

TEST_CASE("padd: the daemon exits when its --owner-pid is gone", "[otp][device]") {
  Pair p;
  const pid_t owner = ::fork();
  REQUIRE(owner >= 0);
  if (owner == 0) {
    ::usleep(300 * 1000);
    ::_exit(0);
  }
  std::thread reaper([owner] {
    int st = 0;
    while (::waitpid(owner, &st, 0) < 0 && errno == EINTR) {
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run({MPOTR_PADD_PATH, "--dir", p.alice_dir(), "--socket", p.alice_sock, "--owner-pid",
                std::to_string(owner)});
  reaper.join();
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.rfind("mpotr-padd ready", 0) == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  CHECK_FALSE(std::filesystem::exists(p.alice_sock));
}

TEST_CASE("padd: a corrupt pad state keeps the daemon from starting (fail closed)", "[otp][device]") {
  Pair p;
  std::string state;
  for (const auto& e : std::filesystem::directory_iterator(p.alice_dir())) state = e.path().string() + "/state.bin";
  REQUIRE(std::filesystem::exists(state));
  {
    std::fstream f(state, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x5a');
  }
  auto r = run({MPOTR_PADD_PATH, "--dir", p.alice_dir(), "--socket", p.alice_sock});
  INFO(r.output);
  CHECK(r.status == 2);
  CHECK(r.output.rfind("mpotr-padd: cannot open the pads in ", 0) == 0);
  CHECK_FALSE(std::filesystem::exists(p.alice_sock));
}

TEST_CASE("padd: a client of another user is refused even when the socket is reachable", "[otp][device]") {
  if (::geteuid() != 0) {
    // Only root can connect as another user here; elsewhere the 0700 directory is all that is tested.
    SUCCEED("not root: the uid check cannot be exercised");
    return;
  }
  Pair p;
  const std::string log = p.root.path() + "/anomaly.log";
  Daemon alice(p.alice_dir(), p.alice_sock, opts({"--anomaly-log", log}));
  // Loosen the first line of defence (directory 0700, socket 0600) so only SO_PEERCRED is left.
  const std::string dir = p.alice_sock.substr(0, p.alice_sock.rfind('/'));
  REQUIRE(::chmod(p.root.path().c_str(), 0755) == 0);
  REQUIRE(::chmod(dir.c_str(), 0755) == 0);
  REQUIRE(::chmod(p.alice_sock.c_str(), 0666) == 0);
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(out[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    auto c = Client::connect_unix(p.alice_sock);
    if (!c) ::_exit(4);
    (void)c->send_raw(package_req(1, "bob", "from nobody").dump() + "\n");
    auto line = c->read_line(std::chrono::seconds(5));
    const std::string text = line ? *line : "no answer: " + line.error().detail;
    (void)!::write(out[1], text.data(), text.size());
    ::_exit(0);
  }
  ::close(out[1]);
  std::string answer;
  char buf[512];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  int st = 0;
  ::waitpid(child, &st, 0);
  REQUIRE(WIFEXITED(st));
  REQUIRE(WEXITSTATUS(st) == 0);
  INFO(answer);
  const auto r = json::parse(answer);
  CHECK(r["ok"] == false);
  CHECK(r["error"]["detail"] == "connection from another user refused");
  // Nothing was packaged: alice's first packet still starts at offset 0.
  auto c = connect(p.alice_sock);
  CHECK(call(c, package_req(2, "bob", "mine"))["offset"] == 0);
  CHECK(read_text(log).find("foreign uid") != std::string::npos);
}
