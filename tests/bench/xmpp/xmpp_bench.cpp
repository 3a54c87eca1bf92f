// SPDX-License-Identifier: MIT
// mpotr-bench-xmpp: session setup through a real ejabberd on loopback, all clients in this
// process (one thread, one libstrophe context), so the figures include XMPP parsing, the
// server's relaying and every member's engine work, but no network beyond loopback.
//
//   setup/n      one member starts a new session (restart) in a room of n secured members;
//                time until all n share the new session. Median of 5 runs.
//   grow/50      members join one by one; each join re-keys the room (old session closed,
//                new one set up); total time from the first join until 50 share a session,
//                and the time of the last join alone.
//
// The clients are spread over two worker threads (members alternate), each with its own
// XmppRooms (libstrophe context), because this machine has two cores and the engine work of 50
// members is what a run measures; ejabberd shares the same two cores.
//
//   mpotr-bench-xmpp [--report=bench-report.json] [--readme=README.md] [--max=50] [--threads=2]
// --report merges an "xmpp" section into that JSON file (creating it if needed); --readme
// replaces the table between <!-- bench-xmpp-table --> markers.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../bench_output.h"

#include "support/testserver.h"
#include "support/xmpp_room.h"

using namespace mpotr;
using namespace mpotr::test;

namespace {

struct Goal {
  std::string name;
  double seconds = 0;
  double goal = 0;  // 0 = no goal
};

double seconds_since(TimeMs t0) { return static_cast<double>(XmppRooms::now_ms() - t0) / 1000.0; }

std::vector<std::string> nicks_upto(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back("u" + std::to_string(i));
  }
  return out;
}

// What the coordinating thread may read about a member: published by its worker after every
// step, so the clients themselves are only ever touched by their own thread.
struct Snapshot {
  bool in_room = false;
  bool established = false;
  Hash32 session{};
  std::size_t members = 0;
};

class Worker {
 public:
  explicit Worker(XmppRoomOptions options) : m_rooms(std::move(options)), m_thread([this] { loop(); }) {}
  ~Worker() {
    m_stop = true;
    m_thread.join();
  }
  void post(std::function<void(XmppRooms&)> task) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_tasks.push_back(std::move(task));
  }
  std::map<std::string, Snapshot> snapshot() {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_snapshot;
  }

 private:
  void loop() {
    while (!m_stop) {
      std::vector<std::function<void(XmppRooms&)>> tasks;
      {
        std::lock_guard<std::mutex> lock(m_mutex);
        tasks.swap(m_tasks);
      }
      for (auto& t : tasks) {
        t(m_rooms);
      }
      m_rooms.step(1);
      std::map<std::string, Snapshot> snap;
      for (const auto& m : m_rooms.members()) {
        const auto& host = m->client->host();
        Snapshot& sn = snap[m->nick];
        sn.in_room = host.in_room();
        sn.established = host.phase() == Phase::Established;
        if (sn.established) {
          const auto info = host.session();
          sn.session = info->session_id;
          sn.members = info->members.size();
        }
      }
      std::lock_guard<std::mutex> lock(m_mutex);
      m_snapshot = std::move(snap);
    }
    // Leave quietly: the server drops the room when the connections close.
    for (auto& m : m_rooms.members()) {
      m->client->quit();
    }
    for (int i = 0; i < 20; ++i) {
      m_rooms.step(5);
    }
  }

  XmppRooms m_rooms;
  std::atomic<bool> m_stop{false};
  std::mutex m_mutex;
  std::vector<std::function<void(XmppRooms&)>> m_tasks;
  std::map<std::string, Snapshot> m_snapshot;
  std::thread m_thread;  // last: starts after everything it uses exists
};

class Clients {
 public:
  Clients(const TestServer& server, std::size_t threads) {
    XmppRoomOptions o;
    o.port = server.c2s_port();
    o.keep_all_notices = false;
    for (std::size_t i = 0; i < threads; ++i) {
      m_workers.push_back(std::make_unique<Worker>(o));
    }
  }
  void join(const std::string& nick, const std::string& room) {
    Worker& w = *m_workers[m_next++ % m_workers.size()];
    m_owner[nick] = &w;
    w.post([nick, room](XmppRooms& rooms) { rooms.start(rooms.add(nick, room)); });
  }
  void restart(const std::string& nick) {
    m_owner.at(nick)->post([nick](XmppRooms& rooms) { rooms.get(nick).client->restart(XmppRooms::now_ms()); });
  }
  std::map<std::string, Snapshot> snapshot() {
    std::map<std::string, Snapshot> all;
    for (auto& w : m_workers) {
      all.merge(w->snapshot());
    }
    return all;
  }
  // All of `nicks` share one established session of exactly that size (and not `not_session`).
  bool wait_secure(const std::vector<std::string>& nicks, std::optional<Hash32> not_session = std::nullopt) {
    const TimeMs deadline = XmppRooms::now_ms() + 120'000;
    while (XmppRooms::now_ms() < deadline) {
      const auto snap = snapshot();
      bool ok = true;
      std::optional<Hash32> sid;
      for (const auto& nick : nicks) {
        const auto it = snap.find(nick);
        if (it == snap.end() || !it->second.established || it->second.members != nicks.size() ||
            (sid && *sid != it->second.session) || (not_session && *not_session == it->second.session)) {
          ok = false;
          break;
        }
        sid = it->second.session;
      }
      if (ok) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    return false;
  }
  Hash32 session_of(const std::string& nick) { return snapshot().at(nick).session; }
  bool wait_in_room(const std::string& nick) {
    const TimeMs deadline = XmppRooms::now_ms() + 10'000;
    while (XmppRooms::now_ms() < deadline) {
      if (snapshot()[nick].in_room) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Worker>> m_workers;
  std::map<std::string, Worker*> m_owner;
  std::size_t m_next = 0;
};

// Median time for one member's restart to give all n members a new shared session.
double bench_setup(TestServer& server, std::size_t n, std::size_t threads) {
  const std::string room = "setup" + std::to_string(n) + "@conference.localhost";
  server.create_rooms({"setup" + std::to_string(n)});
  Clients clients(server, threads);
  const auto nicks = nicks_upto(n);
  for (const auto& nick : nicks) {
    clients.join(nick, room);
  }
  if (!clients.wait_secure(nicks)) {
    throw std::runtime_error("setup/" + std::to_string(n) + ": the room never became secure");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the join churn's old sessions close
  std::vector<double> runs;
  for (int i = 0; i < 5; ++i) {
    const Hash32 old = clients.session_of(nicks[0]);
    const TimeMs t0 = XmppRooms::now_ms();
    clients.restart(nicks[0]);
    if (!clients.wait_secure(nicks, old)) {
      throw std::runtime_error("setup/" + std::to_string(n) + ": restart did not converge");
    }
    runs.push_back(seconds_since(t0));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

struct Growth {
  double total = 0;
  double last_join = 0;
};

Growth bench_grow(TestServer& server, std::size_t n, std::size_t threads) {
  const std::string room = "grow@conference.localhost";
  server.create_rooms({"grow"});
  Clients clients(server, threads);
  const auto nicks = nicks_upto(n);
  Growth g;
  const TimeMs t0 = XmppRooms::now_ms();
  clients.join(nicks[0], room);
  if (!clients.wait_in_room(nicks[0])) {
    throw std::runtime_error("grow: the first member never got in");
  }
  for (std::size_t k = 2; k <= n; ++k) {
    const TimeMs tj = XmppRooms::now_ms();
    clients.join(nicks[k - 1], room);
    const std::vector<std::string> present(nicks.begin(), nicks.begin() + static_cast<std::ptrdiff_t>(k));
    if (!clients.wait_secure(present)) {
      throw std::runtime_error("grow: join " + std::to_string(k) + " did not converge");
    }
    g.last_join = seconds_since(tj);
  }
  g.total = seconds_since(t0);
  return g;
}

std::string table(const std::vector<Goal>& goals) {
  std::ostringstream t;
  t << "| XMPP measure (real ejabberd on loopback; all clients in one process) | result | goal | |\n";
  t << "|---|---|---|---|\n";
  for (const auto& g : goals) {
    char result[32];
    std::snprintf(result, sizeof result, "%.3f s", g.seconds);
    t << "| " << g.name << " | " << result << " | ";
    if (g.goal > 0) {
      char goal[32];
      std::snprintf(goal, sizeof goal, "≤ %.1f s", g.goal);
      t << goal << " | " << (g.seconds <= g.goal ? "met" : "MISSED") << " |\n";
    } else {
      t << "— | |\n";
    }
  }
  return t.str();
}


}  // namespace

int main(int argc, char** argv) {
  std::string report_path = "bench-report.json";
  std::string readme_path;
  std::size_t max_n = 50;
  std::size_t threads = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--report=", 0) == 0) {
      report_path = a.substr(9);
    } else if (a.rfind("--readme=", 0) == 0) {
      readme_path = a.substr(9);
    } else if (a.rfind("--max=", 0) == 0) {
      max_n = std::stoul(a.substr(6));
    } else if (a.rfind("--threads=", 0) == 0) {
      threads = std::max<std::size_t>(1, std::stoul(a.substr(10)));
    } else {
      std::cerr << "usage: mpotr-bench-xmpp [--report=PATH] [--readme=README.md] [--max=N] [--threads=N]\n";
      return 2;
    }
  }
  try {
    TestServer server;
    std::vector<std::pair<std::string, std::string>> users;
    for (const auto& nick : nicks_upto(max_n)) {
      users.emplace_back(nick, "pw-" + nick);
    }
    server.register_users(users);

    std::vector<Goal> goals;
    nlohmann::json j;
    for (std::size_t n : {2u, 5u, 10u, 25u, 50u}) {
      if (n > max_n) break;
      const double s = bench_setup(server, n, threads);
      const double goal = n == 10 ? 0.3 : n == 50 ? 3.0 : 0;
      goals.push_back({"start session → room secure, n = " + std::to_string(n), s, goal});
      j["setup_seconds"][std::to_string(n)] = s;
      std::printf("setup n=%zu: %.3f s\n", n, s);
      std::fflush(stdout);
    }
    const Growth g = bench_grow(server, max_n, threads);
    goals.push_back({"grow one room to " + std::to_string(max_n) + " by sequential joins (total)", g.total,
                     max_n == 50 ? 30.0 : 0});
    goals.push_back({"the last join alone (" + std::to_string(max_n - 1) + " → " + std::to_string(max_n) + ")",
                     g.last_join, 0});
    j["grow"] = {{"members", max_n}, {"total_seconds", g.total}, {"last_join_seconds", g.last_join}};
    j["client_threads"] = threads;
    server.stop();

    const std::string t = table(goals);
    std::cout << "\n" << t;
    if (!mpotr::bench::merge_report_section(report_path, "xmpp", j)) {
      std::cerr << "mpotr-bench-xmpp: cannot write " << report_path << '\n';
      return 1;
    }
    std::cout << "report written to " << report_path << '\n';
    if (!readme_path.empty()) {
      if (!mpotr::bench::replace_between_markers(readme_path, "bench-xmpp-table", t)) {
        std::cerr << "mpotr-bench-xmpp: no <!-- bench-xmpp-table --> markers in " << readme_path << '\n';
        return 1;
      }
      std::cout << "table written to " << readme_path << '\n';
    }
  } catch (const std::exception& e) {
    std::cerr << "mpotr-bench-xmpp: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
