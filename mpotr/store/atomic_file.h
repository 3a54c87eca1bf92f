// SPDX-License-Identifier: MIT
// The file primitives every mpotr file goes through: crash-safe replacement and reads that
// refuse files other users could have read or planted.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "mpotr/bytes.h"
#include "mpotr/result.h"

namespace mpotr::store {

// Replaces path with contents: writes a 0600 temp file in the same directory, fsyncs it,
// renames it over path and fsyncs the directory. A crash or error leaves either the old file
// or the new one, never a partial one. Errors: InvalidArgument (empty path, NUL byte,
// no file name), Storage (with the system's reason; the temp file is removed).
Result<void> write_file_atomic(const std::string& path, ByteView contents);

// Same, but never replaces an existing file (the temp file is hard-linked into place).
// Returns true if path was created, false if it already existed (left untouched).
Result<bool> create_file_atomic(const std::string& path, ByteView contents);

// Reads a file only if it is safe to trust and keep secret: a regular file (symlinks are not
// followed), owned by the effective user, with no group/other permission bits, at most
// max_len bytes. Every refusal is a Storage error saying what is wrong and how to fix it.
// `what` names the file in messages ("key file", "trust file").
Result<std::string> read_private_file(const std::string& path, std::size_t max_len,
                                      std::string_view what = "file");
// As above, but a missing file (ENOENT) is std::nullopt rather than an error.
Result<std::optional<std::string>> read_private_file_if_exists(const std::string& path, std::size_t max_len,
                                                               std::string_view what = "file");

// Creates dir and any missing parents with mode 0700 (existing directories are left as they
// are). Empty dir means the current directory: nothing to do. Errors: Storage.
Result<void> ensure_private_dir(const std::string& dir);

// The directory part of path ("" when path has no '/'; "/" for files in the root).
std::string parent_dir(const std::string& path);

}  // namespace mpotr::store
