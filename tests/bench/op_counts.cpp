// SPDX-License-Identifier: MIT
// Counting shims for `ld --wrap=<symbol>`: every reference to <symbol> in the objects linked into
// mpotr-bench (the static mpotr libraries included) resolves to __wrap_<symbol>, which counts and
// calls the real OpenSSL function, __real_<symbol>. Calls inside libcrypto itself are not seen.
// The shims cost a counter increment and one extra call: nanoseconds against operations of
// microseconds.
#include "op_counts.h"

#if defined(MPOTR_BENCH_OP_COUNTS)
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#endif

namespace mpotr::bench {

namespace {
OpCounts g_counts;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): the shims' sink
}  // namespace

OpCounts operator-(const OpCounts& a, const OpCounts& b) {
  OpCounts d;
  d.ecdh = a.ecdh - b.ecdh;
  d.verify = a.verify - b.verify;
  d.sign = a.sign - b.sign;
  d.decode = a.decode - b.decode;
  d.fixed_base_mul = a.fixed_base_mul - b.fixed_base_mul;
  d.other_mul = a.other_mul - b.other_mul;
  d.sign_reproducible = a.sign_reproducible - b.sign_reproducible;
  d.sha_oneshot = a.sha_oneshot - b.sha_oneshot;
  d.sha_init = a.sha_init - b.sha_init;
  d.sha_bytes = a.sha_bytes - b.sha_bytes;
  d.aes_init = a.aes_init - b.aes_init;
  d.aes_bytes = a.aes_bytes - b.aes_bytes;
  d.md_ctx_new = a.md_ctx_new - b.md_ctx_new;
  d.cipher_ctx_new = a.cipher_ctx_new - b.cipher_ctx_new;
  d.bn_ctx_secure_new = a.bn_ctx_secure_new - b.bn_ctx_secure_new;
  d.pkey_new = a.pkey_new - b.pkey_new;
  d.pkey_ctx_new = a.pkey_ctx_new - b.pkey_ctx_new;
  return d;
}

OpCounts operator+(const OpCounts& a, const OpCounts& b) {
  OpCounts d;
  d.ecdh = a.ecdh + b.ecdh;
  d.verify = a.verify + b.verify;
  d.sign = a.sign + b.sign;
  d.decode = a.decode + b.decode;
  d.fixed_base_mul = a.fixed_base_mul + b.fixed_base_mul;
  d.other_mul = a.other_mul + b.other_mul;
  d.sign_reproducible = a.sign_reproducible + b.sign_reproducible;
  d.sha_oneshot = a.sha_oneshot + b.sha_oneshot;
  d.sha_init = a.sha_init + b.sha_init;
  d.sha_bytes = a.sha_bytes + b.sha_bytes;
  d.aes_init = a.aes_init + b.aes_init;
  d.aes_bytes = a.aes_bytes + b.aes_bytes;
  d.md_ctx_new = a.md_ctx_new + b.md_ctx_new;
  d.cipher_ctx_new = a.cipher_ctx_new + b.cipher_ctx_new;
  d.bn_ctx_secure_new = a.bn_ctx_secure_new + b.bn_ctx_secure_new;
  d.pkey_new = a.pkey_new + b.pkey_new;
  d.pkey_ctx_new = a.pkey_ctx_new + b.pkey_ctx_new;
  return d;
}

bool op_counts_available() noexcept {
#if defined(MPOTR_BENCH_OP_COUNTS)
  return true;
#else
  return false;
#endif
}

OpCounts op_counts() noexcept { return g_counts; }

}  // namespace mpotr::bench

#if defined(MPOTR_BENCH_OP_COUNTS)

using mpotr::bench::g_counts;

// Declaring both names with the real function's type makes a wrong shim signature a compile error.
#define MPOTR_BENCH_WRAP(fn)              \
  extern "C" decltype(fn) __real_##fn; \
  extern "C" decltype(fn) __wrap_##fn

MPOTR_BENCH_WRAP(EVP_PKEY_derive);
MPOTR_BENCH_WRAP(EVP_PKEY_verify);
MPOTR_BENCH_WRAP(EVP_PKEY_sign);
MPOTR_BENCH_WRAP(BN_mod_inverse);
MPOTR_BENCH_WRAP(EC_POINT_oct2point);
MPOTR_BENCH_WRAP(EC_POINT_mul);
MPOTR_BENCH_WRAP(EVP_Digest);
MPOTR_BENCH_WRAP(EVP_DigestInit_ex);
MPOTR_BENCH_WRAP(EVP_DigestUpdate);
MPOTR_BENCH_WRAP(EVP_EncryptInit_ex);
MPOTR_BENCH_WRAP(EVP_EncryptUpdate);
MPOTR_BENCH_WRAP(EVP_CIPHER_CTX_new);
MPOTR_BENCH_WRAP(EVP_MD_CTX_new);
MPOTR_BENCH_WRAP(BN_CTX_secure_new);
MPOTR_BENCH_WRAP(EVP_PKEY_fromdata);
MPOTR_BENCH_WRAP(EVP_PKEY_dup);
MPOTR_BENCH_WRAP(EVP_PKEY_CTX_new_from_pkey);

extern "C" int __wrap_EVP_PKEY_derive(EVP_PKEY_CTX* ctx, unsigned char* key, size_t* keylen) {
  // A call with key == nullptr only asks for the length.
  if (key != nullptr) {
    ++g_counts.ecdh;
  }
  return __real_EVP_PKEY_derive(ctx, key, keylen);
}

extern "C" int __wrap_EVP_PKEY_verify(EVP_PKEY_CTX* ctx, const unsigned char* sig, size_t siglen,
                                      const unsigned char* tbs, size_t tbslen) {
  ++g_counts.verify;
  return __real_EVP_PKEY_verify(ctx, sig, siglen, tbs, tbslen);
}

extern "C" int __wrap_EVP_PKEY_sign(EVP_PKEY_CTX* ctx, unsigned char* sig, size_t* siglen, const unsigned char* tbs,
                                    size_t tbslen) {
  if (sig != nullptr) {
    ++g_counts.sign;
  }
  return __real_EVP_PKEY_sign(ctx, sig, siglen, tbs, tbslen);
}

extern "C" BIGNUM* __wrap_BN_mod_inverse(BIGNUM* ret, const BIGNUM* a, const BIGNUM* n, BN_CTX* ctx) {
  ++g_counts.sign;
  ++g_counts.sign_reproducible;
  return __real_BN_mod_inverse(ret, a, n, ctx);
}

extern "C" int __wrap_EC_POINT_oct2point(const EC_GROUP* group, EC_POINT* p, const unsigned char* buf, size_t len,
                                         BN_CTX* ctx) {
  ++g_counts.decode;
  return __real_EC_POINT_oct2point(group, p, buf, len, ctx);
}

extern "C" int __wrap_EC_POINT_mul(const EC_GROUP* group, EC_POINT* r, const BIGNUM* n, const EC_POINT* q,
                                   const BIGNUM* m, BN_CTX* ctx) {
  if (n != nullptr && q == nullptr) {
    ++g_counts.fixed_base_mul;
  } else {
    ++g_counts.other_mul;
  }
  return __real_EC_POINT_mul(group, r, n, q, m, ctx);
}

extern "C" int __wrap_EVP_Digest(const void* data, size_t count, unsigned char* md, unsigned int* size,
                                 const EVP_MD* type, ENGINE* impl) {
  ++g_counts.sha_oneshot;
  g_counts.sha_bytes += count;
  return __real_EVP_Digest(data, count, md, size, type, impl);
}

extern "C" int __wrap_EVP_DigestInit_ex(EVP_MD_CTX* ctx, const EVP_MD* type, ENGINE* impl) {
  ++g_counts.sha_init;
  return __real_EVP_DigestInit_ex(ctx, type, impl);
}

extern "C" int __wrap_EVP_DigestUpdate(EVP_MD_CTX* ctx, const void* d, size_t cnt) {
  g_counts.sha_bytes += cnt;
  return __real_EVP_DigestUpdate(ctx, d, cnt);
}

extern "C" int __wrap_EVP_EncryptInit_ex(EVP_CIPHER_CTX* ctx, const EVP_CIPHER* cipher, ENGINE* impl,
                                         const unsigned char* key, const unsigned char* iv) {
  ++g_counts.aes_init;
  return __real_EVP_EncryptInit_ex(ctx, cipher, impl, key, iv);
}

extern "C" int __wrap_EVP_EncryptUpdate(EVP_CIPHER_CTX* ctx, unsigned char* out, int* outl, const unsigned char* in,
                                        int inl) {
  g_counts.aes_bytes += static_cast<std::uint64_t>(inl > 0 ? inl : 0);
  return __real_EVP_EncryptUpdate(ctx, out, outl, in, inl);
}

extern "C" EVP_CIPHER_CTX* __wrap_EVP_CIPHER_CTX_new() {
  ++g_counts.cipher_ctx_new;
  return __real_EVP_CIPHER_CTX_new();
}

extern "C" EVP_MD_CTX* __wrap_EVP_MD_CTX_new() {
  ++g_counts.md_ctx_new;
  return __real_EVP_MD_CTX_new();
}

extern "C" BN_CTX* __wrap_BN_CTX_secure_new() {
  ++g_counts.bn_ctx_secure_new;
  return __real_BN_CTX_secure_new();
}

extern "C" int __wrap_EVP_PKEY_fromdata(EVP_PKEY_CTX* ctx, EVP_PKEY** ppkey, int selection, OSSL_PARAM params[]) {
  ++g_counts.pkey_new;
  return __real_EVP_PKEY_fromdata(ctx, ppkey, selection, params);
}

extern "C" EVP_PKEY* __wrap_EVP_PKEY_dup(EVP_PKEY* key) {
  ++g_counts.pkey_new;
  return __real_EVP_PKEY_dup(key);
}

extern "C" EVP_PKEY_CTX* __wrap_EVP_PKEY_CTX_new_from_pkey(OSSL_LIB_CTX* libctx, EVP_PKEY* pkey, const char* propquery) {
  ++g_counts.pkey_ctx_new;
  return __real_EVP_PKEY_CTX_new_from_pkey(libctx, pkey, propquery);
}

#endif  // MPOTR_BENCH_OP_COUNTS
