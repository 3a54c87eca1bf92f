// SPDX-License-Identifier: MIT
// Owning pointers for OpenSSL objects: every OpenSSL object in mpotr_crypto lives in one of
// these, so no error path can leak or forget to wipe it. Private to mpotr/crypto/.
#pragma once

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <memory>

namespace mpotr::crypto::ossl {

template <auto Fn>
struct Deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};

using BnCtxPtr = std::unique_ptr<BN_CTX, Deleter<::BN_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<::BN_free>>;
using SecretBnPtr = std::unique_ptr<BIGNUM, Deleter<::BN_clear_free>>;  // zeroized on free
using PointPtr = std::unique_ptr<EC_POINT, Deleter<::EC_POINT_free>>;
using SecretPointPtr = std::unique_ptr<EC_POINT, Deleter<::EC_POINT_clear_free>>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, Deleter<::EC_GROUP_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Deleter<::ECDSA_SIG_free>>;
using MontCtxPtr = std::unique_ptr<BN_MONT_CTX, Deleter<::BN_MONT_CTX_free>>;
// EVP_PKEY_free wipes a private key's scalar (OpenSSL clears EC private keys on free).
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<::EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<::EVP_PKEY_CTX_free>>;
using CipherPtr = std::unique_ptr<EVP_CIPHER, Deleter<::EVP_CIPHER_free>>;
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, Deleter<::EVP_CIPHER_CTX_free>>;
using MdPtr = std::unique_ptr<EVP_MD, Deleter<::EVP_MD_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<::EVP_MD_CTX_free>>;

}  // namespace mpotr::crypto::ossl
