// Provider base URLs and the extension keys (listen, workers, limits, timeouts).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "config/parse_helpers.hpp"
#include "config/redacted.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;
using ::testing::ElementsAre;

struct good_url {
  std::string_view in;
  bool tls;
  std::string_view host;
  std::uint16_t port;
  std::string_view prefix;
  std::string_view host_header;
};

TEST(BaseUrl, ValidTable) {
  const good_url table[] = {
      {"http://api.example.com", false, "api.example.com", 80, "", "api.example.com"},
      {"https://api.example.com", true, "api.example.com", 443, "", "api.example.com"},
      {"HTTPS://API.Example.com", true, "api.example.com", 443, "", "api.example.com"},
      {"https://api.example.com/", true, "api.example.com", 443, "", "api.example.com"},
      {"https://h/openai", true, "h", 443, "/openai", "h"},
      {"https://h/openai/", true, "h", 443, "/openai", "h"},
      {"https://h/a/b/v1//", true, "h", 443, "/a/b/v1", "h"},
      {"http://localhost:11434", false, "localhost", 11434, "", "localhost:11434"},
      {"http://h:80", false, "h", 80, "", "h"},
      {"https://h:443/x", true, "h", 443, "/x", "h"},
      {"http://h:443", false, "h", 443, "", "h:443"},
      {"https://h:80", true, "h", 80, "", "h:80"},
      {"http://h:1", false, "h", 1, "", "h:1"},
      {"http://h:65535", false, "h", 65535, "", "h:65535"},
      {"http://127.0.0.1:8000/v1", false, "127.0.0.1", 8000, "/v1", "127.0.0.1:8000"},
      {"http://[::1]:8080", false, "::1", 8080, "", "[::1]:8080"},
      {"https://[2001:db8::1]", true, "2001:db8::1", 443, "", "[2001:db8::1]"},
      {"https://[2001:db8::1]/p/", true, "2001:db8::1", 443, "/p", "[2001:db8::1]"},
      {"http://my_host.internal", false, "my_host.internal", 80, "", "my_host.internal"},
  };
  for (const auto& t : table) {
    std::string err;
    auto u = parse_base_url(t.in, &err);
    ASSERT_TRUE(u) << t.in << ": " << err;
    EXPECT_EQ(u->tls, t.tls) << t.in;
    EXPECT_EQ(u->host, t.host) << t.in;
    EXPECT_EQ(u->port, t.port) << t.in;
    EXPECT_EQ(u->path_prefix, t.prefix) << t.in;
    EXPECT_EQ(u->host_header, t.host_header) << t.in;
  }
}

TEST(BaseUrl, InvalidTable) {
  const std::pair<std::string_view, std::string_view> table[] = {
      {"htp://x", "\"htp://x\" is not an http(s) URL"},
      {"ftp://x", "\"ftp://x\" is not an http(s) URL"},
      {"api.openai.com", "\"api.openai.com\" is not an http(s) URL"},
      {"", "\"\" is not an http(s) URL"},
      {"http:/x", "\"http:/x\" is not an http(s) URL"},
      {"http://", "\"http://\" has no host"},
      {"http:///v1", "\"http:///v1\" has no host"},
      {"http://:8080", "\"http://:8080\" has no host"},
      {"http://h:0", "\"http://h:0\" has an invalid port \"0\" (expected 1-65535)"},
      {"http://h:65536", "\"http://h:65536\" has an invalid port \"65536\" (expected 1-65535)"},
      {"http://h:99999999", "has an invalid port"},
      {"http://h:-1", "has an invalid port"},
      {"http://h:8o", "has an invalid port"},
      {"http://h:", "has an empty port"},
      {"http://h?x=1", "must not contain a query or fragment"},
      {"http://h/v1?x=1", "must not contain a query or fragment"},
      {"http://h/#frag", "must not contain a query or fragment"},
      {"http://user:pw@h", "must not contain user info"},
      {"http://[::1", "unclosed '['"},
      {"http://[nothex]:80", "invalid IPv6 address"},
      {"http://[::1]x", "junk after the IPv6 address"},
      {"http://::1:80", "more than one ':'"},
      {"http://ho st", "invalid host"},
      {"http://h/a b", "space, quote or control character"},
      {"http://999.1.1.1", "invalid host"},
  };
  for (const auto& [in, want] : table) {
    std::string err;
    EXPECT_FALSE(parse_base_url(in, &err)) << in;
    EXPECT_NE(err.find(want), std::string::npos) << in << " -> " << err;
  }
}

// A credential put in the URL is the reason for the refusal: the error, which goes to the log
// and the admin API's reload answers, must not repeat it.
TEST(BaseUrl, UserInfoIsMaskedInEveryError) {
  for (const char* in :
       {"https://user:sk-live-XXX@api.example", "https://sk-live-XXX@api.example/v1",
        "htps://user:sk-live-XXX@api.example", "https://a@b:sk-live-XXX@h:99999",
        // Unescaped '/', '?', '#' in a password: not a path, query or fragment to show.
        "https://bob:sk-live-XXX/ss@h", "https://bob:12/sk-live-XXX@h/v1",
        "https://bob:sk-live-XXX?x@h", "https://bob:sk-live#XXX@h",
        "https://bob:sk/live-XXX"
        "@h:99999"}) {
    std::string err;
    EXPECT_FALSE(parse_base_url(in, &err)) << in;
    EXPECT_EQ(err.find("sk-live"), std::string::npos) << err;
    EXPECT_EQ(err.find("XXX"), std::string::npos) << err;
    EXPECT_EQ(err.find("bob"), std::string::npos) << err;
    EXPECT_NE(err.find("***@"), std::string::npos) << err;
  }
  std::string err;
  EXPECT_FALSE(parse_base_url("https://user:pw@h/v1", &err));
  EXPECT_EQ(
      err,
      R"("https://***@h/v1" must not contain user info (put the credential in "key"; an @ in the path is written %40))");
  // An @ in a path cannot be told from a password with a slash: it is written %40.
  auto url = parse_base_url("https://h:8080/models/m%40v1", &err);
  ASSERT_TRUE(url);
  EXPECT_EQ(url->path_prefix, "/models/m%40v1");
}

TEST(BaseUrl, ErrorNamesTheProviderPath) {
  auto r = parse_text(R"({"providers":[
      {"group":"g","name":"m","base":"https://ok","key":"k"},
      {"group":"g","name":"m","base":"https://ok2","key":"k"},
      {"group":"g","name":"m","base":"htp://x","key":"k"}],"security":["t"]})");
  EXPECT_THAT(errors(r), ElementsAre("providers[2].base: \"htp://x\" is not an http(s) URL"));
}

TEST(Listen, ValidForms) {
  for (auto l : {"0.0.0.0:8080", "127.0.0.1:1", ":8080", "*:8080", "[::1]:8080", "[::]:443",
                 "localhost:65535", "gateway.internal:80"}) {
    auto r = parse_text(doc("\"listen\":\"" + std::string(l) + "\""));
    ASSERT_TRUE(r.ok()) << l << "\n" << dump(r);
    EXPECT_EQ(r.cfg->listen, l);
  }
}

TEST(Listen, InvalidForms) {
  const std::pair<std::string_view, std::string_view> table[] = {
      {"8080", "expected \"host:port\""},
      {"localhost", "expected"},
      {"", "expected"},
      {"[::1]", "expected"},
      {"h:0", "invalid port"},
      {"h:65536", "invalid port"},
      {"h:", "empty port"},
      {"::1:8080", "must be in brackets"},
      {"[::1:8080", "unclosed"},
      {"[zz]:80", "invalid IPv6"},
      {"bad host:80", "invalid host"},
      {"300.1.1.1:80", "invalid host"},
  };
  for (const auto& [l, want] : table) {
    auto r = parse_text(doc("\"listen\":\"" + std::string(l) + "\""));
    EXPECT_FALSE(r.ok()) << l;
    EXPECT_TRUE(has_error(r, "listen", want)) << l << "\n" << dump(r);
  }
  auto r = parse_text(doc(R"("listen":"h:0")"));
  EXPECT_THAT(errors(r), ElementsAre("listen: \"h:0\": invalid port (expected 1-65535)"));
}

TEST(Workers, Range) {
  EXPECT_EQ(parse_text(doc(R"("workers":0)")).cfg->workers, 0u);
  EXPECT_EQ(parse_text(doc(R"("workers":4)")).cfg->workers, 4u);
  EXPECT_EQ(parse_text(doc(R"("workers":256)")).cfg->workers, 256u);
  EXPECT_THAT(errors(parse_text(doc(R"("workers":257)"))),
              ElementsAre("workers: must be between 0 and 256, got 257"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("workers":-1)")), "workers", "between 0 and 256"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("workers":2.5)")), "workers", "an integer"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("workers":true)")), "workers", "got a boolean"));
}

TEST(Limits, ValuesAndBounds) {
  auto r = parse_text(doc(
      R"("limits":{"max_header_bytes":32768,"max_body_bytes":1e6,"max_response_bytes":1048576})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->limits.max_header_bytes, 32768u);
  EXPECT_EQ(r.cfg->limits.max_body_bytes, 1000000u);
  EXPECT_EQ(r.cfg->limits.max_response_bytes, 1048576u);
  // Only the given one changes.
  r = parse_text(doc(R"("limits":{"max_body_bytes":10})"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.cfg->limits.max_header_bytes, limits{}.max_header_bytes);
  EXPECT_EQ(r.cfg->limits.max_body_bytes, 10u);

  EXPECT_THAT(errors(parse_text(doc(R"("limits":{"max_body_bytes":0})"))),
              ElementsAre("limits.max_body_bytes: must be between 1 and 4294967296, got 0"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("limits":{"max_header_bytes":100})")),
                        "limits.max_header_bytes", "between 1024 and 1048576"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("limits":{"max_response_bytes":1e300})")),
                        "limits.max_response_bytes", "between"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("limits":{"max_body_bytes":"1MB"})")),
                        "limits.max_body_bytes", "must be an integer, got a string"));
}

TEST(Timeouts, SecondsToMillis) {
  auto r = parse_text(doc(R"("timeouts":{"connect":1.5,"first_byte":60,"idle":0.0001,)"
                          R"("total":3600,"client_header":2,"client_body":3,"keepalive":4,)"
                          R"("shutdown_grace":0.25,"client_body_total":5,"stream_hold":0.5,)"
                          R"("pool_idle":4.5})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  const auto& t = r.cfg->timeouts;
  EXPECT_EQ(t.connect, millis(1500));
  EXPECT_EQ(t.first_byte, millis(60'000));
  EXPECT_EQ(t.idle, millis(1));  // rounded up, never 0
  EXPECT_EQ(t.total, millis(3'600'000));
  EXPECT_EQ(t.client_header, millis(2000));
  EXPECT_EQ(t.client_body, millis(3000));
  EXPECT_EQ(t.client_body_total, millis(5000));
  EXPECT_EQ(t.keepalive, millis(4000));
  EXPECT_EQ(t.shutdown_grace, millis(250));
  EXPECT_EQ(t.stream_hold, millis(500));
  EXPECT_EQ(config{}.timeouts.stream_hold, millis(2000));
  EXPECT_EQ(t.pool_idle, millis(4500));
  EXPECT_EQ(config{}.timeouts.pool_idle, millis(50'000));
  // The admin API's view of the running config shows every one of them.
  auto shown = boost::json::parse(redacted_json(*r.cfg)).at("timeouts").as_object();
  EXPECT_EQ(shown.at("client_body_total").to_number<double>(), 5.0);
  EXPECT_EQ(shown.at("stream_hold").to_number<double>(), 0.5);
  EXPECT_EQ(shown.at("shutdown_grace").to_number<double>(), 0.25);
  EXPECT_EQ(shown.at("pool_idle").to_number<double>(), 4.5);
}

TEST(Timeouts, Invalid) {
  EXPECT_THAT(errors(parse_text(doc(R"("timeouts":{"idle":0})"))),
              ElementsAre("timeouts.idle: must be > 0 and <= 604800 seconds, got 0"));
  EXPECT_TRUE(has_error(parse_text(doc(R"("timeouts":{"idle":-2.5})")), "timeouts.idle", "> 0"));
  EXPECT_TRUE(
      has_error(parse_text(doc(R"("timeouts":{"total":1e9})")), "timeouts.total", "604800"));
  EXPECT_THAT(errors(parse_text(doc(R"("timeouts":{"connect":"5s"})"))),
              ElementsAre("timeouts.connect: must be a number of seconds, got a string"));
}

TEST(Extensions, FullExampleFromTheDocs) {
  auto r = parse_text(R"({
    "listen": "0.0.0.0:8080",
    "workers": 0,
    "providers": [
      {"group": "fast", "name": "gpt-4o-mini", "base": "https://api.openai.com",
       "key": "${OPENAI_API_KEY}", "weight": 3},
      {"group": "fast", "name": "llama3.1:8b", "base": "http://127.0.0.1:11434/v1", "key": ""}
    ],
    "security": ["${OPENBRIDGE_CLIENT_TOKEN}"],
    "limits": {"max_header_bytes": 65536, "max_body_bytes": 67108864,
               "max_response_bytes": 268435456},
    "timeouts": {"connect": 10, "first_byte": 300, "idle": 120, "total": 900,
                 "client_header": 30, "client_body": 120, "keepalive": 75,
                 "shutdown_grace": 30}
  })",
                      fake_env({{"OPENAI_API_KEY", "sk-x"}, {"OPENBRIDGE_CLIENT_TOKEN", "c"}}));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].weight, 3u);
  EXPECT_EQ(r.cfg->providers[1].url.path_prefix, "/v1");
  EXPECT_EQ(r.cfg->providers[1].url.host_header, "127.0.0.1:11434");
  EXPECT_THAT(warnings(r), ElementsAre("warning: providers[1].key: empty: requests to this "
                                       "provider carry no Authorization header"));
  const config defaults;
  EXPECT_EQ(r.cfg->timeouts.total, defaults.timeouts.total);
  EXPECT_EQ(r.cfg->limits.max_body_bytes, defaults.limits.max_body_bytes);
}

}  // namespace
}  // namespace ob::config
