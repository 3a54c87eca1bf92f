// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mpotr/store/atomic_file.h"
#include "mpotr/store/keyfile.h"
#include "mpotr/store/trust_file.h"

using namespace mpotr;
using namespace mpotr::store;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mpotr-identity-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    REQUIRE(made != nullptr);
    m_dir = made;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(m_dir, ec);
  }
  const std::string& dir() const { return m_dir; }
  std::string path(const std::string& name) const { return m_dir + "/" + name; }

 private:
  std::string m_dir;
};

void write_raw(const std::string& path, const std::string& text, mode_t mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    REQUIRE(out.good());
    out << text;
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

std::string read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

mode_t mode_of(const std::string& path) { return lstat_of(path).st_mode & 07777; }

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool running_as_root() { return ::geteuid() == 0; }

IdentityKey make_key(std::uint64_t seed) {
  DeterministicRng rng(seed);
  auto key = IdentityKey::generate(rng);
  REQUIRE(key.ok());
  return std::move(key).value();
}

std::string scalar_hex(const IdentityKey& key) { return to_hex(key.private_key().scalar().view()); }
std::string point_hex(const IdentityKey& key) { return to_hex(view(key.public_key().point())); }

void check_storage(const Result<IdentityKey>& r, const std::string& detail) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::Storage);
  CHECK_THAT(r.error().detail, Catch::Contains(detail));
}

// A key file built field by field; each member is raw JSON text ("" leaves the field out).
struct KeyDoc {
  std::string version = "1";
  std::string type = "\"mpotr-identity\"";
  std::string curve = "\"P-256\"";
  std::string private_key;
  std::string public_key;
  std::string fingerprint;
  std::string extra;  // raw `"name": value` appended as is

  explicit KeyDoc(const IdentityKey& key)
      : private_key("\"" + scalar_hex(key) + "\""),
        public_key("\"" + point_hex(key) + "\""),
        fingerprint("\"" + key.fingerprint().grouped() + "\"") {}

  std::string text() const {
    std::vector<std::string> fields;
    const auto add = [&fields](const char* name, const std::string& value) {
      if (!value.empty()) {
        fields.push_back("\"" + std::string(name) + "\": " + value);
      }
    };
    add("version", version);
    add("type", type);
    add("curve", curve);
    add("private_key", private_key);
    add("public_key", public_key);
    add("fingerprint", fingerprint);
    if (!extra.empty()) {
      fields.push_back(extra);
    }
    std::string out = "{";
    for (std::size_t i = 0; i < fields.size(); ++i) {
      out += (i == 0 ? "" : ", ") + fields[i];
    }
    return out + "}";
  }
};

}  // namespace

// --- atomic writes -------------------------------------------------------------------------

TEST_CASE("write_file_atomic creates a 0600 file and replaces an existing one", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("file.txt");
  REQUIRE(write_file_atomic(p, as_bytes("first")).ok());
  CHECK(read_raw(p) == "first");
  CHECK(mode_of(p) == 0600);

  REQUIRE(::chmod(p.c_str(), 0644) == 0);
  const mode_t old_umask = ::umask(0);  // the file mode must not depend on the umask
  const auto r = write_file_atomic(p, as_bytes("second"));
  ::umask(old_umask);
  REQUIRE(r.ok());
  CHECK(read_raw(p) == "second");
  CHECK(mode_of(p) == 0600);

  REQUIRE(write_file_atomic(p, ByteView{}).ok());
  CHECK(read_raw(p).empty());
  CHECK(list_dir(tmp.dir()) == std::vector<std::string>{"file.txt"});
}

TEST_CASE("write_file_atomic replaces a symlink instead of writing through it", "[store]") {
  TempDir tmp;
  const std::string target = tmp.path("target");
  const std::string link = tmp.path("link");
  write_raw(target, "untouched", 0600);
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  REQUIRE(write_file_atomic(link, as_bytes("new")).ok());
  CHECK(read_raw(target) == "untouched");
  CHECK(S_ISREG(lstat_of(link).st_mode));
  CHECK(read_raw(link) == "new");
}

TEST_CASE("write_file_atomic into a missing directory fails and creates nothing", "[store]") {
  TempDir tmp;
  const auto r = write_file_atomic(tmp.path("missing/file.txt"), as_bytes("x"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::Storage);
  CHECK_THAT(r.error().detail, Catch::Contains("No such file or directory"));
  CHECK(list_dir(tmp.dir()).empty());
}

TEST_CASE("a failed write leaves the old file intact and no temp file behind", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("file.txt");
  write_raw(p, "old contents", 0600);

  SECTION("the write itself fails (file size limit)") {
    // Root ignores permissions, so make write(2) fail with EFBIG via RLIMIT_FSIZE instead.
    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    const auto saved_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = saved;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    const Bytes big(100000, 'x');
    const auto r = write_file_atomic(p, view(big));
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &saved) == 0);
    std::signal(SIGXFSZ, saved_handler);

    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::Storage);
    CHECK_THAT(r.error().detail, Catch::Contains("cannot write") && Catch::Contains("File too large"));
  }
  SECTION("the rename fails (target is a non-empty directory)") {
    const std::string d = tmp.path("dir");
    REQUIRE(::mkdir(d.c_str(), 0700) == 0);
    write_raw(d + "/inside", "x", 0600);
    const auto r = write_file_atomic(d, as_bytes("new"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::Storage);
    CHECK_THAT(r.error().detail, Catch::Contains("cannot replace " + d));
    CHECK(list_dir(d) == std::vector<std::string>{"inside"});
    REQUIRE(::unlink((d + "/inside").c_str()) == 0);
    REQUIRE(::rmdir(d.c_str()) == 0);
  }
  CHECK(read_raw(p) == "old contents");
  CHECK(list_dir(tmp.dir()) == std::vector<std::string>{"file.txt"});
}

TEST_CASE("write_file_atomic rejects paths that name no file", "[store]") {
  TempDir tmp;
  for (const std::string& p : {std::string(), tmp.dir() + "/", tmp.path("."), tmp.path(".."),
                               tmp.path(std::string("a\0b", 3))}) {
    INFO(p);
    const auto r = write_file_atomic(p, as_bytes("x"));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::InvalidArgument);
  }
  CHECK(list_dir(tmp.dir()).empty());
}

TEST_CASE("create_file_atomic never replaces", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("file.txt");
  auto first = create_file_atomic(p, as_bytes("first"));
  REQUIRE(first.ok());
  CHECK(*first);
  CHECK(mode_of(p) == 0600);
  auto second = create_file_atomic(p, as_bytes("second"));
  REQUIRE(second.ok());
  CHECK_FALSE(*second);
  CHECK(read_raw(p) == "first");
  CHECK(list_dir(tmp.dir()) == std::vector<std::string>{"file.txt"});
}

// --- private reads -------------------------------------------------------------------------

TEST_CASE("read_private_file reads a private regular file", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("secret");
  write_raw(p, "secret", 0600);
  auto r = read_private_file(p, 6);
  REQUIRE(r.ok());
  CHECK(*r == "secret");
  write_raw(p, "x", 0400);  // read-only and owner-executable files are private too
  CHECK(read_private_file(p, 10).ok());
  REQUIRE(::chmod(p.c_str(), 0700) == 0);
  CHECK(read_private_file(p, 10).ok());
  write_raw(p, "", 0600);
  auto empty = read_private_file(p, 10);
  REQUIRE(empty.ok());
  CHECK(empty->empty());
}

TEST_CASE("read_private_file refuses group/other permission bits and says how to fix it", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("key.json");
  struct Case {
    mode_t mode;
    std::string problem;
  };
  const Case cases[] = {
      {0644, "readable by group or others (mode 0644)"}, {0640, "readable by group or others (mode 0640)"},
      {0604, "readable by group or others (mode 0604)"}, {0620, "writable by group or others (mode 0620)"},
      {0602, "writable by group or others (mode 0602)"}, {0610, "accessible by group or others (mode 0610)"},
  };
  for (const auto& c : cases) {
    INFO(c.problem);
    write_raw(p, "{}", c.mode);
    auto r = read_private_file(p, 100, "key file");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::Storage);
    CHECK(r.error().detail == "key file " + p + " is " + c.problem + "; run chmod 600 " + p);
  }
}

TEST_CASE("read_private_file refuses symlinks, directories, FIFOs and other users' files", "[store]") {
  TempDir tmp;
  const std::string real = tmp.path("real");
  write_raw(real, "data", 0600);

  const std::string link = tmp.path("link");
  REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
  auto r = read_private_file(link, 100);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::Storage);
  CHECK_THAT(r.error().detail, Catch::Contains("symbolic link"));

  const std::string dangling = tmp.path("dangling");
  REQUIRE(::symlink(tmp.path("nowhere").c_str(), dangling.c_str()) == 0);
  auto d = read_private_file_if_exists(dangling, 100);
  REQUIRE_FALSE(d.ok());
  CHECK_THAT(d.error().detail, Catch::Contains("symbolic link"));

  const std::string dir = tmp.path("dir");
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  r = read_private_file(dir, 100);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().detail, Catch::Contains("is not a regular file"));

  const std::string fifo = tmp.path("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  r = read_private_file(fifo, 100);  // must not hang waiting for a writer
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error().detail, Catch::Contains("is not a regular file"));

  if (!running_as_root()) {
    WARN("not root: cannot chown a file to another user; skipping the ownership check");
    return;
  }
  REQUIRE(::chown(real.c_str(), 65534, 65534) == 0);
  r = read_private_file(real, 100, "key file");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::Storage);
  CHECK_THAT(r.error().detail, Catch::Contains("key file " + real + " is owned by uid 65534") &&
                                   Catch::Contains("current user (uid 0)"));
}

TEST_CASE("read_private_file enforces the size bound and reports missing files", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("f");
  write_raw(p, "12345", 0600);
  CHECK(read_private_file(p, 5).ok());
  auto r = read_private_file(p, 4);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::Storage);
  CHECK_THAT(r.error().detail, Catch::Contains("too large (5 bytes, limit 4)"));

  r = read_private_file(tmp.path("missing"), 100, "trust file");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().detail == "trust file " + tmp.path("missing") + " does not exist");
  auto maybe = read_private_file_if_exists(tmp.path("missing"), 100);
  REQUIRE(maybe.ok());
  CHECK_FALSE(maybe->has_value());
  maybe = read_private_file_if_exists(tmp.path("no/such/dir/file"), 100);
  REQUIRE(maybe.ok());
  CHECK_FALSE(maybe->has_value());
}

TEST_CASE("ensure_private_dir creates missing directories with mode 0700", "[store]") {
  TempDir tmp;
  const std::string nested = tmp.path("a/b/c");
  const mode_t old_umask = ::umask(0077 | 0200);  // a hostile umask must not change the result
  const auto r = ensure_private_dir(nested);
  ::umask(old_umask);
  REQUIRE(r.ok());
  CHECK(mode_of(tmp.path("a")) == 0700);
  CHECK(mode_of(tmp.path("a/b")) == 0700);
  CHECK(mode_of(nested) == 0700);
  CHECK(ensure_private_dir(nested).ok());
  CHECK(ensure_private_dir(tmp.dir() + "//a//b/").ok());
  CHECK(mode_of(tmp.dir()) == 0700);  // existing directories are left alone (mkdtemp made it 0700)
  CHECK(ensure_private_dir("").ok());

  write_raw(tmp.path("file"), "", 0600);
  const auto blocked = ensure_private_dir(tmp.path("file/sub"));
  REQUIRE_FALSE(blocked.ok());
  CHECK(blocked.error().code == ErrorCode::Storage);
  CHECK_THAT(blocked.error().detail, Catch::Contains("not a directory"));
}

TEST_CASE("parent_dir", "[store]") {
  CHECK(parent_dir("a/b/c") == "a/b");
  CHECK(parent_dir("c").empty());
  CHECK(parent_dir("/c") == "/");
  CHECK(parent_dir("a//c") == "a");
  CHECK(parent_dir("/a/b/") == "/a/b");
}

// --- identity key file ---------------------------------------------------------------------

TEST_CASE("identity key file round trip", "[store]") {
  TempDir tmp;
  const IdentityKey key = make_key(42);
  const std::string p = tmp.path("conf/identity.json");
  REQUIRE(save_identity(p, key).ok());
  CHECK(mode_of(p) == 0600);
  CHECK(mode_of(tmp.path("conf")) == 0700);

  const std::string text = read_raw(p);
  CHECK_THAT(text, Catch::Contains("\"version\": 1"));
  CHECK_THAT(text, Catch::Contains("\"type\": \"mpotr-identity\""));
  CHECK_THAT(text, Catch::Contains("\"curve\": \"P-256\""));
  CHECK_THAT(text, Catch::Contains("\"private_key\": \"" + scalar_hex(key) + "\""));
  CHECK_THAT(text, Catch::Contains("\"public_key\": \"" + point_hex(key) + "\""));
  CHECK_THAT(text, Catch::Contains("\"fingerprint\": \"" + key.fingerprint().grouped() + "\""));

  auto loaded = load_identity(p);
  REQUIRE(loaded.ok());
  CHECK(loaded->fingerprint() == key.fingerprint());
  CHECK(loaded->public_key() == key.public_key());
  CHECK(loaded->private_key().scalar() == key.private_key().scalar());

  // Saving again replaces the key.
  const IdentityKey other = make_key(43);
  REQUIRE(save_identity(p, other).ok());
  auto reloaded = load_identity(p);
  REQUIRE(reloaded.ok());
  CHECK(reloaded->fingerprint() == other.fingerprint());

  // The file's own layout is not special: any valid JSON with the same fields loads.
  write_raw(p, KeyDoc(key).text(), 0600);
  auto hand_written = load_identity(p);
  REQUIRE(hand_written.ok());
  CHECK(hand_written->fingerprint() == key.fingerprint());
}

TEST_CASE("load_identity refuses unsafe key files", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("identity.json");
  REQUIRE(save_identity(p, make_key(1)).ok());

  for (const mode_t mode : {mode_t{0644}, mode_t{0640}}) {
    REQUIRE(::chmod(p.c_str(), mode) == 0);
    check_storage(load_identity(p), "readable by group or others");
    check_storage(load_identity(p), "run chmod 600 " + p);
  }
  REQUIRE(::chmod(p.c_str(), 0600) == 0);
  REQUIRE(load_identity(p).ok());

  const std::string link = tmp.path("link.json");
  REQUIRE(::symlink(p.c_str(), link.c_str()) == 0);
  check_storage(load_identity(link), "key file " + link + " is a symbolic link");

  check_storage(load_identity(tmp.path("missing.json")), "does not exist");

  if (!running_as_root()) {
    WARN("not root: cannot chown a file to another user; skipping the ownership check");
    return;
  }
  REQUIRE(::chown(p.c_str(), 65534, 65534) == 0);
  check_storage(load_identity(p), "is owned by uid 65534");
}

TEST_CASE("corrupt key files give distinct Storage errors without leaking the key", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("identity.json");
  const IdentityKey key = make_key(7);
  const IdentityKey other = make_key(8);
  const std::string good = KeyDoc(key).text();
  const std::string n_hex = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

  struct Case {
    std::string name;
    std::string text;
    std::string detail;
  };
  std::vector<Case> cases;
  const auto variant = [&](const std::string& name, auto edit, const std::string& detail) {
    KeyDoc doc(key);
    edit(doc);
    cases.push_back({name, doc.text(), detail});
  };
  cases.push_back({"truncated", good.substr(0, good.size() / 2), "not valid JSON"});
  cases.push_back({"empty", "", "not valid JSON"});
  cases.push_back({"array", "[" + good + "]", "top level must be a JSON object"});
  variant("wrong version", [](KeyDoc& d) { d.version = "2"; }, "unsupported \"version\" 2");
  variant("string version", [](KeyDoc& d) { d.version = "\"1\""; }, "unsupported \"version\" \"1\"");
  variant("no version", [](KeyDoc& d) { d.version.clear(); }, "missing \"version\"");
  variant("wrong type", [](KeyDoc& d) { d.type = "\"ssh-key\""; }, "\"type\" is \"ssh-key\"");
  variant("wrong curve", [](KeyDoc& d) { d.curve = "\"P-384\""; }, "unsupported \"curve\" \"P-384\"");
  variant("curve not a string", [](KeyDoc& d) { d.curve = "256"; }, "\"curve\" must be a string");
  variant("unknown field", [](KeyDoc& d) { d.extra = "\"comment\": \"hi\""; }, "unknown field \"comment\"");
  variant("no private key", [](KeyDoc& d) { d.private_key.clear(); }, "missing \"private_key\"");
  variant(
      "bad hex private key", [](KeyDoc& d) { d.private_key = "\"" + std::string(64, 'z') + "\""; },
      "\"private_key\" must be 64 hex digits");
  variant("zero scalar", [](KeyDoc& d) { d.private_key = "\"" + std::string(64, '0') + "\""; },
          "\"private_key\" is not a valid P-256 private key");
  variant(
      "bad hex public key", [](KeyDoc& d) { d.public_key = "\"04" + std::string(128, 'x') + "\""; },
      "\"public_key\" must be 130 hex digits");
  variant(
      "public key mismatch", [&](KeyDoc& d) { d.public_key = "\"" + point_hex(other) + "\""; },
      "\"public_key\" does not match \"private_key\"");
  variant("no fingerprint", [](KeyDoc& d) { d.fingerprint.clear(); }, "missing \"fingerprint\"");
  variant("malformed fingerprint", [](KeyDoc& d) { d.fingerprint = "\"1234\""; }, "\"fingerprint\" is malformed");
  variant(
      "fingerprint mismatch", [&](KeyDoc& d) { d.fingerprint = "\"" + other.fingerprint().grouped() + "\""; },
      "\"fingerprint\" does not match \"private_key\"");

  std::set<std::string> details;
  for (const auto& c : cases) {
    INFO(c.name << ": " << c.text);
    write_raw(p, c.text, 0600);
    const auto r = load_identity(p);
    check_storage(r, "key file " + p + ": " + c.detail);
    if (!r.ok()) {
      details.insert(r.error().detail);
      CHECK_THAT(r.error().detail, !Catch::Contains(scalar_hex(key)));
    }
  }
  CHECK(details.size() == cases.size() - 1);  // "truncated" and "empty" share their detail

  // Other ways to get the scalar wrong share the detail of their kind.
  for (const std::string& bad : {std::string("\"") + n_hex + "\"", "\"" + std::string(62, '1') + "\"",
                                 "\"" + scalar_hex(key) + "00\"", std::string("17")}) {
    INFO(bad);
    KeyDoc doc(key);
    doc.private_key = bad;
    write_raw(p, doc.text(), 0600);
    const auto r = load_identity(p);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::Storage);
    CHECK_THAT(r.error().detail, Catch::Contains("\"private_key\""));
  }
}

TEST_CASE("load_or_create_identity creates once, then loads the same key", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("home/.config/mpotr/identity.json");
  DeterministicRng rng(99);
  bool created = false;
  auto first = load_or_create_identity(p, rng, &created);
  REQUIRE(first.ok());
  CHECK(created);
  CHECK(mode_of(p) == 0600);
  CHECK(mode_of(tmp.path("home")) == 0700);
  CHECK(mode_of(tmp.path("home/.config/mpotr")) == 0700);
  CHECK(list_dir(tmp.path("home/.config/mpotr")) == std::vector<std::string>{"identity.json"});
  const ino_t inode = lstat_of(p).st_ino;

  auto second = load_or_create_identity(p, rng, &created);
  REQUIRE(second.ok());
  CHECK_FALSE(created);
  CHECK(second->fingerprint() == first->fingerprint());
  CHECK(second->private_key().scalar() == first->private_key().scalar());
  CHECK(lstat_of(p).st_ino == inode);  // not rewritten

  auto third = load_or_create_identity(p, rng);  // created is optional
  REQUIRE(third.ok());
  CHECK(third->fingerprint() == first->fingerprint());
}

TEST_CASE("load_or_create_identity never replaces a corrupt or unsafe key file", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("identity.json");
  DeterministicRng rng(5);
  bool created = true;

  write_raw(p, "{ corrupt", 0600);
  check_storage(load_or_create_identity(p, rng, &created), "not valid JSON");
  CHECK_FALSE(created);
  CHECK(read_raw(p) == "{ corrupt");

  const std::string valid = KeyDoc(make_key(3)).text();
  write_raw(p, valid, 0644);
  check_storage(load_or_create_identity(p, rng, &created), "readable by group or others");
  CHECK(read_raw(p) == valid);
  CHECK(mode_of(p) == 0644);
  CHECK(list_dir(tmp.dir()) == std::vector<std::string>{"identity.json"});
}

// --- trust file ----------------------------------------------------------------------------

TEST_CASE("trust file: missing is empty, save/load round trip, unsafe or corrupt refused", "[store]") {
  TempDir tmp;
  const std::string p = tmp.path("state/trust.json");
  auto empty = load_trust(p);
  REQUIRE(empty.ok());
  CHECK(empty->records().empty());

  TrustStore store;
  Fingerprint fp;
  fp.bytes.fill(0x5A);
  REQUIRE(store.record_first_use("bob@example.org", fp).ok());
  REQUIRE(store.block("mallory@example.org").ok());
  REQUIRE(save_trust(p, store).ok());
  CHECK(mode_of(p) == 0600);
  CHECK(mode_of(tmp.path("state")) == 0700);
  auto loaded = load_trust(p);
  REQUIRE(loaded.ok());
  CHECK(loaded->to_json() == store.to_json());
  CHECK(loaded->check("bob@example.org", fp) == TrustDecision::Trusted);

  // Blocked fingerprints are saved and loaded with the records.
  Fingerprint blocked;
  blocked.bytes.fill(0xA5);
  REQUIRE(store.block_fingerprint(blocked).ok());
  REQUIRE(save_trust(p, store).ok());
  auto with_block = load_trust(p);
  REQUIRE(with_block.ok());
  CHECK(with_block->to_json() == store.to_json());
  CHECK(with_block->fingerprint_blocked(blocked));
  CHECK(with_block->check("eve@example.org", blocked) == TrustDecision::Blocked);

  REQUIRE(::chmod(p.c_str(), 0644) == 0);
  auto unsafe = load_trust(p);
  REQUIRE_FALSE(unsafe.ok());
  CHECK(unsafe.error().code == ErrorCode::Storage);
  CHECK_THAT(unsafe.error().detail, Catch::Contains("trust file " + p + " is readable by group or others"));

  write_raw(p, R"({"version":1,"peers":{"bob@example.org":{"level":"tofu"}}})", 0600);
  auto corrupt = load_trust(p);
  REQUIRE_FALSE(corrupt.ok());
  CHECK(corrupt.error().code == ErrorCode::Storage);
  CHECK_THAT(corrupt.error().detail, Catch::Contains("trust file " + p + ": invalid trust document") &&
                                         Catch::Contains("missing \"fingerprint\""));

  const std::string link = tmp.path("link.json");
  REQUIRE(::symlink(p.c_str(), link.c_str()) == 0);
  auto via_link = load_trust(link);
  REQUIRE_FALSE(via_link.ok());
  CHECK_THAT(via_link.error().detail, Catch::Contains("symbolic link"));
}
