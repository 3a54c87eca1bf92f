// SPDX-License-Identifier: MIT
#include "tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <climits>

namespace mpotr::transport {

namespace {

std::string openssl_error(std::string what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) {
    return what;
  }
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return what + ": " + buf;
}

std::string hex(const unsigned char* data, unsigned int len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string normalise_fingerprint(std::string_view fingerprint) {
  std::string out;
  for (char c : fingerprint) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

TlsClient::TlsClient(SslCtxPtr ctx, SslPtr ssl, TlsPolicy policy)
    : m_ctx(std::move(ctx)), m_ssl(std::move(ssl)), m_policy(std::move(policy)) {}

Result<std::unique_ptr<TlsClient>> TlsClient::start(int fd, const std::string& domain, const TlsPolicy& policy) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
    return make_error(ErrorCode::Crypto, openssl_error("TLS setup failed"));
  }
  // The verification result is read after the handshake (judge()): with VERIFY_NONE OpenSSL
  // still verifies and records the result, and the pin and trust-any policies get their say.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
    ERR_clear_error();  // no system store: only the CA file or the pin can vouch
  }
  if (!policy.ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), policy.ca_file.c_str(), nullptr) != 1) {
    return make_error(ErrorCode::Storage, openssl_error("cannot use the CA file " + policy.ca_file));
  }
  SslPtr ssl(SSL_new(ctx.get()));
  if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
    return make_error(ErrorCode::Crypto, openssl_error("TLS setup failed"));
  }
  // Partial writes and a moving buffer: the relay writes what it has and keeps the rest.
  SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  in6_addr ip{};
  const bool literal = inet_pton(AF_INET, domain.c_str(), &ip) == 1 || inet_pton(AF_INET6, domain.c_str(), &ip) == 1;
  const int named = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, domain.c_str())
                            : X509_VERIFY_PARAM_set1_host(param, domain.c_str(), domain.size());
  if (named != 1 || (!literal && SSL_set_tlsext_host_name(ssl.get(), domain.c_str()) != 1)) {
    return make_error(ErrorCode::Crypto, openssl_error("TLS setup failed for the name " + domain));
  }
  SSL_set_connect_state(ssl.get());
  return std::unique_ptr<TlsClient>(new TlsClient(std::move(ctx), std::move(ssl), policy));
}

TlsClient::Io TlsClient::result(int ret) {
  switch (SSL_get_error(m_ssl.get(), ret)) {
    case SSL_ERROR_WANT_READ: return Io::WantRead;
    case SSL_ERROR_WANT_WRITE: return Io::WantWrite;
    case SSL_ERROR_ZERO_RETURN: return Io::Closed;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        m_error = "the connection was closed";
        return Io::Closed;
      }
      [[fallthrough]];
    default:
      m_error = openssl_error("TLS error");
      return Io::Failed;
  }
}

TlsClient::Io TlsClient::handshake() {
  ERR_clear_error();
  const int ret = SSL_do_handshake(m_ssl.get());
  return ret == 1 ? Io::Ok : result(ret);
}

Result<CertificateVerdict> TlsClient::judge() const {
  const X509Ptr cert(SSL_get1_peer_certificate(m_ssl.get()));
  if (!cert) {
    return make_error(ErrorCode::Crypto, "server certificate rejected: the server sent none");
  }
  const long verified = SSL_get_verify_result(m_ssl.get());
  if (verified == X509_V_OK) {
    return CertificateVerdict{};
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert.get(), EVP_sha256(), digest, &len) != 1) {
    return make_error(ErrorCode::Crypto, "server certificate rejected: its fingerprint cannot be computed");
  }
  const std::string fingerprint = hex(digest, len);
  if (!m_policy.pin_sha256.empty() && normalise_fingerprint(m_policy.pin_sha256) == fingerprint) {
    return CertificateVerdict{"server certificate accepted by its pinned SHA-256 fingerprint", false};
  }
  if (m_policy.trust_any) {
    return CertificateVerdict{"server certificate NOT verified (--insecure-trust-any-cert is for tests only)", true};
  }
  return make_error(ErrorCode::Crypto, std::string("server certificate rejected: ") +
                                           X509_verify_cert_error_string(verified) + " (SHA-256 " + fingerprint + ")");
}

TlsClient::Io TlsClient::read(char* buf, std::size_t cap, std::size_t& done) {
  done = 0;
  ERR_clear_error();
  const int ret = SSL_read(m_ssl.get(), buf, static_cast<int>(std::min<std::size_t>(cap, INT_MAX)));
  if (ret > 0) {
    done = static_cast<std::size_t>(ret);
    return Io::Ok;
  }
  return result(ret);
}

TlsClient::Io TlsClient::write(const char* buf, std::size_t len, std::size_t& done) {
  done = 0;
  ERR_clear_error();
  const int ret = SSL_write(m_ssl.get(), buf, static_cast<int>(std::min<std::size_t>(len, INT_MAX)));
  if (ret > 0) {
    done = static_cast<std::size_t>(ret);
    return Io::Ok;
  }
  return result(ret);
}

void TlsClient::close_notify() {
  ERR_clear_error();
  SSL_shutdown(m_ssl.get());
  ERR_clear_error();
}

bool TlsClient::pending() const { return SSL_pending(m_ssl.get()) > 0; }

}  // namespace mpotr::transport
