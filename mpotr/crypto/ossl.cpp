// SPDX-License-Identifier: MIT
#include <openssl/err.h>
#include <openssl/evp.h>

#include "mpotr/crypto/internal.h"
#include "mpotr/crypto/ossl_ptr.h"

namespace mpotr::crypto::detail {

// Fetched once: an explicit fetch avoids the implicit provider lookup EVP_sha256() costs on
// every EVP_DigestInit_ex in OpenSSL 3.
const EVP_MD* sha256_md() noexcept {
  // Never destroyed (see curve() in ec.cpp).
  static const ossl::MdPtr& s_md = *new ossl::MdPtr(::EVP_MD_fetch(nullptr, "SHA2-256", nullptr));
  return s_md ? s_md.get() : ::EVP_sha256();
}

Error crypto_error(const char* what) {
  ::ERR_clear_error();
  return make_error(ErrorCode::Crypto, what);
}

}  // namespace mpotr::crypto::detail
