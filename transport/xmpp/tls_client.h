// SPDX-License-Identifier: MIT
// The client side of TLS on the guard's server socket (private to mpotr_xmpp): OpenSSL 3,
// non-blocking, every object owned by a unique_ptr. The certificate is judged after the
// handshake, before a single byte of the XMPP session is sent over it, under the account's
// TlsPolicy: a CA (system default or the policy's file) vouching for the JID's domain, else the
// pinned SHA-256 fingerprint, else trust-any (tests only), else refused.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mpotr/result.h"
#include "mpotr/transport/guarded_stream.h"

namespace mpotr::transport {

template <auto Fn>
struct OsslDeleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Fn(p);
  }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, OsslDeleter<::SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OsslDeleter<::SSL_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<::X509_free>>;

// How an accepted certificate was accepted.
struct CertificateVerdict {
  std::string note;         // for the user; empty when a CA vouched for it
  bool unverified = false;  // accepted without any verification (trust_any)
};

// "AB:cd:…" or "abcd…" -> "abcd…": hex digits only, lower case.
std::string normalise_fingerprint(std::string_view fingerprint);

class TlsClient {
 public:
  enum class Io : std::uint8_t { Ok, WantRead, WantWrite, Closed, Failed };

  // Sets up TLS over the connected socket `fd` (not owned) for `domain` (SNI and the name
  // the certificate must carry). Errors: Crypto (OpenSSL), Storage (the CA file).
  static Result<std::unique_ptr<TlsClient>> start(int fd, const std::string& domain, const TlsPolicy& policy);

  Io handshake();
  // After the handshake: the verdict on the server's certificate, or an error whose detail
  // begins "server certificate rejected".
  Result<CertificateVerdict> judge() const;

  // Both report the bytes moved in `done`; Ok means done > 0.
  Io read(char* buf, std::size_t cap, std::size_t& done);
  Io write(const char* buf, std::size_t len, std::size_t& done);
  // Sends close_notify (best effort: the socket is shut down right after).
  void close_notify();
  // Decrypted bytes OpenSSL holds that poll() cannot see.
  bool pending() const;
  // The last OpenSSL error, for messages.
  const std::string& error() const noexcept { return m_error; }

 private:
  TlsClient(SslCtxPtr ctx, SslPtr ssl, TlsPolicy policy);
  Io result(int ret);

  SslCtxPtr m_ctx;
  SslPtr m_ssl;
  TlsPolicy m_policy;
  std::string m_error;
};

}  // namespace mpotr::transport
