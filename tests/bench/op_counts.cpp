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
#include <openssl/ecdh.h>
#include <openssl/ecdsa.h>
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
  d.modexp = a.modexp - b.modexp;
  d.sha_oneshot = a.sha_oneshot - b.sha_oneshot;
  d.sha_init = a.sha_init - b.sha_init;
  d.sha_bytes = a.sha_bytes - b.sha_bytes;
  d.aes_init = a.aes_init - b.aes_init;
  d.aes_bytes = a.aes_bytes - b.aes_bytes;
  d.md_ctx_new = a.md_ctx_new - b.md_ctx_new;
  d.cipher_ctx_new = a.cipher_ctx_new - b.cipher_ctx_new;
  d.bn_ctx_secure_new = a.bn_ctx_secure_new - b.bn_ctx_secure_new;
  d.ec_key_new = a.ec_key_new - b.ec_key_new;
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
  d.modexp = a.modexp + b.modexp;
  d.sha_oneshot = a.sha_oneshot + b.sha_oneshot;
  d.sha_init = a.sha_init + b.sha_init;
  d.sha_bytes = a.sha_bytes + b.sha_bytes;
  d.aes_init = a.aes_init + b.aes_init;
  d.aes_bytes = a.aes_bytes + b.aes_bytes;
  d.md_ctx_new = a.md_ctx_new + b.md_ctx_new;
  d.cipher_ctx_new = a.cipher_ctx_new + b.cipher_ctx_new;
  d.bn_ctx_secure_new = a.bn_ctx_secure_new + b.bn_ctx_secure_new;
  d.ec_key_new = a.ec_key_new + b.ec_key_new;
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

MPOTR_BENCH_WRAP(ECDH_compute_key);
MPOTR_BENCH_WRAP(ECDSA_do_verify);
MPOTR_BENCH_WRAP(ECDSA_do_sign_ex);
MPOTR_BENCH_WRAP(EC_POINT_oct2point);
MPOTR_BENCH_WRAP(EC_POINT_mul);
MPOTR_BENCH_WRAP(BN_mod_exp_mont_consttime);
MPOTR_BENCH_WRAP(EVP_Digest);
MPOTR_BENCH_WRAP(EVP_DigestInit_ex);
MPOTR_BENCH_WRAP(EVP_DigestUpdate);
MPOTR_BENCH_WRAP(EVP_EncryptInit_ex);
MPOTR_BENCH_WRAP(EVP_EncryptUpdate);
MPOTR_BENCH_WRAP(EVP_CIPHER_CTX_new);
MPOTR_BENCH_WRAP(EVP_MD_CTX_new);
MPOTR_BENCH_WRAP(BN_CTX_secure_new);
MPOTR_BENCH_WRAP(EC_KEY_new);

extern "C" int __wrap_ECDH_compute_key(void* out, size_t outlen, const EC_POINT* pub_key, const EC_KEY* ecdh,
                                       void* (*kdf)(const void* in, size_t inlen, void* out, size_t* outlen)) {
  ++g_counts.ecdh;
  return __real_ECDH_compute_key(out, outlen, pub_key, ecdh, kdf);
}

extern "C" int __wrap_ECDSA_do_verify(const unsigned char* dgst, int dgst_len, const ECDSA_SIG* sig, EC_KEY* eckey) {
  ++g_counts.verify;
  return __real_ECDSA_do_verify(dgst, dgst_len, sig, eckey);
}

extern "C" ECDSA_SIG* __wrap_ECDSA_do_sign_ex(const unsigned char* dgst, int dgstlen, const BIGNUM* kinv,
                                              const BIGNUM* rp, EC_KEY* eckey) {
  ++g_counts.sign;
  return __real_ECDSA_do_sign_ex(dgst, dgstlen, kinv, rp, eckey);
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

extern "C" int __wrap_BN_mod_exp_mont_consttime(BIGNUM* rr, const BIGNUM* a, const BIGNUM* p, const BIGNUM* m,
                                                BN_CTX* ctx, BN_MONT_CTX* in_mont) {
  ++g_counts.modexp;
  return __real_BN_mod_exp_mont_consttime(rr, a, p, m, ctx, in_mont);
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

extern "C" EC_KEY* __wrap_EC_KEY_new() {
  ++g_counts.ec_key_new;
  return __real_EC_KEY_new();
}

#endif  // MPOTR_BENCH_OP_COUNTS
