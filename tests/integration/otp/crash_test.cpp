// SPDX-License-Identifier: MIT
// Crash safety of the pad device: alice's daemon is SIGKILLed every 20-80 ms and restarted
// while a client sends 1,000 package requests (retrying every request that got no answer).
// The packets that came back must use disjoint pad regions and all open on bob's device.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "mpotr/otp/packet.h"
#include "padd_harness.h"

using namespace padd_test;

TEST_CASE("padd: SIGKILL at random points never reuses pad and loses no answered message", "[otp][device][crash]") {
  constexpr int kMessages = 1000;  // at least; more until kMinKills kills happened
  constexpr int kMinKills = 20;
  constexpr int kMaxMessages = 3000;
  constexpr int kMaxAttempts = 10000;  // per message: a bound, never reached in practice
  TempDir root;
  make_pad(root, 4 << 20);
  const std::string sock = root.sub("run-a") + "/padd.sock";
  const std::string alice_dir = root.path() + "/alice";
  // Small reservation blocks: many durable reservations, so kills land between all the steps.
  const auto alice_opts = opts({"--reserve-block", "256"});

  const auto seed = std::random_device{}();
  INFO("seed " << seed);
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::string killer_error;
  std::thread killer([&] {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> wait_ms(20, 80);
    try {
      while (!done) {
        Daemon d(alice_dir, sock, alice_opts);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms(rng));
        while (!done && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (!done) ++kills;
        d.kill_now();  // SIGKILL, also at the end: the last daemon dies the same way
      }
    } catch (const std::exception& e) {
      killer_error = e.what();
      done = true;
    }
  });

  struct Sent {
    std::string message;
    json response;
  };
  std::vector<Sent> sent;
  std::map<int, int> retried;  // message index -> requests without an answer
  std::vector<std::string> refusals;
  const auto start = std::chrono::steady_clock::now();
  std::optional<Client> client;
  for (int i = 0; (i < kMessages || kills < kMinKills) && i < kMaxMessages && !done; ++i) {
    // Paced a little, so that the kills (every 20-80 ms) spread over the whole run.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const std::string msg = "message " + std::to_string(i) + " " + std::string(static_cast<std::size_t>(i % 50), 'x');
    for (int attempt = 0; attempt < kMaxAttempts && !done; ++attempt) {
      if (!client) {
        auto c = Client::connect_unix(sock);
        if (!c) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        client.emplace(std::move(c).value());
      }
      auto r = client->call(package_req(i, "bob", msg));
      if (!r) {  // no answer: the daemon died under us; retry on a new connection
        client.reset();
        ++retried[i];
        continue;
      }
      if (r.value()["ok"] != true) {
        refusals.push_back(r.value().dump());
        break;
      }
      sent.push_back({msg, std::move(r).value()});
      break;
    }
  }
  client.reset();
  done = true;
  killer.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int total_retries = 0;
  for (const auto& [i, n] : retried) total_retries += n;
  std::fprintf(stderr,
               "crash test: %d messages answered in %.1f s, %d daemon kills, %d requests without an answer "
               "(on %zu messages) retried, seed %u\n",
               static_cast<int>(sent.size()), secs, kills.load(), total_retries, retried.size(), seed);
  REQUIRE(killer_error.empty());
  CHECK(refusals.empty());
  // Every message got a packet (after retries): as many packets as messages asked for.
  REQUIRE(sent.size() >= kMessages);
  for (std::size_t k = 0; k < sent.size(); ++k) CHECK(sent[k].response["id"] == static_cast<int>(k));
  CHECK(kills >= kMinKills);

  // From the packets alone: every region lies in alice's half and no byte is used twice.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> regions;
  for (const auto& s : sent) {
    mpotr::Bytes pkt;
    REQUIRE(mpotr::from_base64(s.response["packet_b64"].get<std::string>(), pkt));
    auto parsed = mpotr::otp::parse_packet(pkt);
    REQUIRE(parsed.ok());
    CHECK(parsed->header.sender == mpotr::otp::Role::A);
    CHECK(parsed->header.offset == s.response["offset"].get<std::uint64_t>());
    CHECK(parsed->header.region_len() == s.response["pad_bytes"].get<std::uint64_t>());
    regions.emplace_back(parsed->header.offset, parsed->header.offset + parsed->header.region_len());
  }
  std::sort(regions.begin(), regions.end());
  int overlaps = 0;
  for (std::size_t k = 1; k < regions.size(); ++k) overlaps += regions[k].first < regions[k - 1].second ? 1 : 0;
  CHECK(overlaps == 0);
  CHECK(regions.back().second <= (2u << 20));  // alice's half of the 4 MiB pad

  // And by decryption on bob's device: every answered message opens, exactly as sent.
  const std::string bob_sock = root.sub("run-b") + "/padd.sock";
  Daemon bob(root.path() + "/bob", bob_sock);
  auto b = connect(bob_sock);
  int opened = 0;
  int n = 0;
  for (const auto& s : sent) {
    auto o = call(b, unpackage_req(++n, "alice", s.response["packet_b64"]));
    if (o["ok"] == true && unb64(o["message_b64"]) == s.message) {
      ++opened;
    } else {
      FAIL_CHECK("message " << n << " did not open: " << o.dump());
    }
  }
  CHECK(opened == static_cast<int>(sent.size()));
  CHECK(bob.terminate() == 0);
}
