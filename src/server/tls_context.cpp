#include "server/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace ob::server {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla "intermediate" (TLS 1.2 suites; TLS 1.3 keeps OpenSSL's defaults, which are the same).
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* groups = "X25519:prime256v1:secp384r1";

std::string openssl_error() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// ALPN: the first of the client's protocols that has a handler. A client that offers ALPN
// but none of ours gets no ALPN answer and speaks HTTP/1.1 (or gives up, an h2-only client).
// `arg` non-null: tls.http2, h2 is offered first.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
  static constexpr unsigned char with_h2[] = "\x02h2\x08http/1.1";
  static constexpr unsigned char http1[] = "\x08http/1.1";
  const unsigned char* ours = arg ? with_h2 : http1;
  unsigned int ours_len = arg ? sizeof with_h2 - 1 : sizeof http1 - 1;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string asn1_time(const ASN1_TIME* t) {
  std::unique_ptr<BIO, decltype(&BIO_free)> b(BIO_new(BIO_s_mem()), BIO_free);
  if (!b || ASN1_TIME_print(b.get(), t) != 1) return "?";
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string serial_of(X509* cert) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr), BN_free);
  if (!bn) return "?";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex ? hex : "?";
  OPENSSL_free(hex);
  return out;
}

// The session id context: a session (a ticket, or an id from the cache) is resumed only by a
// context with the same one, and a resumption skips the client certificate check (OpenSSL does
// not verify the stored peer certificate again). So it names the client certificate policy:
// whether one is required and the CA certificates loaded from tls.client_ca. A reload that
// keeps them (a server certificate renewal) keeps sessions resumable; one that changes them (a
// CA revoked) makes every client do a full handshake against the CAs now in force. Taken from
// the certificates loaded (not the file, which may change meanwhile), in any order. False:
// a certificate could not be digested.
bool session_context(SSL_CTX* h, bool verify, std::string* out) {
  std::string material = verify ? "openbridge client_ca" : "openbridge";
  if (verify) {
    std::vector<std::string> digests;
    STACK_OF(X509)* certs = X509_STORE_get1_all_certs(SSL_CTX_get_cert_store(h));
    bool ok = certs != nullptr;
    for (int i = 0; ok && i < sk_X509_num(certs); ++i) {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      ok = X509_digest(sk_X509_value(certs, i), EVP_sha256(), md, &len) == 1;
      digests.emplace_back(reinterpret_cast<const char*>(md), len);
    }
    if (certs) sk_X509_pop_free(certs, X509_free);
    if (!ok) return false;
    std::sort(digests.begin(), digests.end());
    for (const auto& d : digests) material += d;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(material.data(), material.size(), md, &len, EVP_sha256(), nullptr) != 1)
    return false;
  static_assert(SSL_MAX_SID_CTX_LENGTH >= 32);  // a SHA-256 digest fits
  out->assign(reinterpret_cast<const char*>(md), len);
  return true;
}

bool readable(const std::string& path, std::string* error, std::string_view key) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    *error = "tls." + std::string(key) + ": cannot read \"" + path + "\": " + std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

}  // namespace

app_protocol negotiated_protocol(SSL* ssl) {
  const unsigned char* name = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &name, &len);
  if (len == 2 && name[0] == 'h' && name[1] == '2') return app_protocol::h2;
  return app_protocol::http1;
}

bool tls_context::load(std::string* error) {
  std::lock_guard lock(load_mutex_);
  ERR_clear_error();
  for (auto [path, key] : {std::pair{&files_.cert, "cert"}, std::pair{&files_.key, "key"},
                           std::pair{&files_.client_ca, "client_ca"}})
    if (!path->empty() && !readable(*path, error, key)) return false;

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // Connections read and write their socket directly (proxy/tls_socket.hpp). Read-ahead: one
  // recv takes whatever arrived, not a 5-byte record header and then its body. Released
  // buffers: an idle keep-alive connection does not hold OpenSSL's ~17 KiB read and write
  // buffers (they are taken again from malloc for the next record, as nginx does).
  SSL_CTX_set_mode(h, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(h, 1);
  if (SSL_CTX_set_cipher_list(h, tls12_ciphers) != 1 || SSL_CTX_set1_groups_list(h, groups) != 1) {
    *error = "tls: cannot set the cipher list: " + openssl_error();
    return false;
  }
  if (SSL_CTX_use_certificate_chain_file(h, files_.cert.c_str()) != 1) {
    *error = "tls.cert: \"" + files_.cert + "\" is not a PEM certificate: " + openssl_error();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(h, files_.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    *error = "tls.key: \"" + files_.key + "\" is not a PEM private key (or does not match " +
             files_.cert + "): " + openssl_error();
    return false;
  }
  if (SSL_CTX_check_private_key(h) != 1) {
    *error = "tls.key: \"" + files_.key + "\" does not match the certificate in \"" + files_.cert +
             "\": " + openssl_error();
    return false;
  }
  X509* leaf = SSL_CTX_get0_certificate(h);
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    *error = "tls.cert: \"" + files_.cert + "\" expired on " + asn1_time(X509_get0_notAfter(leaf));
    return false;
  }
  if (!files_.client_ca.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files_.client_ca.c_str());
    if (!names || SSL_CTX_load_verify_locations(h, files_.client_ca.c_str(), nullptr) != 1) {
      if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
      *error = "tls.client_ca: \"" + files_.client_ca +
               "\" has no PEM CA certificate: " + openssl_error();
      return false;
    }
    SSL_CTX_set_client_CA_list(h, names);
    SSL_CTX_set_verify(h, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  std::string sid_ctx;
  if (!session_context(h, !files_.client_ca.empty(), &sid_ctx) ||
      SSL_CTX_set_session_id_context(h, reinterpret_cast<const unsigned char*>(sid_ctx.data()),
                                     static_cast<unsigned int>(sid_ctx.size())) != 1) {
    *error = "tls: cannot set the session id context: " + openssl_error();
    return false;
  }
  SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(h, 20000);
  SSL_CTX_set_alpn_select_cb(h, select_alpn, files_.http2 ? h : nullptr);
  // Tickets issued before a reload stay valid after it: the new context takes the old keys.
  // They are resumed only while the client certificate policy is the same (session_context).
  if (auto old = current()) {
    unsigned char keys[80];
    if (SSL_CTX_get_tlsext_ticket_keys(old->native_handle(), keys, sizeof keys) == 1)
      SSL_CTX_set_tlsext_ticket_keys(h, keys, sizeof keys);
    OPENSSL_cleanse(keys, sizeof keys);
  }
  describe_ = "serial " + serial_of(leaf) + ", expires " + asn1_time(X509_get0_notAfter(leaf));
  current_.store(std::move(ctx), std::memory_order_release);
  return true;
}

std::string tls_context::describe() const {
  std::lock_guard lock(load_mutex_);
  return describe_;
}

}  // namespace ob::server
