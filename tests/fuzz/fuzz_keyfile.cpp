// SPDX-License-Identifier: MIT
// Identity key file loader (mpotr/store/keyfile.h). The store has no parse-from-text entry
// point, so the input is written to a 0600 file (created once per process in a private temp
// directory, on tmpfs when available) and loaded with load_identity(). Never crashes; whatever
// it accepts saves with save_identity() to a file that loads back to the same key.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_check.h"
#include "mpotr/store/keyfile.h"

using namespace mpotr;

namespace {

struct TempDir {
  std::string dir;
  std::string input;  // the fuzz input, rewritten for every run
  std::string saved;  // save_identity() output of an accepted input

  TempDir() {
    // A tmpfs if there is one: save_identity() fsyncs, which on a disk costs ~50x the run time.
    const char* base = std::getenv("TMPDIR");
    std::string dir_base = base != nullptr && *base != '\0' ? base : "/tmp";
    if (::access("/dev/shm", W_OK | X_OK) == 0) {
      dir_base = "/dev/shm";
    }
    std::string templ = dir_base + "/mpotr-fuzz-keyfile.XXXXXX";
    FUZZ_CHECK(::mkdtemp(templ.data()) != nullptr);
    dir = templ;
    input = dir + "/identity.json";
    saved = dir + "/saved.json";
    const int fd = ::open(input.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    ::close(fd);
  }
  ~TempDir() {
    ::unlink(input.c_str());
    ::unlink(saved.c_str());
    ::rmdir(dir.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

TempDir& temp() {
  static TempDir t;
  return t;
}

void write_input(const std::uint8_t* data, std::size_t size) {
  const int fd = ::open(temp().input.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  FUZZ_CHECK(fd >= 0);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    FUZZ_CHECK(n > 0);
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  write_input(data, size);
  auto key = store::load_identity(temp().input);
  if (!key.ok()) {
    FUZZ_CHECK(key.error().code == ErrorCode::Storage);
    return 0;
  }
  FUZZ_CHECK(size <= store::kMaxIdentityFileLen);
  FUZZ_CHECK(store::save_identity(temp().saved, *key).ok());
  auto again = store::load_identity(temp().saved);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->fingerprint() == key->fingerprint());
  FUZZ_CHECK(again->private_key().scalar() == key->private_key().scalar());
  FUZZ_CHECK(again->public_key() == key->public_key());
  return 0;
}
