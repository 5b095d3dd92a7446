// The TLS listener's context: loads a usable pair, refuses a broken one (naming the key) and
// keeps the context in force.
#include "server/tls_context.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace ob::server {
namespace {

namespace fs = std::filesystem;

// A self-signed P-256 certificate valid from `from_days` to `to_days` (relative to now).
struct pair_files {
  std::string cert, key;
};

pair_files make_pair(const fs::path& dir, const std::string& name, long serial, long from_days = -1,
                     long to_days = 2) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
  X509_set_pubkey(x, pkey);
  X509_NAME* n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("t"), -1,
                             -1, 0);
  X509_set_issuer_name(x, n);
  X509_sign(x, pkey, EVP_sha256());
  pair_files p{(dir / (name + ".pem")).string(), (dir / (name + ".key")).string()};
  std::FILE* f = std::fopen(p.cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(p.key.c_str(), "w");
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return p;
}

class TlsContext : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ob-tls-ctx-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  config::tls_config files(const pair_files& p) {
    config::tls_config t;
    t.enabled = true;
    t.cert = (dir_ / "cert.pem").string();
    t.key = (dir_ / "key.pem").string();
    fs::copy_file(p.cert, t.cert, fs::copy_options::overwrite_existing);
    fs::copy_file(p.key, t.key, fs::copy_options::overwrite_existing);
    return t;
  }
  fs::path dir_;
};

TEST_F(TlsContext, LoadsAPairAndDescribesIt) {
  auto a = make_pair(dir_, "a", 0x1234);
  tls_context ctx(files(a));
  std::string err;
  ASSERT_TRUE(ctx.load(&err)) << err;
  ASSERT_NE(ctx.current(), nullptr);
  EXPECT_NE(ctx.describe().find("serial 1234"), std::string::npos) << ctx.describe();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx.current()->native_handle()), TLS1_2_VERSION);
}

TEST_F(TlsContext, BrokenPairsAreRefusedNamingTheKeyAndTheOldOneStays) {
  auto a = make_pair(dir_, "a", 0x1234);
  auto b = make_pair(dir_, "b", 0x5678);
  auto expired = make_pair(dir_, "old", 0x9, -10, -1);
  auto t = files(a);
  tls_context ctx(t);
  std::string err;
  ASSERT_TRUE(ctx.load(&err)) << err;
  auto in_force = ctx.current();

  struct broken {
    const char* name;
    std::function<void()> write;
    const char* expect;
  };
  const broken cases[] = {
      {"mismatched key", [&] { fs::copy_file(b.key, t.key, fs::copy_options::overwrite_existing); },
       "tls.key: "},
      {"missing cert", [&] { fs::remove(t.cert); }, "tls.cert: cannot read"},
      {"not PEM",
       [&] {
         std::FILE* f = std::fopen(t.cert.c_str(), "w");
         std::fputs("x\n", f);
         std::fclose(f);
       },
       "is not a PEM certificate"},
      {"expired",
       [&] {
         fs::copy_file(expired.cert, t.cert, fs::copy_options::overwrite_existing);
         fs::copy_file(expired.key, t.key, fs::copy_options::overwrite_existing);
       },
       "tls.cert: "},
  };
  for (const auto& c : cases) {
    fs::copy_file(a.cert, t.cert, fs::copy_options::overwrite_existing);
    fs::copy_file(a.key, t.key, fs::copy_options::overwrite_existing);
    c.write();
    err.clear();
    EXPECT_FALSE(ctx.load(&err)) << c.name;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
    EXPECT_EQ(ctx.current(), in_force) << c.name;
    EXPECT_NE(ctx.describe().find("serial 1234"), std::string::npos) << c.name;
  }
  EXPECT_NE(err.find("expired"), std::string::npos) << err;

  // A good new pair replaces it; the old context object stays valid for its holders.
  fs::copy_file(b.cert, t.cert, fs::copy_options::overwrite_existing);
  fs::copy_file(b.key, t.key, fs::copy_options::overwrite_existing);
  ASSERT_TRUE(ctx.load(&err)) << err;
  EXPECT_NE(ctx.current(), in_force);
  EXPECT_NE(ctx.describe().find("serial 5678"), std::string::npos);
  EXPECT_NE(SSL_CTX_get0_certificate(in_force->native_handle()), nullptr);
}

TEST_F(TlsContext, ClientCaMustHoldACertificate) {
  auto a = make_pair(dir_, "a", 1);
  auto t = files(a);
  t.client_ca = (dir_ / "ca.pem").string();
  {
    std::FILE* f = std::fopen(t.client_ca.c_str(), "w");
    std::fputs("not a certificate\n", f);
    std::fclose(f);
  }
  tls_context bad(t);
  std::string err;
  EXPECT_FALSE(bad.load(&err));
  EXPECT_NE(err.find("tls.client_ca: "), std::string::npos) << err;
  fs::copy_file(a.cert, t.client_ca, fs::copy_options::overwrite_existing);
  tls_context good(t);
  ASSERT_TRUE(good.load(&err)) << err;
  EXPECT_EQ(SSL_CTX_get_verify_mode(good.current()->native_handle()),
            SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
}

}  // namespace
}  // namespace ob::server
