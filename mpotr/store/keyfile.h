// SPDX-License-Identifier: MIT
// The identity key file: one JSON document, mode 0600, holding the long-term P-256 key.
//   {"version":1,"type":"mpotr-identity","curve":"P-256",
//    "private_key":"<64 hex digits: the 32-byte scalar>","public_key":"<130 hex digits: 65-byte point>",
//    "fingerprint":"<grouped, as people compare it>"}
// public_key and fingerprint are redundant on purpose: on load both must match the private
// key, which catches corruption and hand edits.
#pragma once

#include <cstddef>
#include <string>

#include "mpotr/identity.h"
#include "mpotr/result.h"
#include "mpotr/rng.h"

namespace mpotr::store {

inline constexpr std::size_t kMaxIdentityFileLen = 64 * 1024;

// Writes (or replaces) the key file atomically with mode 0600, creating missing parent
// directories with mode 0700. Errors: Storage, InvalidArgument (bad path).
Result<void> save_identity(const std::string& path, const IdentityKey& key);

// Errors: Storage for a missing, unsafe (see read_private_file) or corrupt file; the detail
// names the offending field.
Result<IdentityKey> load_identity(const std::string& path);

// Loads the key file, or generates a key and creates the file (and its parent directories,
// mode 0700) if there is none. Never replaces an existing file: if another process creates
// it first, that key is loaded. *created (if given) tells which happened.
Result<IdentityKey> load_or_create_identity(const std::string& path, Rng& rng, bool* created = nullptr);

}  // namespace mpotr::store
