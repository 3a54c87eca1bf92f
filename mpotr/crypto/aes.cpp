// SPDX-License-Identifier: MIT
// AES-128-CTR (NIST SP 800-38A §6.5) on OpenSSL's EVP cipher API. OpenSSL increments the whole
// 16-byte counter block as one big-endian integer, which is the contract in crypto.h.
#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "mpotr/crypto/crypto.h"
#include "mpotr/crypto/internal.h"
#include "mpotr/crypto/ossl_ptr.h"

namespace mpotr::crypto {

namespace {

using namespace ossl;  // NOLINT(google-build-using-namespace): the RAII aliases
using detail::crypto_error;

// Fetched once rather than looked up implicitly on every init (see sha256_md in hash.cpp).
const EVP_CIPHER* aes128_ctr_cipher() noexcept {
  // Never destroyed (see curve() in ec.cpp).
  static const CipherPtr& s_cipher = *new CipherPtr(::EVP_CIPHER_fetch(nullptr, "AES-128-CTR", nullptr));
  return s_cipher ? s_cipher.get() : ::EVP_aes_128_ctr();
}

}  // namespace

Result<void> aes128_ctr(ByteView key, const AesIv& iv, ByteView in, std::uint8_t* out) {
  if (key.size() != kAesKeyLen) {
    return make_error(ErrorCode::InvalidArgument, "aes128_ctr: key must be 16 bytes");
  }
  if (in.empty()) {
    return {};
  }
  if (out == nullptr) {
    return make_error(ErrorCode::InvalidArgument, "aes128_ctr: null output");
  }
  CipherCtxPtr ctx(::EVP_CIPHER_CTX_new());
  if (!ctx) {
    return crypto_error("aes128_ctr: EVP_CIPHER_CTX_new failed");
  }
  if (::EVP_EncryptInit_ex(ctx.get(), aes128_ctr_cipher(), nullptr, key.data(), iv.data()) != 1) {
    return crypto_error("aes128_ctr: init failed");
  }
  // EVP lengths are int: feed larger inputs in chunks (a multiple of the block size, so the
  // keystream position stays aligned; CTR would cope either way).
  constexpr std::size_t kChunk = (static_cast<std::size_t>(INT_MAX) / kAesBlockLen) * kAesBlockLen;
  std::size_t done = 0;
  while (done < in.size()) {
    const std::size_t n = std::min(kChunk, in.size() - done);
    int written = 0;
    if (::EVP_EncryptUpdate(ctx.get(), out + done, &written, in.data() + done, static_cast<int>(n)) != 1 ||
        written != static_cast<int>(n)) {
      return crypto_error("aes128_ctr: update failed");
    }
    done += n;
  }
  int tail = 0;
  if (::EVP_EncryptFinal_ex(ctx.get(), out + done, &tail) != 1 || tail != 0) {
    return crypto_error("aes128_ctr: final failed");
  }
  return {};
}

}  // namespace mpotr::crypto
