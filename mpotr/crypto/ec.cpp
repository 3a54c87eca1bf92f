// SPDX-License-Identifier: MIT
// P-256 keys, ECDSA and ECDH on OpenSSL 3's EVP_PKEY interface. This file is compiled with
// OPENSSL_NO_DEPRECATED (root CMakeLists.txt): a deprecated call fails the build.
//
// Production signatures are EVP_PKEY_sign with OpenSSL's own nonce. The hedged deterministic
// signer of spec §3.5 exists only for reproducible test/vector streams (Rng::reproducible());
// it is written on the non-deprecated EC_POINT / BN_MONT_CTX arithmetic.
//
// Costs (OpenSSL 3.0, measured for this change; see tests/bench): signing, verification and
// ECDH through EVP cost what the low-level EC_KEY calls cost plus ~1–2 µs for a fresh
// EVP_PKEY_CTX, which the per-key context caches below save on every call after a key's first.
// Importing a key is where EVP is dearer: EVP_PKEY_fromdata builds a new EC_GROUP by name
// (~9 µs of its ~16 µs), so public keys are copied from a parameters-only template key
// (EVP_PKEY_dup, ~0.7 µs for the group) and given their point (EVP_PKEY_set1_encoded_public_key);
// only private keys, which the EVP API cannot set any other way, pay for EVP_PKEY_fromdata.
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "mpotr/crypto/crypto.h"
#include "mpotr/crypto/internal.h"
#include "mpotr/crypto/ossl_ptr.h"

namespace mpotr::crypto {

using namespace ossl;  // NOLINT(google-build-using-namespace): this file's RAII aliases
using detail::crypto_error;

namespace detail {

// HMAC-SHA-256 under one fixed key of at most 64 bytes, with the two padded key blocks hashed
// once up front into saved digest states (the precomputation of RFC 2104 §4): a MAC of a short
// message then copies a state (EVP_MD_CTX_copy_ex) instead of hashing the key blocks again, and
// gives the same output as hmac_sha256(). The saved states are as secret as the key; OpenSSL's
// SHA-256 implementation wipes a digest state when its context is freed or overwritten.
class KeyedHmac {
 public:
  bool init(ByteView key) noexcept {
    constexpr std::size_t kBlockLen = 64;
    if (key.size() > kBlockLen) {
      return false;
    }
    std::array<std::uint8_t, kBlockLen> ipad{};
    std::array<std::uint8_t, kBlockLen> opad{};
    for (std::size_t i = 0; i < kBlockLen; ++i) {
      const std::uint8_t k = i < key.size() ? key[i] : 0;
      ipad[i] = static_cast<std::uint8_t>(k ^ 0x36);
      opad[i] = static_cast<std::uint8_t>(k ^ 0x5c);
    }
    m_inner.reset(::EVP_MD_CTX_new());
    m_outer.reset(::EVP_MD_CTX_new());
    const bool ok = m_inner && m_outer && ::EVP_DigestInit_ex(m_inner.get(), sha256_md(), nullptr) == 1 &&
                    ::EVP_DigestUpdate(m_inner.get(), ipad.data(), ipad.size()) == 1 &&
                    ::EVP_DigestInit_ex(m_outer.get(), sha256_md(), nullptr) == 1 &&
                    ::EVP_DigestUpdate(m_outer.get(), opad.data(), opad.size()) == 1;
    secure_zero(ipad.data(), ipad.size());
    secure_zero(opad.data(), opad.size());
    if (!ok) {
      m_inner.reset();
      m_outer.reset();
    }
    return ok;
  }

  bool ready() const noexcept { return m_inner && m_outer; }

  // HMAC(key, data) into out, computed in the caller's scratch context (one per thread: the saved
  // states are only read, so one KeyedHmac serves several threads at once).
  bool mac(ByteView data, EVP_MD_CTX* scratch, Hash32& out) const noexcept {
    unsigned int len = 0;
    return ready() && ::EVP_MD_CTX_copy_ex(scratch, m_inner.get()) == 1 &&
           ::EVP_DigestUpdate(scratch, data.data(), data.size()) == 1 &&
           ::EVP_DigestFinal_ex(scratch, out.data(), &len) == 1 && len == out.size() &&
           ::EVP_MD_CTX_copy_ex(scratch, m_outer.get()) == 1 &&
           ::EVP_DigestUpdate(scratch, out.data(), out.size()) == 1 &&
           ::EVP_DigestFinal_ex(scratch, out.data(), &len) == 1 && len == out.size();
  }

 private:
  MdCtxPtr m_inner;
  MdCtxPtr m_outer;
};

enum class PkeyOp : std::uint8_t { Sign, Verify, Derive };

// One EVP_PKEY_CTX kept with a key, initialised for one operation and lent to one caller at a
// time. A fresh context costs ~1–2 µs (allocation plus the algorithm fetch of its *_init), which
// is 3–8 % of the operation. Key objects are shared between threads: a caller that finds the
// cached context lent out makes a context of its own for that one call instead of waiting.
class CtxCache {
 public:
  CtxCache() = default;
  CtxCache(const CtxCache&) = delete;
  CtxCache& operator=(const CtxCache&) = delete;

 private:
  friend class CtxLease;
  std::mutex m_mutex;
  PkeyCtxPtr m_ctx;  // guarded by m_mutex
};

PkeyCtxPtr new_pkey_ctx(EVP_PKEY* pkey, PkeyOp op) noexcept {
  PkeyCtxPtr ctx(::EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx) {
    return ctx;
  }
  int rc = 0;
  switch (op) {
    case PkeyOp::Sign:
      rc = ::EVP_PKEY_sign_init(ctx.get());
      break;
    case PkeyOp::Verify:
      rc = ::EVP_PKEY_verify_init(ctx.get());
      break;
    case PkeyOp::Derive:
      rc = ::EVP_PKEY_derive_init(ctx.get());
      break;
  }
  if (rc != 1) {
    ctx.reset();
  }
  return ctx;
}

class CtxLease {
 public:
  CtxLease(CtxCache& cache, EVP_PKEY* pkey, PkeyOp op) noexcept {
    if (pkey == nullptr) {
      return;
    }
    if (cache.m_mutex.try_lock()) {
      m_cache = &cache;
      if (!cache.m_ctx) {
        cache.m_ctx = new_pkey_ctx(pkey, op);
      }
      m_ctx = cache.m_ctx.get();
    } else {
      m_own = new_pkey_ctx(pkey, op);
      m_ctx = m_own.get();
    }
  }
  ~CtxLease() {
    if (m_cache != nullptr) {
      if (m_failed) {
        m_cache->m_ctx.reset();  // the next caller starts from a fresh context
      }
      m_cache->m_mutex.unlock();
    }
  }
  CtxLease(const CtxLease&) = delete;
  CtxLease& operator=(const CtxLease&) = delete;

  EVP_PKEY_CTX* get() const noexcept { return m_ctx; }
  // The operation failed: do not keep this context for later calls.
  void failed() noexcept { m_failed = true; }

 private:
  CtxCache* m_cache = nullptr;
  PkeyCtxPtr m_own;
  EVP_PKEY_CTX* m_ctx = nullptr;
  bool m_failed = false;
};

}  // namespace detail

// Immutable once built (the context caches are an implementation detail with their own lock);
// shared by every copy of a key object. Public keys hold an EVP_PKEY with only the point;
// private keys hold the key pair, d as a constant-time BIGNUM, its 32-byte encoding and the HMAC
// keyed with it (the last two for the reproducible signer).
struct KeyHandle {
  PkeyPtr pkey;
  SecretBytes scalar;              // empty for public keys
  SecretBnPtr d;                   // null for public keys
  detail::KeyedHmac nonce_hmac;    // ready() for private keys only
  mutable detail::CtxCache sign_ctx;    // private keys
  mutable detail::CtxCache derive_ctx;  // private keys
  mutable detail::CtxCache verify_ctx;  // public keys
};

namespace {

using detail::CtxLease;
using detail::PkeyOp;

constexpr int kMaxScalarTries = 64;  // P(rejection) ≈ 2^-32 per draw: 64 failures means a broken rng
constexpr std::uint32_t kMaxNonceTries = 64;
// A DER ECDSA-Sig-Value for P-256: SEQUENCE of two INTEGERs of at most 33 bytes each.
constexpr std::size_t kMaxDerSignatureLen = 72;

// Arithmetic modulo P-256's group order n.
struct PrimeModulus {
  const BIGNUM* value = nullptr;  // owned by the group
  MontCtxPtr mont;
  std::array<std::uint8_t, kScalarLen> be{};

  bool init(const BIGNUM* m, BN_CTX* ctx) noexcept {
    value = m;
    mont.reset(::BN_MONT_CTX_new());
    if (value == nullptr || !mont || ::BN_MONT_CTX_set(mont.get(), value, ctx) != 1 ||
        ::BN_bn2binpad(value, be.data(), static_cast<int>(be.size())) != static_cast<int>(kScalarLen) ||
        ::BN_is_odd(value) != 1) {
      return false;
    }
    return true;
  }
};

// The curve's name as OSSL_PARAM wants it (a non-const char*, only read).
struct GroupName {
  std::array<char, sizeof(SN_X9_62_prime256v1)> text{};
  GroupName() { std::copy_n(SN_X9_62_prime256v1, text.size(), text.begin()); }
  OSSL_PARAM param() { return ::OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, text.data(), 0); }
};

// Process-wide P-256 constants, built once (thread-safe static initialisation) and only read
// afterwards. OpenSSL's read-only use of a group, of a modulus, of a Montgomery context and of
// a key (EVP_PKEY_dup reads its source) is safe from several threads.
struct Curve {
  EcGroupPtr group;
  PrimeModulus order;  // n
  PkeyPtr params;      // domain parameters only: every public key starts as a copy of it
  bool ok = false;
};

PkeyPtr make_params_key() noexcept {
  PkeyCtxPtr ctx(::EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  GroupName name;
  std::array<OSSL_PARAM, 2> params{name.param(), ::OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  if (!ctx || ::EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      ::EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEY_PARAMETERS, params.data()) != 1) {
    return nullptr;
  }
  return PkeyPtr(raw);
}

Curve make_curve() noexcept {
  Curve c;
  c.group.reset(::EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  BnCtxPtr ctx(::BN_CTX_new());
  c.params = make_params_key();
  if (!c.group || !ctx || !c.params || !c.order.init(::EC_GROUP_get0_order(c.group.get()), ctx.get())) {
    ::ERR_clear_error();
    return c;
  }
  c.ok = true;
  return c;
}

const Curve* curve() noexcept {
  // Never destroyed: a host process may still run our code from its own exit handlers (the
  // Profanity plugin's disconnect hook runs from Profanity's atexit handler), after static
  // destructors registered later would have freed it.
  static const Curve& s_curve = *new Curve(make_curve());
  return s_curve.ok ? &s_curve : nullptr;
}

// 0 < v < m for a 32-byte big-endian v, in constant time (v may be a secret scalar or nonce):
// the borrow out of v − m is 1 exactly when v < m.
bool in_range(const std::uint8_t* v, const PrimeModulus& m) noexcept {
  unsigned borrow = 0;
  unsigned any = 0;
  for (std::size_t i = kScalarLen; i-- > 0;) {
    const unsigned diff = static_cast<unsigned>(v[i]) - m.be[i] - borrow;
    borrow = (diff >> 8) & 1U;
    any |= v[i];
  }
  return (borrow & static_cast<unsigned>(any != 0)) != 0;
}

bool scalar_in_range(const std::uint8_t* v, const Curve& c) noexcept {
  return in_range(v, c.order);
}

// A BN_CTX_start/BN_CTX_end bracket. Temporaries taken from a secure BN_CTX are reused by later
// frames of the same context and cleared (BN_clear_free) when the context is freed; taking them
// from the sign call's context saves a malloc/free pair per temporary.
class CtxFrame {
 public:
  explicit CtxFrame(BN_CTX* ctx) noexcept : m_ctx(ctx) { ::BN_CTX_start(m_ctx); }
  ~CtxFrame() { ::BN_CTX_end(m_ctx); }
  CtxFrame(const CtxFrame&) = delete;
  CtxFrame& operator=(const CtxFrame&) = delete;
  // A zeroed temporary (BN_CTX_get also drops BN_FLG_CONSTTIME); nullptr when allocation failed,
  // and then so are all later ones of the frame.
  BIGNUM* get(bool consttime) noexcept {
    BIGNUM* bn = ::BN_CTX_get(m_ctx);
    if (bn != nullptr && consttime) {
      ::BN_set_flags(bn, BN_FLG_CONSTTIME);
    }
    return bn;
  }

 private:
  BN_CTX* m_ctx;
};

// out = a⁻¹ mod m for a secret a in [1, m−1], through a blinded inversion:
//   t = a·b, tinv = t⁻¹ (BN_mod_inverse), out = tinv·b
// b (32 bytes big-endian) is uniform in [1, m−1] and unknown to an observer, so t is uniform and
// independent of a, and the variable running time of BN_mod_inverse says nothing about a. The
// products are Montgomery multiplications (fixed time for these sizes).
bool blinded_inverse(const PrimeModulus& m, const BIGNUM* a, const std::uint8_t* b_bytes, BIGNUM* out, BN_CTX* ctx) {
  CtxFrame frame(ctx);
  BIGNUM* b = frame.get(true);
  BIGNUM* t = frame.get(true);
  BIGNUM* tinv = frame.get(true);
  if (tinv == nullptr) {
    return false;
  }
  BN_MONT_CTX* mont = m.mont.get();
  // b ← b·R (Montgomery form), so that mont_mul(x, b) = x·b.
  return ::BN_bin2bn(b_bytes, static_cast<int>(kScalarLen), b) != nullptr &&
         ::BN_to_montgomery(b, b, mont, ctx) == 1 && ::BN_mod_mul_montgomery(t, a, b, mont, ctx) == 1 &&
         ::BN_mod_inverse(tinv, t, m.value, ctx) != nullptr && ::BN_mod_mul_montgomery(out, tinv, b, mont, ctx) == 1;
}

// s = kinv·(e + r·d) mod n, with every operand already in [0, n−1]. Montgomery products and
// BN_mod_add_quick (a masked conditional subtraction) keep the secret operands' timing fixed.
bool ecdsa_s(const PrimeModulus& n, const BIGNUM* kinv, const BIGNUM* r, const BIGNUM* d, const BIGNUM* e, BIGNUM* s,
             BN_CTX* ctx) {
  CtxFrame frame(ctx);
  BIGNUM* t = frame.get(true);
  if (t == nullptr) {
    return false;
  }
  BN_MONT_CTX* mont = n.mont.get();
  return ::BN_to_montgomery(t, r, mont, ctx) == 1 &&         // r·R
         ::BN_mod_mul_montgomery(t, t, d, mont, ctx) == 1 &&  // r·d
         ::BN_mod_add_quick(t, t, e, n.value) == 1 &&         // e + r·d
         ::BN_to_montgomery(t, t, mont, ctx) == 1 &&          // (e + r·d)·R
         ::BN_mod_mul_montgomery(s, t, kinv, mont, ctx) == 1;  // kinv·(e + r·d)
}

// A public-only EVP_PKEY for an already validated 65-byte point: a copy of the parameters-only
// key (which shares no state with it) given the point.
Result<PkeyPtr> public_pkey(const Curve& c, const Point& point) {
  PkeyPtr pkey(::EVP_PKEY_dup(c.params.get()));
  if (!pkey || ::EVP_PKEY_set1_encoded_public_key(pkey.get(), point.data(), point.size()) != 1) {
    return crypto_error("public key: EVP_PKEY setup failed");
  }
  return pkey;
}

Result<std::shared_ptr<const KeyHandle>> public_handle(const Curve& c, const Point& point) {
  MPOTR_TRY(PkeyPtr pkey, public_pkey(c, point));
  auto handle = std::make_shared<KeyHandle>();
  handle->pkey = std::move(pkey);
  return std::shared_ptr<const KeyHandle>(std::move(handle));
}

// The key pair as an EVP_PKEY: d (32 bytes big-endian, in range) and its public point d·G.
Result<PkeyPtr> keypair_pkey(ByteView scalar, const Point& point) {
  // OSSL_PARAM integers are in native byte order.
  std::array<std::uint8_t, kScalarLen> native{};
  if constexpr (std::endian::native == std::endian::little) {
    std::reverse_copy(scalar.begin(), scalar.end(), native.begin());
  } else {
    std::copy(scalar.begin(), scalar.end(), native.begin());
  }
  GroupName name;
  Point pub = point;  // OSSL_PARAM wants a non-const buffer; it is only read
  std::array<OSSL_PARAM, 4> params{
      name.param(), ::OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native.data(), native.size()),
      ::OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size()),
      ::OSSL_PARAM_construct_end()};
  PkeyCtxPtr ctx(::EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  const bool ok = ctx && ::EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
                  ::EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.data()) == 1;
  secure_zero(native.data(), native.size());
  if (!ok) {
    return crypto_error("private key: EVP_PKEY_fromdata failed");
  }
  return PkeyPtr(raw);
}

// Production ECDSA: OpenSSL's EVP_PKEY_sign over the 32-byte digest. OpenSSL draws the nonce
// itself from its DRBG, hashed with d and the digest (BN_generate_dsa_nonce), and returns a DER
// ECDSA-Sig-Value, re-encoded here as r ‖ s.
Result<Signature> sign_evp(const KeyHandle& key, const Hash32& digest) {
  CtxLease lease(key.sign_ctx, key.pkey.get(), PkeyOp::Sign);
  if (lease.get() == nullptr) {
    return crypto_error("sign: EVP_PKEY_CTX setup failed");
  }
  std::array<std::uint8_t, kMaxDerSignatureLen> der{};
  std::size_t der_len = der.size();
  if (::EVP_PKEY_sign(lease.get(), der.data(), &der_len, digest.data(), digest.size()) != 1) {
    lease.failed();
    return crypto_error("sign: EVP_PKEY_sign failed");
  }
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(::d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig || p != der.data() + der_len) {
    return crypto_error("sign: OpenSSL returned a malformed signature");
  }
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ::ECDSA_SIG_get0(sig.get(), &r, &s);
  Signature out{};
  if (r == nullptr || s == nullptr ||
      ::BN_bn2binpad(r, out.data(), static_cast<int>(kScalarLen)) != static_cast<int>(kScalarLen) ||
      ::BN_bn2binpad(s, out.data() + kScalarLen, static_cast<int>(kScalarLen)) != static_cast<int>(kScalarLen)) {
    return crypto_error("sign: signature encoding failed");
  }
  return out;
}

void put_be32(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

// The reproducible (test/vector) signer of spec §3.5, for an rng whose reproducible() is true:
//   rnd32 = one 32-byte draw from rng
//   k = HMAC-SHA-256(d, rnd32 ‖ digest ‖ be32(ctr)), ctr = 0, 1, …: the first k in [1, n−1]
//       with r = x(k·G) mod n ≠ 0 and s = k⁻¹(e + r·d) mod n ≠ 0, e = digest mod n.
// Its signatures are a function of (d, digest, rnd32) alone and byte-identical to those of the
// previous EC_KEY implementation (ECDSA_do_sign_ex with this k), which the committed vectors pin.
//
// The blinding value of the k⁻¹ inversion comes from
//   HMAC-SHA-256(d, "mpotr blind" ‖ rnd32 ‖ digest ‖ be32(ctr) ‖ be32(j)),  j = 0, 1, 2, …
// taking the first output in [1, n−1]. It costs no rng output and never affects the signature,
// only how it is computed. The label and the length (83 bytes against 68) keep these inputs
// apart from the nonce's.
Result<Signature> sign_reproducible(const KeyHandle& key, const Curve& c, const Hash32& digest, Rng& rng) {
  BnCtxPtr ctx(::BN_CTX_secure_new());
  MdCtxPtr scratch(::EVP_MD_CTX_new());
  SecretBnPtr k(::BN_secure_new());
  SecretBnPtr kinv(::BN_secure_new());
  SecretBnPtr s(::BN_secure_new());
  BnPtr x(::BN_new());
  BnPtr r(::BN_new());
  BnPtr e(::BN_new());
  SecretPointPtr big_r(::EC_POINT_new(c.group.get()));
  if (!ctx || !scratch || !k || !kinv || !s || !x || !r || !e || !big_r) {
    return crypto_error("sign: allocation failed");
  }
  // e = digest mod n (the digest is as long as n, so no truncation applies).
  if (::BN_bin2bn(digest.data(), static_cast<int>(digest.size()), e.get()) == nullptr ||
      ::BN_nnmod(e.get(), e.get(), c.order.value, ctx.get()) != 1) {
    return crypto_error("sign: digest reduction failed");
  }
  const detail::KeyedHmac& hmac = key.nonce_hmac;  // HMAC-SHA-256 keyed with d

  static constexpr std::string_view kBlindLabel = "mpotr blind";
  constexpr std::size_t kNonceInputLen = 32 + 32 + 4;
  constexpr std::size_t kBlindInputLen = kBlindLabel.size() + kNonceInputLen + 4;
  std::array<std::uint8_t, kNonceInputLen> input{};
  std::array<std::uint8_t, kBlindInputLen> blind_input{};
  rng.fill(input.data(), 32);
  std::copy(digest.begin(), digest.end(), input.begin() + 32);
  std::copy(kBlindLabel.begin(), kBlindLabel.end(), blind_input.begin());
  Hash32 k_bytes{};
  Hash32 blind_bytes{};
  struct Wipe {
    std::array<std::uint8_t, kNonceInputLen>& in;
    std::array<std::uint8_t, kBlindInputLen>& blind_in;
    Hash32& kb;
    Hash32& bb;
    ~Wipe() {
      secure_zero(in.data(), in.size());
      secure_zero(blind_in.data(), blind_in.size());
      secure_zero(kb.data(), kb.size());
      secure_zero(bb.data(), bb.size());
    }
  } wipe{input, blind_input, k_bytes, blind_bytes};

  for (std::uint32_t ctr = 0; ctr < kMaxNonceTries; ++ctr) {
    put_be32(input.data() + 64, ctr);
    if (!hmac.mac(ByteView(input), scratch.get(), k_bytes)) {
      return crypto_error("sign: nonce HMAC failed");
    }
    if (!scalar_in_range(k_bytes.data(), c)) {
      continue;
    }
    if (::BN_bin2bn(k_bytes.data(), static_cast<int>(k_bytes.size()), k.get()) == nullptr) {
      return crypto_error("sign: BN_bin2bn failed");
    }
    ::BN_set_flags(k.get(), BN_FLG_CONSTTIME);
    // r = x(k·G) mod n
    if (::EC_POINT_mul(c.group.get(), big_r.get(), k.get(), nullptr, nullptr, ctx.get()) != 1 ||
        ::EC_POINT_get_affine_coordinates(c.group.get(), big_r.get(), x.get(), nullptr, ctx.get()) != 1 ||
        ::BN_nnmod(r.get(), x.get(), c.order.value, ctx.get()) != 1) {
      return crypto_error("sign: k·G failed");
    }
    if (::BN_is_zero(r.get()) == 1) {
      continue;
    }
    // The first blinding value in [1, n−1] for this candidate.
    std::copy(input.begin(), input.end(), blind_input.begin() + kBlindLabel.size());
    bool have_blind = false;
    for (std::uint32_t j = 0; j < kMaxNonceTries && !have_blind; ++j) {
      put_be32(blind_input.data() + kBlindLabel.size() + kNonceInputLen, j);
      if (!hmac.mac(ByteView(blind_input), scratch.get(), blind_bytes)) {
        return crypto_error("sign: blinding HMAC failed");
      }
      have_blind = in_range(blind_bytes.data(), c.order);
    }
    if (!have_blind || !blinded_inverse(c.order, k.get(), blind_bytes.data(), kinv.get(), ctx.get())) {
      return crypto_error("sign: k inverse failed");
    }
    if (!ecdsa_s(c.order, kinv.get(), r.get(), key.d.get(), e.get(), s.get(), ctx.get())) {
      return crypto_error("sign: s computation failed");
    }
    if (::BN_is_zero(s.get()) == 1) {
      continue;
    }
    Signature out{};
    if (::BN_bn2binpad(r.get(), out.data(), static_cast<int>(kScalarLen)) != static_cast<int>(kScalarLen) ||
        ::BN_bn2binpad(s.get(), out.data() + kScalarLen, static_cast<int>(kScalarLen)) !=
            static_cast<int>(kScalarLen)) {
      return crypto_error("sign: signature encoding failed");
    }
    return out;
  }
  return make_error(ErrorCode::Crypto, "sign: no usable nonce");
}

}  // namespace

// --- PublicKey ---

Result<PublicKey> PublicKey::from_point(ByteView encoded) {
  // Only the uncompressed form exists on our wire: one canonical encoding per point.
  if (encoded.size() != kPointLen || encoded[0] != 0x04) {
    return make_error(ErrorCode::DecodeBadValue, "point: not a 65-byte uncompressed encoding");
  }
  const Curve* c = curve();
  if (c == nullptr) {
    return crypto_error("P-256 group unavailable");
  }
  PointPtr point(::EC_POINT_new(c->group.get()));
  if (!point) {
    return crypto_error("EC_POINT_new failed");
  }
  // oct2point rejects coordinates ≥ p and points off the curve. P-256 has cofactor 1, so an
  // on-curve point other than infinity is in the prime-order group. This check is ours, made
  // before OpenSSL sees the point as a key, so it holds whatever a key import would check.
  if (::EC_POINT_oct2point(c->group.get(), point.get(), encoded.data(), encoded.size(), nullptr) != 1) {
    ::ERR_clear_error();
    return make_error(ErrorCode::DecodeBadValue, "point: not on P-256");
  }
  if (::EC_POINT_is_at_infinity(c->group.get(), point.get()) == 1) {
    return make_error(ErrorCode::DecodeBadValue, "point: infinity");
  }
  PublicKey pk;
  std::copy(encoded.begin(), encoded.end(), pk.m_point.begin());
  MPOTR_TRY(pk.m_key, public_handle(*c, pk.m_point));
  return pk;
}

bool PublicKey::verify_digest(const Hash32& digest, ByteView signature) const noexcept {
  if (!m_key || !m_key->pkey || signature.size() != kSignatureLen) {
    return false;
  }
  const Curve* c = curve();
  if (c == nullptr) {
    return false;
  }
  // r and s must lie in [1, n−1]. OpenSSL checks this too; checking the bytes first rejects
  // junk without allocating and without leaving errors on OpenSSL's queue.
  const std::uint8_t* r_bytes = signature.data();
  const std::uint8_t* s_bytes = signature.data() + kScalarLen;
  if (!scalar_in_range(r_bytes, *c) || !scalar_in_range(s_bytes, *c)) {
    return false;
  }
  // EVP_PKEY_verify takes the DER form: r ‖ s → ECDSA_SIG → DER.
  BnPtr r(::BN_bin2bn(r_bytes, static_cast<int>(kScalarLen), nullptr));
  BnPtr s(::BN_bin2bn(s_bytes, static_cast<int>(kScalarLen), nullptr));
  EcdsaSigPtr sig(::ECDSA_SIG_new());
  if (!r || !s || !sig || ::ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    ::ERR_clear_error();
    return false;
  }
  // ECDSA_SIG_set0 took ownership.
  (void)r.release();
  (void)s.release();
  std::array<std::uint8_t, kMaxDerSignatureLen> der{};
  const int der_len = ::i2d_ECDSA_SIG(sig.get(), nullptr);
  unsigned char* p = der.data();
  if (der_len <= 0 || static_cast<std::size_t>(der_len) > der.size() || ::i2d_ECDSA_SIG(sig.get(), &p) != der_len) {
    ::ERR_clear_error();
    return false;
  }
  CtxLease lease(m_key->verify_ctx, m_key->pkey.get(), PkeyOp::Verify);
  if (lease.get() == nullptr) {
    ::ERR_clear_error();
    return false;
  }
  // 1: valid; 0: invalid signature (the context stays usable); < 0: an error.
  const int rc = ::EVP_PKEY_verify(lease.get(), der.data(), static_cast<std::size_t>(der_len), digest.data(),
                                   digest.size());
  if (rc != 1) {
    if (rc < 0) {
      lease.failed();
    }
    ::ERR_clear_error();
    return false;
  }
  return true;
}

// --- PrivateKey ---

Result<PrivateKey> PrivateKey::generate(Rng& rng) {
  const Curve* c = curve();
  if (c == nullptr) {
    return crypto_error("P-256 group unavailable");
  }
  // Rejection sampling keeps d uniform and makes a seeded rng give a reproducible key.
  for (int i = 0; i < kMaxScalarTries; ++i) {
    SecretBytes candidate = rng.secret(kScalarLen);
    if (scalar_in_range(candidate.data(), *c)) {
      return from_scalar(candidate.view());
    }
  }
  return make_error(ErrorCode::Crypto, "generate: rng produced no scalar in range");
}

Result<PrivateKey> PrivateKey::from_scalar(ByteView scalar) {
  if (scalar.size() != kScalarLen) {
    return make_error(ErrorCode::DecodeBadValue, "scalar: not 32 bytes");
  }
  const Curve* c = curve();
  if (c == nullptr) {
    return crypto_error("P-256 group unavailable");
  }
  if (!scalar_in_range(scalar.data(), *c)) {
    return make_error(ErrorCode::DecodeBadValue, "scalar: not in [1, n-1]");
  }
  // Secure BN_CTX: its temporaries are cleansed when freed, and they hold functions of d.
  BnCtxPtr ctx(::BN_CTX_secure_new());
  SecretBnPtr d(::BN_secure_new());
  PointPtr pub(::EC_POINT_new(c->group.get()));
  if (!ctx || !d || !pub) {
    return crypto_error("from_scalar: allocation failed");
  }
  ::BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  if (::BN_bin2bn(scalar.data(), static_cast<int>(kScalarLen), d.get()) == nullptr ||
      ::EC_POINT_mul(c->group.get(), pub.get(), d.get(), nullptr, nullptr, ctx.get()) != 1) {
    return crypto_error("from_scalar: d·G failed");
  }
  PrivateKey key;
  if (::EC_POINT_point2oct(c->group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, key.m_public.m_point.data(),
                           kPointLen, ctx.get()) != kPointLen) {
    return crypto_error("from_scalar: point encoding failed");
  }
  MPOTR_TRY(key.m_public.m_key, public_handle(*c, key.m_public.m_point));

  auto handle = std::make_shared<KeyHandle>();
  MPOTR_TRY(handle->pkey, keypair_pkey(scalar, key.m_public.m_point));
  handle->scalar = SecretBytes(scalar);
  handle->d = std::move(d);
  if (!handle->nonce_hmac.init(scalar)) {
    return crypto_error("from_scalar: HMAC key setup failed");
  }
  key.m_key = std::move(handle);
  return key;
}

SecretBytes PrivateKey::scalar() const {
  if (!m_key) {
    return {};
  }
  return m_key->scalar;
}

Result<Signature> PrivateKey::sign_digest(const Hash32& digest, Rng& rng) const {
  if (!m_key || !m_key->pkey || !m_key->d || !m_key->nonce_hmac.ready()) {
    return make_error(ErrorCode::InvalidState, "sign: empty private key");
  }
  const Curve* c = curve();
  if (c == nullptr) {
    return crypto_error("P-256 group unavailable");
  }
  // The one seam between the two signers: only an rng that declares its stream reproducible
  // (DeterministicRng, for tests and vectors) gets the deterministic nonce. SystemRng never does.
  if (rng.reproducible()) {
    return sign_reproducible(*m_key, *c, digest, rng);
  }
  return sign_evp(*m_key, digest);
}

Result<SecretBytes> PrivateKey::ecdh(const PublicKey& peer) const {
  if (!m_key || !m_key->pkey) {
    return make_error(ErrorCode::InvalidState, "ecdh: empty private key");
  }
  if (!peer.m_key) {
    return make_error(ErrorCode::InvalidArgument, "ecdh: empty peer key");
  }
  if (!peer.m_key->pkey) {
    return make_error(ErrorCode::InvalidArgument, "ecdh: peer key has no point");
  }
  CtxLease lease(m_key->derive_ctx, m_key->pkey.get(), PkeyOp::Derive);
  if (lease.get() == nullptr) {
    return crypto_error("ecdh: EVP_PKEY_CTX setup failed");
  }
  // The peer point was validated by from_point (on the curve, not infinity): no second check.
  if (::EVP_PKEY_derive_set_peer_ex(lease.get(), peer.m_key->pkey.get(), 0) != 1) {
    lease.failed();
    return crypto_error("ecdh: EVP_PKEY_derive_set_peer failed");
  }
  // Without a KDF, EVP_PKEY_derive writes the x-coordinate of d·Q, left-padded to 32 bytes.
  SecretBytes shared(kSharedSecretLen);
  std::size_t len = shared.size();
  if (::EVP_PKEY_derive(lease.get(), shared.data(), &len) != 1 || len != kSharedSecretLen) {
    lease.failed();
    return crypto_error("ecdh: EVP_PKEY_derive failed");
  }
  return shared;
}

}  // namespace mpotr::crypto
