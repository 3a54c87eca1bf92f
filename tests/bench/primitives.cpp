// SPDX-License-Identifier: MIT
// Primitive floors. "crypto/…" goes through mpotr::crypto, exactly what the engine calls: these
// are the floors the engine is measured against. "openssl/…" does the same operation directly on
// OpenSSL with reused contexts: the reference the wrappers themselves are compared with.
#include <benchmark/benchmark.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdh.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench.h"
#include "mpotr/crypto/crypto.h"
#include "mpotr/rng.h"

namespace mpotr::bench {

namespace names {
std::string aes(std::size_t len) { return "crypto/aes128_ctr/" + std::to_string(len); }
std::string sha(std::size_t len) { return "crypto/sha256/" + std::to_string(len); }
std::string raw_aes(std::size_t len) { return "openssl/aes128_ctr/" + std::to_string(len); }
std::string raw_sha(std::size_t len) { return "openssl/sha256/" + std::to_string(len); }
}  // namespace names

namespace {

template <class T>
T must(Result<T> r, const char* what) {
  if (!r.ok()) {
    throw std::runtime_error(std::string(what) + ": " + r.error().detail);
  }
  return std::move(r).value();
}

Bytes random_bytes(std::size_t n) {
  SystemRng rng;
  Bytes b(n);
  rng.fill(b.data(), b.size());
  return b;
}

// --- mpotr::crypto -------------------------------------------------------------------------

// The engine signs and draws keys from the host's rng; SystemRng is what a host uses, and the
// send benchmark uses it too, so the sign floor and send_text take the same (production,
// EVP_PKEY_sign) path.
void bm_sign(benchmark::State& state) {
  SystemRng rng;
  const auto key = must(crypto::PrivateKey::generate(rng), "keygen");
  const Hash32 digest = rng.array<32>();
  for (auto _ : state) {
    auto sig = key.sign_digest(digest, rng);
    benchmark::DoNotOptimize(sig);
  }
}

// The reproducible signer (DeterministicRng): the engine setup replays of engine_bench.cpp sign
// this way, since they must regenerate byte-identical messages. For information; no floor uses it.
void bm_sign_reproducible(benchmark::State& state) {
  DeterministicRng rng(1);
  const auto key = must(crypto::PrivateKey::generate(rng), "keygen");
  const Hash32 digest = rng.array<32>();
  for (auto _ : state) {
    auto sig = key.sign_digest(digest, rng);
    benchmark::DoNotOptimize(sig);
  }
}

void bm_verify(benchmark::State& state) {
  SystemRng rng;
  const auto key = must(crypto::PrivateKey::generate(rng), "keygen");
  const Hash32 digest = rng.array<32>();
  const crypto::Signature sig = must(key.sign_digest(digest, rng), "sign");
  const crypto::PublicKey& pub = key.public_key();
  if (!pub.verify_digest(digest, view(sig))) {
    state.SkipWithError("signature does not verify");
    return;
  }
  for (auto _ : state) {
    bool ok = pub.verify_digest(digest, view(sig));
    benchmark::DoNotOptimize(ok);
  }
}

void bm_ecdh(benchmark::State& state) {
  SystemRng rng;
  const auto a = must(crypto::PrivateKey::generate(rng), "keygen");
  const auto b = must(crypto::PrivateKey::generate(rng), "keygen");
  for (auto _ : state) {
    auto shared = a.ecdh(b.public_key());
    benchmark::DoNotOptimize(shared);
  }
}

void bm_keygen(benchmark::State& state) {
  SystemRng rng;
  for (auto _ : state) {
    auto key = crypto::PrivateKey::generate(rng);
    benchmark::DoNotOptimize(key);
  }
}

void bm_decode(benchmark::State& state) {
  SystemRng rng;
  const auto key = must(crypto::PrivateKey::generate(rng), "keygen");
  const crypto::Point point = key.public_key().point();
  for (auto _ : state) {
    auto pub = crypto::PublicKey::from_point(view(point));
    benchmark::DoNotOptimize(pub);
  }
}

void bm_aes(benchmark::State& state, std::size_t len) {
  const Bytes key = random_bytes(crypto::kAesKeyLen);
  crypto::AesIv iv{};
  const Bytes in = random_bytes(len);
  Bytes out(len);
  for (auto _ : state) {
    auto r = crypto::aes128_ctr(view(key), iv, view(in), out.data());
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * len));
}

void bm_sha(benchmark::State& state, std::size_t len) {
  const Bytes in = random_bytes(len);
  for (auto _ : state) {
    Hash32 h = crypto::sha256(view(in));
    benchmark::DoNotOptimize(h);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * len));
}

// --- raw OpenSSL ---------------------------------------------------------------------------

template <auto Fn>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};
using EcKeyPtr = std::unique_ptr<EC_KEY, Deleter<::EC_KEY_free>>;
using EcPointPtr = std::unique_ptr<EC_POINT, Deleter<::EC_POINT_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<::BN_clear_free>>;
using BnCtxPtr = std::unique_ptr<BN_CTX, Deleter<::BN_CTX_free>>;
using SigPtr = std::unique_ptr<ECDSA_SIG, Deleter<::ECDSA_SIG_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<::EVP_CIPHER_CTX_free>>;
using MdPtr = std::unique_ptr<EVP_MD, Deleter<::EVP_MD_free>>;
using CipherPtr = std::unique_ptr<EVP_CIPHER, Deleter<::EVP_CIPHER_free>>;

EcKeyPtr raw_key() {
  EcKeyPtr key(::EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  if (!key || ::EC_KEY_generate_key(key.get()) != 1) {
    throw std::runtime_error("EC_KEY_generate_key failed");
  }
  return key;
}

void bm_raw_sign(benchmark::State& state) {
  const EcKeyPtr key = raw_key();
  const Bytes digest = random_bytes(32);
  for (auto _ : state) {
    SigPtr sig(::ECDSA_do_sign(digest.data(), 32, key.get()));
    benchmark::DoNotOptimize(sig.get());
  }
}

void bm_raw_verify(benchmark::State& state) {
  const EcKeyPtr key = raw_key();
  // A public-only key, as a verifier holds it.
  EcKeyPtr pub(::EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  ::EC_KEY_set_public_key(pub.get(), ::EC_KEY_get0_public_key(key.get()));
  const Bytes digest = random_bytes(32);
  const SigPtr sig(::ECDSA_do_sign(digest.data(), 32, key.get()));
  if (::ECDSA_do_verify(digest.data(), 32, sig.get(), pub.get()) != 1) {
    state.SkipWithError("raw signature does not verify");
    return;
  }
  for (auto _ : state) {
    int ok = ::ECDSA_do_verify(digest.data(), 32, sig.get(), pub.get());
    benchmark::DoNotOptimize(ok);
  }
}

void bm_raw_ecdh(benchmark::State& state) {
  const EcKeyPtr a = raw_key();
  const EcKeyPtr b = raw_key();
  std::array<unsigned char, 32> out{};
  for (auto _ : state) {
    int n = ::ECDH_compute_key(out.data(), out.size(), ::EC_KEY_get0_public_key(b.get()), a.get(), nullptr);
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
}

// Key generation's real work: one constant-time fixed-base multiplication d·G.
void bm_raw_keygen(benchmark::State& state) {
  const EcKeyPtr holder(::EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  const EC_GROUP* group = ::EC_KEY_get0_group(holder.get());
  EcPointPtr point(::EC_POINT_new(group));
  BnCtxPtr ctx(::BN_CTX_new());
  BnPtr d(::BN_new());
  const Bytes scalar = random_bytes(32);
  ::BN_bin2bn(scalar.data(), 32, d.get());
  ::BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  for (auto _ : state) {
    int ok = ::EC_POINT_mul(group, point.get(), d.get(), nullptr, nullptr, ctx.get());
    benchmark::DoNotOptimize(ok);
  }
}

void bm_raw_decode(benchmark::State& state) {
  const EcKeyPtr key = raw_key();
  const EC_GROUP* group = ::EC_KEY_get0_group(key.get());
  std::array<unsigned char, 65> buf{};
  ::EC_POINT_point2oct(group, ::EC_KEY_get0_public_key(key.get()), POINT_CONVERSION_UNCOMPRESSED, buf.data(),
                       buf.size(), nullptr);
  EcPointPtr point(::EC_POINT_new(group));
  BnCtxPtr ctx(::BN_CTX_new());
  for (auto _ : state) {
    int ok = ::EC_POINT_oct2point(group, point.get(), buf.data(), buf.size(), ctx.get());
    benchmark::DoNotOptimize(ok);
  }
}

void bm_raw_aes(benchmark::State& state, std::size_t len) {
  const Bytes key = random_bytes(16);
  const std::array<unsigned char, 16> iv{};
  const Bytes in = random_bytes(len);
  Bytes out(len);
  CipherPtr cipher(::EVP_CIPHER_fetch(nullptr, "AES-128-CTR", nullptr));
  CipherCtxPtr ctx(::EVP_CIPHER_CTX_new());
  ::EVP_EncryptInit_ex(ctx.get(), cipher.get(), nullptr, key.data(), iv.data());
  for (auto _ : state) {
    // A new IV on the keyed context: what a per-message encryption minimally costs.
    int n = 0;
    ::EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, nullptr, iv.data());
    ::EVP_EncryptUpdate(ctx.get(), out.data(), &n, in.data(), static_cast<int>(len));
    benchmark::DoNotOptimize(n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * len));
}

void bm_raw_sha(benchmark::State& state, std::size_t len) {
  const Bytes in = random_bytes(len);
  MdPtr md(::EVP_MD_fetch(nullptr, "SHA2-256", nullptr));
  std::array<unsigned char, 32> out{};
  for (auto _ : state) {
    ::EVP_Digest(in.data(), in.size(), out.data(), nullptr, md.get(), nullptr);
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * len));
}

}  // namespace

void register_primitives() {
  benchmark::RegisterBenchmark(names::kSign.c_str(), bm_sign);
  benchmark::RegisterBenchmark(names::kSignReproducible.c_str(), bm_sign_reproducible);
  benchmark::RegisterBenchmark(names::kVerify.c_str(), bm_verify);
  benchmark::RegisterBenchmark(names::kEcdh.c_str(), bm_ecdh);
  benchmark::RegisterBenchmark(names::kKeygen.c_str(), bm_keygen);
  benchmark::RegisterBenchmark(names::kDecode.c_str(), bm_decode);
  // AES at the text sizes; SHA-256 at the text sizes and at the matching Data message sizes
  // (the send/receive floors hash the whole message twice: signature digest and group MAC).
  const std::vector<std::size_t> aes_sizes = {kSmallText, kLargeText};
  const std::vector<std::size_t> sha_sizes = {kSmallText, kLargeText, data_wire_size(kChatMembers, kSmallText),
                                              data_wire_size(kChatMembers, kLargeText)};
  for (std::size_t len : aes_sizes) {
    benchmark::RegisterBenchmark(names::aes(len).c_str(), bm_aes, len);
  }
  for (std::size_t len : sha_sizes) {
    benchmark::RegisterBenchmark(names::sha(len).c_str(), bm_sha, len);
  }

  benchmark::RegisterBenchmark(names::kRawSign.c_str(), bm_raw_sign);
  benchmark::RegisterBenchmark(names::kRawVerify.c_str(), bm_raw_verify);
  benchmark::RegisterBenchmark(names::kRawEcdh.c_str(), bm_raw_ecdh);
  benchmark::RegisterBenchmark(names::kRawKeygen.c_str(), bm_raw_keygen);
  benchmark::RegisterBenchmark(names::kRawDecode.c_str(), bm_raw_decode);
  for (std::size_t len : aes_sizes) {
    benchmark::RegisterBenchmark(names::raw_aes(len).c_str(), bm_raw_aes, len);
  }
  for (std::size_t len : aes_sizes) {
    benchmark::RegisterBenchmark(names::raw_sha(len).c_str(), bm_raw_sha, len);
  }
}

}  // namespace mpotr::bench
