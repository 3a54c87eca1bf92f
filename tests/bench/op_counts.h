// SPDX-License-Identifier: MIT
// Counts of the OpenSSL calls the mpotr libraries make, collected through linker wrapping
// (ld --wrap, see CMakeLists.txt). Single-threaded bench: plain counters.
#pragma once

#include <cstdint>

namespace mpotr::bench {

struct OpCounts {
  // public-key operations
  std::uint64_t ecdh = 0;            // EVP_PKEY_derive
  std::uint64_t verify = 0;          // EVP_PKEY_verify
  std::uint64_t sign = 0;            // signatures: EVP_PKEY_sign (production) + reproducible ones
  std::uint64_t sign_reproducible = 0;  // BN_mod_inverse: the k⁻¹ of the deterministic (vector-mode)
                                        // signer, one per signature it makes
  std::uint64_t decode = 0;          // EC_POINT_oct2point (PublicKey::from_point)
  std::uint64_t fixed_base_mul = 0;  // EC_POINT_mul(n, nullptr, nullptr): keygen d·G and reproducible k·G
  std::uint64_t other_mul = 0;       // EC_POINT_mul with a variable base
  // symmetric work
  std::uint64_t sha_oneshot = 0;     // EVP_Digest calls (crypto::sha256)
  std::uint64_t sha_init = 0;        // EVP_DigestInit_ex calls (Sha256, HMAC, HKDF)
  std::uint64_t sha_bytes = 0;       // bytes hashed through EVP_Digest + EVP_DigestUpdate
  std::uint64_t aes_init = 0;        // EVP_EncryptInit_ex calls
  std::uint64_t aes_bytes = 0;       // bytes through EVP_EncryptUpdate
  // per-call object churn
  std::uint64_t md_ctx_new = 0;      // EVP_MD_CTX_new
  std::uint64_t cipher_ctx_new = 0;  // EVP_CIPHER_CTX_new
  std::uint64_t bn_ctx_secure_new = 0;
  std::uint64_t pkey_new = 0;        // EVP_PKEY_fromdata + EVP_PKEY_dup: EVP keys built (key imports)
  std::uint64_t pkey_ctx_new = 0;    // EVP_PKEY_CTX_new_from_pkey: operation contexts not served from a cache

  // OpenSSL's production signatures do their k·G inside libcrypto, unseen; the reproducible
  // signer's k·G is one of ours. keygens = fixed-base multiplications that were not one of those.
  std::uint64_t keygen() const { return fixed_base_mul >= sign_reproducible ? fixed_base_mul - sign_reproducible : 0; }
};

OpCounts operator-(const OpCounts& a, const OpCounts& b);
OpCounts operator+(const OpCounts& a, const OpCounts& b);

// False when the bench was linked without the wrappers (non-ELF platforms): counts stay 0.
bool op_counts_available() noexcept;
OpCounts op_counts() noexcept;

}  // namespace mpotr::bench
