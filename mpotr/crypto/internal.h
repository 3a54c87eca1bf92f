// SPDX-License-Identifier: MIT
// Helpers shared by the files of mpotr/crypto/. Private to mpotr/crypto/.
#pragma once

#include <openssl/evp.h>

#include "mpotr/result.h"

namespace mpotr::crypto::detail {

// SHA-256, fetched once (see hash.cpp); never null after a successful fetch, falls back to
// EVP_sha256() otherwise.
const EVP_MD* sha256_md() noexcept;

// libsodium initialised (once, thread-safe); aborts if it cannot be, as there is no CSPRNG then.
void ensure_sodium() noexcept;

// An ErrorCode::Crypto error; empties OpenSSL's error queue so no stale entry is blamed later.
Error crypto_error(const char* what);

}  // namespace mpotr::crypto::detail
