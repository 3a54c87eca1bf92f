// SPDX-License-Identifier: MIT
// SHA-256, HMAC-SHA-256 (RFC 2104) and HKDF-SHA-256 (RFC 5869) on OpenSSL's EVP digest API.
//
// These functions have no error channel (the contract says they cannot fail): the only way
// OpenSSL fails a SHA-256 computation is running out of memory, so a failure is reported as
// std::bad_alloc.
#include <openssl/evp.h>

#include <algorithm>
#include <memory>
#include <new>

#include "mpotr/crypto/crypto.h"
#include "mpotr/crypto/internal.h"
#include "mpotr/crypto/ossl_ptr.h"

namespace mpotr::crypto {

namespace {

using namespace ossl;  // NOLINT(google-build-using-namespace): the RAII aliases
using detail::sha256_md;

constexpr std::size_t kBlockLen = 64;  // SHA-256 block size, the HMAC key width

void check(int rc) {
  if (rc != 1) {
    throw std::bad_alloc();
  }
}

MdCtxPtr new_md_ctx() {
  MdCtxPtr ctx(::EVP_MD_CTX_new());
  if (!ctx) {
    throw std::bad_alloc();
  }
  return ctx;
}

void digest_update(EVP_MD_CTX* ctx, ByteView data) {
  if (!data.empty()) {
    check(::EVP_DigestUpdate(ctx, data.data(), data.size()));
  }
}

// HMAC-SHA-256 as RFC 2104 defines it, over one reusable digest context:
// H((K0 ⊕ opad) ‖ H((K0 ⊕ ipad) ‖ data)). Hand-rolled because OpenSSL 3's HMAC() fetches a MAC
// implementation on every call, which costs several times the hashing itself for short inputs.
class Hmac {
 public:
  explicit Hmac(ByteView key) : m_ctx(new_md_ctx()) {
    if (key.size() > kBlockLen) {
      // Keys longer than a block are hashed first (RFC 2104 §2).
      Hash32 hk = sha256(key);
      std::copy(hk.begin(), hk.end(), m_k0.begin());
      secure_zero(hk.data(), hk.size());
    } else {
      std::copy(key.begin(), key.end(), m_k0.begin());
    }
    start_inner();
  }
  ~Hmac() { secure_zero(m_k0.data(), m_k0.size()); }
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;

  void update(ByteView data) { digest_update(m_ctx.get(), data); }

  // Writes the MAC and re-keys for another message with the same key.
  void finish(Hash32& out) {
    unsigned int len = 0;
    check(::EVP_DigestFinal_ex(m_ctx.get(), out.data(), &len));
    std::array<std::uint8_t, kBlockLen> pad{};
    for (std::size_t i = 0; i < kBlockLen; ++i) {
      pad[i] = static_cast<std::uint8_t>(m_k0[i] ^ 0x5c);
    }
    check(::EVP_DigestInit_ex(m_ctx.get(), sha256_md(), nullptr));
    digest_update(m_ctx.get(), ByteView(pad));
    digest_update(m_ctx.get(), ByteView(out));
    check(::EVP_DigestFinal_ex(m_ctx.get(), out.data(), &len));
    secure_zero(pad.data(), pad.size());
    start_inner();
  }

 private:
  void start_inner() {
    std::array<std::uint8_t, kBlockLen> pad{};
    for (std::size_t i = 0; i < kBlockLen; ++i) {
      pad[i] = static_cast<std::uint8_t>(m_k0[i] ^ 0x36);
    }
    check(::EVP_DigestInit_ex(m_ctx.get(), sha256_md(), nullptr));
    digest_update(m_ctx.get(), ByteView(pad));
    secure_zero(pad.data(), pad.size());
  }

  MdCtxPtr m_ctx;
  std::array<std::uint8_t, kBlockLen> m_k0{};
};

}  // namespace

Hash32 sha256(ByteView data) {
  Hash32 out{};
  unsigned int len = 0;
  // A non-null pointer even for empty input: EVP treats a null pointer with length 0 as fine
  // today, but nothing promises it.
  static const std::uint8_t s_empty = 0;
  const std::uint8_t* p = data.empty() ? &s_empty : data.data();
  check(::EVP_Digest(p, data.size(), out.data(), &len, sha256_md(), nullptr));
  return out;
}

struct Sha256::State {
  MdCtxPtr ctx;
};

Sha256::Sha256() : m_state(std::make_unique<State>()) {
  m_state->ctx = new_md_ctx();
  check(::EVP_DigestInit_ex(m_state->ctx.get(), sha256_md(), nullptr));
}

Sha256::~Sha256() = default;

Sha256& Sha256::update(ByteView data) {
  digest_update(m_state->ctx.get(), data);
  return *this;
}

Sha256& Sha256::update_u8(std::uint8_t v) {
  return update(ByteView(&v, 1));
}

Sha256& Sha256::update_u32(std::uint32_t v) {
  const std::array<std::uint8_t, 4> be{static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                                       static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  return update(ByteView(be));
}

Hash32 Sha256::finish() {
  Hash32 out{};
  unsigned int len = 0;
  check(::EVP_DigestFinal_ex(m_state->ctx.get(), out.data(), &len));
  // Leave the object in a defined state (an empty hash) rather than a finalised context.
  check(::EVP_DigestInit_ex(m_state->ctx.get(), sha256_md(), nullptr));
  return out;
}

Hash32 hmac_sha256(ByteView key, ByteView data) {
  Hmac mac(key);
  mac.update(data);
  Hash32 out{};
  mac.finish(out);
  return out;
}

SecretBytes hkdf_extract(ByteView salt, ByteView ikm) {
  // RFC 5869 §2.2: an absent salt is HashLen zero bytes.
  static constexpr std::array<std::uint8_t, 32> kZeroSalt{};
  Hash32 prk = hmac_sha256(salt.empty() ? ByteView(kZeroSalt) : salt, ikm);
  SecretBytes out{ByteView(prk)};
  secure_zero(prk.data(), prk.size());
  return out;
}

Result<SecretBytes> hkdf_expand(ByteView prk, ByteView info, std::size_t length) {
  constexpr std::size_t kHashLen = 32;
  if (length > 255 * kHashLen) {
    return make_error(ErrorCode::InvalidArgument, "hkdf: output longer than 255 blocks");
  }
  SecretBytes out(length);
  Hmac mac(prk);
  Hash32 t{};
  std::size_t done = 0;
  // T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i), T(0) empty.
  for (std::uint8_t i = 1; done < length; ++i) {
    if (i > 1) {
      mac.update(ByteView(t));
    }
    mac.update(info);
    mac.update(ByteView(&i, 1));
    mac.finish(t);
    const std::size_t n = std::min(kHashLen, length - done);
    std::copy_n(t.begin(), n, out.data() + done);
    done += n;
  }
  secure_zero(t.data(), t.size());
  return out;
}

Result<SecretBytes> hkdf_sha256(ByteView salt, ByteView ikm, ByteView info, std::size_t length) {
  if (length > 255 * 32) {
    return make_error(ErrorCode::InvalidArgument, "hkdf: output longer than 255 blocks");
  }
  const SecretBytes prk = hkdf_extract(salt, ikm);
  return hkdf_expand(prk.view(), info, length);
}

}  // namespace mpotr::crypto
