// SPDX-License-Identifier: MIT
#include "mpotr/store/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <system_error>
#include <utility>

#include "mpotr/store/unique_fd.h"

namespace mpotr::store {

namespace {

std::string errno_text(int err) { return std::generic_category().message(err); }

Error storage(std::string detail) { return make_error(ErrorCode::Storage, std::move(detail)); }

Error storage_errno(const std::string& action, const std::string& path, int err) {
  return storage("cannot " + action + " " + path + ": " + errno_text(err));
}

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Unlinks the temp file unless told the file has been moved into place.
class TempFile {
 public:
  explicit TempFile(std::string path) : m_path(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() { remove(); }
  const std::string& path() const noexcept { return m_path; }
  void dismiss() noexcept { m_path.clear(); }
  void remove() noexcept {
    if (!m_path.empty()) {
      ::unlink(m_path.c_str());
      m_path.clear();
    }
  }

 private:
  std::string m_path;
};

struct SplitPath {
  std::string dir;   // for opening the directory; "." when the path has none
  std::string base;  // file name
};

Result<SplitPath> split_path(const std::string& path) {
  if (path.empty()) {
    return make_error(ErrorCode::InvalidArgument, "file path is empty");
  }
  if (path.find('\0') != std::string::npos) {
    return make_error(ErrorCode::InvalidArgument, "file path contains a NUL byte");
  }
  const auto slash = path.rfind('/');
  SplitPath out;
  out.base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (out.base.empty() || out.base == "." || out.base == "..") {
    return make_error(ErrorCode::InvalidArgument, "file path " + path + " does not name a file");
  }
  out.dir = parent_dir(path);
  if (out.dir.empty()) {
    out.dir = ".";
  }
  return out;
}

Result<void> write_all(int fd, ByteView contents, const std::string& path) {
  std::size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return storage_errno("write", path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

// Writes contents to a fresh temp file next to the target and makes it durable. `temp` is set
// as soon as the file exists, so it is removed on every failure path (here or in the caller)
// unless the caller moves it into place and dismisses it.
Result<void> write_temp(const SplitPath& target, ByteView contents, std::optional<TempFile>& temp) {
  // pid + counter make clashes unlikely; O_EXCL makes them harmless (stale files from a
  // crashed run are skipped, and an attacker's planted file or symlink is never opened).
  static std::atomic<unsigned> counter{0};
  constexpr int kAttempts = 32;
  UniqueFd fd;
  std::string tmp_path;
  for (int attempt = 0; attempt < kAttempts && !fd.valid(); ++attempt) {
    tmp_path = target.dir + "/." + target.base + ".tmp-" + std::to_string(::getpid()) + "-" +
               std::to_string(counter.fetch_add(1));
    fd.reset(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid() && errno != EEXIST) {
      return storage_errno("create temporary file", tmp_path, errno);
    }
  }
  if (!fd.valid()) {
    return storage("cannot create a temporary file in " + target.dir + ": too many leftover temporary files");
  }
  temp.emplace(tmp_path);
  // The umask may have removed owner bits; the result must be exactly owner read/write.
  if (::fchmod(fd.get(), 0600) != 0) {
    return storage_errno("set permissions on", tmp_path, errno);
  }
  MPOTR_CHECK(write_all(fd.get(), contents, tmp_path));
  if (::fsync(fd.get()) != 0) {
    return storage_errno("sync", tmp_path, errno);
  }
  if (fd.close() != 0) {
    return storage_errno("close", tmp_path, errno);
  }
  return {};
}

// Makes the rename/link itself durable.
Result<void> sync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    return storage_errno("open directory", dir, errno);
  }
  // EINVAL: the file system cannot sync directories; there is nothing more we can do.
  if (::fsync(fd.get()) != 0 && errno != EINVAL) {
    return storage_errno("sync directory", dir, errno);
  }
  return {};
}

std::string permission_problem(mode_t mode) {
  if ((mode & 044) != 0) {
    return "readable by group or others";
  }
  if ((mode & 022) != 0) {
    return "writable by group or others";
  }
  return "accessible by group or others";
}

}  // namespace

std::string parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    return {};
  }
  std::string dir = path.substr(0, slash);
  while (dir.size() > 1 && dir.back() == '/') {
    dir.pop_back();
  }
  return dir.empty() ? "/" : dir;
}

Result<void> write_file_atomic(const std::string& path, ByteView contents) {
  MPOTR_TRY(const SplitPath target, split_path(path));
  std::optional<TempFile> temp;
  MPOTR_CHECK(write_temp(target, contents, temp));
  if (::rename(temp->path().c_str(), path.c_str()) != 0) {
    return storage_errno("replace", path, errno);
  }
  temp->dismiss();
  // The new contents are in place; only their survival across a power cut is in question.
  MPOTR_CHECK(sync_dir(target.dir));
  return {};
}

Result<bool> create_file_atomic(const std::string& path, ByteView contents) {
  MPOTR_TRY(const SplitPath target, split_path(path));
  std::optional<TempFile> temp;
  MPOTR_CHECK(write_temp(target, contents, temp));
  // link() fails with EEXIST instead of replacing, which rename() cannot do portably.
  if (::link(temp->path().c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) {
      return false;
    }
    return storage_errno("create", path, errno);
  }
  temp->remove();
  MPOTR_CHECK(sync_dir(target.dir));
  return true;
}

Result<std::optional<std::string>> read_private_file_if_exists(const std::string& path, std::size_t max_len,
                                                               std::string_view what_view) {
  const std::string what(what_view);
  // Leaves room for the spare byte below.
  max_len = std::min(max_len, std::numeric_limits<std::size_t>::max() / 2);
  if (path.empty() || path.find('\0') != std::string::npos) {
    return make_error(ErrorCode::InvalidArgument, what + " path is empty or contains a NUL byte");
  }
  // O_NOFOLLOW: a symlink could point us at another user's file. O_NONBLOCK: opening a FIFO
  // planted at the path would otherwise hang; fstat rejects it right after.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) {
    const int err = errno;
    if (err == ENOENT) {
      return std::optional<std::string>{};
    }
    if (err == ELOOP) {
      return storage(what + " " + path +
                     " is a symbolic link; refusing to follow it (use the path of the file itself)");
    }
    return storage_errno("open " + what, path, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return storage_errno("inspect " + what, path, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return storage(what + " " + path + " is not a regular file");
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    return storage(what + " " + path + " is owned by uid " + std::to_string(st.st_uid) +
                   ", not by the current user (uid " + std::to_string(me) + "); run chown " +
                   std::to_string(me) + " " + path + " if it is yours, otherwise do not use it");
  }
  if ((st.st_mode & 077) != 0) {
    return storage(what + " " + path + " is " + permission_problem(st.st_mode) + " (mode " +
                   mode_text(st.st_mode) + "); run chmod 600 " + path);
  }
  if (st.st_size < 0 || static_cast<std::uintmax_t>(st.st_size) > max_len) {
    return storage(what + " " + path + " is too large (" + std::to_string(st.st_size) + " bytes, limit " +
                   std::to_string(max_len) + ")");
  }
  // Sized up front so a secret is not left behind in buffers freed by growth; it only grows
  // if the file grew since fstat. One spare byte detects growth past max_len.
  std::string text(static_cast<std::size_t>(st.st_size) + 1, '\0');
  std::size_t used = 0;
  for (;;) {
    if (used == text.size()) {
      if (text.size() > max_len) {
        secure_zero(text.data(), text.size());
        return storage(what + " " + path + " is too large (limit " + std::to_string(max_len) + " bytes)");
      }
      text.resize(std::min(text.size() * 2, max_len + 1), '\0');
    }
    const ssize_t n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      secure_zero(text.data(), text.size());
      return storage_errno("read " + what, path, err);
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
  }
  text.resize(used);
  return std::optional<std::string>(std::move(text));
}

Result<std::string> read_private_file(const std::string& path, std::size_t max_len, std::string_view what) {
  MPOTR_TRY(std::optional<std::string> text, read_private_file_if_exists(path, max_len, what));
  if (!text) {
    return storage(std::string(what) + " " + path + " does not exist");
  }
  return std::move(*text);
}

Result<void> ensure_private_dir(const std::string& dir) {
  if (dir.empty()) {
    return {};
  }
  if (dir.find('\0') != std::string::npos) {
    return make_error(ErrorCode::InvalidArgument, "directory path contains a NUL byte");
  }
  // Walk the prefixes "a", "a/b", "a/b/c" (mkdir -p).
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    const std::string prefix = dir.substr(0, pos);
    if (prefix.empty() || prefix.back() == '/') {
      continue;  // root or a doubled slash
    }
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      // Exactly 0700 whatever the umask; only directories we created are touched.
      if (::chmod(prefix.c_str(), 0700) != 0) {
        return storage_errno("set permissions on directory", prefix, errno);
      }
      continue;
    }
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      continue;
    }
    if (err == EEXIST) {
      return storage(prefix + " exists but is not a directory");
    }
    return storage_errno("create directory", prefix, err);
  }
  return {};
}

}  // namespace mpotr::store
