// SPDX-License-Identifier: MIT
// The trust store's file: TrustStore::to_json() written atomically with mode 0600.
#pragma once

#include <cstddef>
#include <string>

#include "mpotr/result.h"
#include "mpotr/trust.h"

namespace mpotr::store {

inline constexpr std::size_t kMaxTrustFileLen = 4 * 1024 * 1024;  // same bound as TrustStore::from_json

// A missing file is an empty store. Errors: Storage for unsafe permissions (see
// read_private_file) or a malformed document (the detail says what is wrong).
Result<TrustStore> load_trust(const std::string& path);

// Atomic replace, mode 0600; creates missing parent directories with mode 0700.
Result<void> save_trust(const std::string& path, const TrustStore& store);

}  // namespace mpotr::store
