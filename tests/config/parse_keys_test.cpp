// The "keys" extension, providers' "limits" and "price", limits.default_output_tokens.
#include "config/parse_keys.hpp"
#include "config/parse_helpers.hpp"

namespace ob::config {
namespace {

using testing::dump;
using testing::fake_env;
using testing::has_error;
using testing::parse_text;

constexpr const char* providers =
    R"("providers":[{"group":"g1","name":"m","base":"http://127.0.0.1:1"},)"
    R"({"group":"g2","name":"m","base":"http://127.0.0.1:2","price":{"input":1.25,"output":10}}])";

std::string keys_doc(std::string_view rest) {
  return std::string("{") + providers + "," + std::string(rest) + "}";
}

const std::string abc_sha =  // sha256("abc")
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(ConfigKeys, FullKeyReadsEveryField) {
  auto r = parse_text(keys_doc(R"("keys":[{"name":"search-team","token":"${TOK}","groups":["g2"],
      "limits":{"rpm":600,"rpd":10000,"tpm":90000,"tpd":1000000,"concurrency":8,"burst":20,
                "default_output_tokens":256},
      "budget":{"usd":12.5,"period":"week"},"expires":"2027-01-31T00:00:00Z","disabled":false,
      "labels":{"team":"search"}}])"),
                      fake_env({{"TOK", "abc"}}));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.cfg->keys.size(), 1u);
  const auto& k = r.cfg->keys[0];
  EXPECT_EQ(k.name, "search-team");
  char hex[65] = {};
  for (int i = 0; i < 32; ++i) std::snprintf(hex + 2 * i, 3, "%02x", k.digest[i]);
  EXPECT_EQ(std::string(hex), abc_sha);
  EXPECT_FALSE(k.all_groups);
  EXPECT_EQ(k.groups, std::vector<std::string>{"g2"});
  EXPECT_EQ(k.limits.rpm, 600u);
  EXPECT_EQ(k.limits.rpd, 10000u);
  EXPECT_EQ(k.limits.tpm, 90000u);
  EXPECT_EQ(k.limits.tpd, 1000000u);
  EXPECT_EQ(k.limits.concurrency, 8u);
  EXPECT_EQ(k.limits.burst, 20u);
  EXPECT_EQ(k.limits.default_output_tokens, 256u);
  EXPECT_EQ(k.budget.unit, key_budget::unit_kind::usd);
  EXPECT_EQ(k.budget.amount, 12'500'000u);
  EXPECT_EQ(k.budget.period, key_budget::period_kind::week);
  EXPECT_EQ(k.expires_ms, 1801353600000LL);
  EXPECT_EQ(k.labels.at("team"), "search");
  EXPECT_FALSE(k.from_security);
  EXPECT_EQ(r.cfg->providers[1].price->input, 1'250'000u);
  EXPECT_EQ(r.cfg->providers[1].price->output, 10'000'000u);
  EXPECT_FALSE(r.cfg->providers[0].price);
}

TEST(ConfigKeys, TokenSha256AndSecurityBecomeKeys) {
  auto r = parse_text(keys_doc(R"("security":["abc"],"keys":[{"name":"k","token_sha256":")" +
                               abc_sha.substr(0, 63) + R"(0"}])"));
  ASSERT_TRUE(r.ok()) << dump(r);
  ASSERT_EQ(r.cfg->keys.size(), 2u);
  EXPECT_TRUE(r.cfg->keys[0].from_security);
  EXPECT_EQ(r.cfg->keys[0].name, "key-ba7816bf");
  EXPECT_TRUE(r.cfg->keys[0].all_groups);
  EXPECT_EQ(r.cfg->keys[1].name, "k");
  EXPECT_EQ(r.cfg->keys[1].digest[31], 0xa0);
}

TEST(ConfigKeys, KeysAloneNeedNoSecurity) {
  auto r = parse_text(keys_doc(R"("keys":[{"name":"k","token":"t"}])"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->security.empty());
  EXPECT_EQ(r.cfg->limits.default_output_tokens, 1024u);
}

TEST(ConfigKeys, MaxWait) {
  auto r = parse_text(keys_doc(R"("limits":{"max_wait":2.5,"max_waiting":7},
      "keys":[{"name":"a","token":"t","limits":{"max_wait":0}},{"name":"b","token":"u"}])"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->limits.max_wait.count(), 2500);
  EXPECT_EQ(r.cfg->limits.max_waiting, 7u);
  EXPECT_EQ(r.cfg->keys[0].limits.max_wait->count(), 0);
  EXPECT_FALSE(r.cfg->keys[1].limits.max_wait);
}

TEST(ConfigKeys, GlobalDefaultOutputTokensAndProviderLimits) {
  auto r = parse_text(keys_doc(R"("security":["t"],"limits":{"default_output_tokens":77})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->limits.default_output_tokens, 77u);
  auto p = parse_text(
      R"({"security":["t"],"providers":[{"group":"g","name":"m","base":"http://h",
          "limits":{"rpm":5,"tpm":1000,"concurrency":2}}]})");
  ASSERT_TRUE(p.ok()) << dump(p);
  EXPECT_EQ(p.cfg->providers[0].limits.rpm, 5u);
  EXPECT_EQ(p.cfg->providers[0].limits.tpm, 1000u);
  EXPECT_EQ(p.cfg->providers[0].limits.concurrency, 2u);
}

// Every error path: {name, document, path of the error, part of its message}.
struct error_case {
  const char* name;
  std::string text;
  const char* path;
  const char* part;
};

TEST(ConfigKeys, ErrorTable) {
  const error_case cases[] = {
      {"keys not an array", keys_doc(R"("keys":{})"), "keys", "must be an array"},
      {"entry not an object", keys_doc(R"("keys":[1])"), "keys[0]", "must be an object"},
      {"name missing", keys_doc(R"("keys":[{"token":"t"}])"), "keys[0].name", "is required"},
      {"name empty", keys_doc(R"("keys":[{"name":"","token":"t"}])"), "keys[0].name",
       "must not be empty"},
      {"duplicate name", keys_doc(R"("keys":[{"name":"a","token":"t1"},{"name":"b","token":"t2"},
          {"name":"c","token":"t3"},{"name":"a","token":"t4"}])"),
       "keys[3].name", "already the name of keys[0]"},
      // sha256("abc") = ba7816bf...: the name the security entry "abc" gets in logs and metrics.
      {"name of a security entry",
       keys_doc(R"("security":["abc"],"keys":[{"name":"key-ba7816bf","token":"t"}])"),
       "keys[0].name", "the name the security entry [0] gets"},
      {"token missing", keys_doc(R"("keys":[{"name":"a"}])"), "keys[0].token", "is required"},
      {"token and digest",
       keys_doc(R"("keys":[{"name":"a","token":"t","token_sha256":")" + abc_sha + R"("}])"),
       "keys[0]", "not both"},
      {"token empty", keys_doc(R"("keys":[{"name":"a","token":""}])"), "keys[0].token",
       "must not be empty"},
      {"token env unset", keys_doc(R"("keys":[{"name":"a","token":"${NOPE}"}])"), "keys[0].token",
       "NOPE is not set"},
      {"digest short", keys_doc(R"("keys":[{"name":"a","token_sha256":"abcd"}])"),
       "keys[0].token_sha256", "64 hexadecimal"},
      {"digest not hex",
       keys_doc(R"("keys":[{"name":"a","token_sha256":")" + std::string(64, 'g') + R"("}])"),
       "keys[0].token_sha256", "64 hexadecimal"},
      {"same token twice",
       keys_doc(R"("keys":[{"name":"a","token":"t"},{"name":"b","token":"t"}])"), "keys",
       "same token"},
      {"groups not array", keys_doc(R"("keys":[{"name":"a","token":"t","groups":"g1"}])"),
       "keys[0].groups", "must be an array"},
      {"unknown group", keys_doc(R"("keys":[{"name":"a","token":"t","groups":["g1","nope"]}])"),
       "keys[0].groups[1]", "unknown group \"nope\""},
      {"limit negative", keys_doc(R"("keys":[{"name":"a","token":"t","limits":{"rpm":-1}}])"),
       "keys[0].limits.rpm", "between"},
      {"limit fraction", keys_doc(R"("keys":[{"name":"a","token":"t","limits":{"tpm":1.5}}])"),
       "keys[0].limits.tpm", "an integer"},
      {"limits not object", keys_doc(R"("keys":[{"name":"a","token":"t","limits":5}])"),
       "keys[0].limits", "must be an object"},
      {"default output zero",
       keys_doc(R"("keys":[{"name":"a","token":"t","limits":{"default_output_tokens":0}}])"),
       "keys[0].limits.default_output_tokens", "between"},
      {"budget empty", keys_doc(R"("keys":[{"name":"a","token":"t","budget":{}}])"),
       "keys[0].budget", "needs \"tokens\" or \"usd\""},
      {"budget both",
       keys_doc(R"("keys":[{"name":"a","token":"t","budget":{"tokens":1,"usd":1}}])"),
       "keys[0].budget", "not both"},
      {"budget period",
       keys_doc(R"("keys":[{"name":"a","token":"t","budget":{"tokens":1,"period":"year"}}])"),
       "keys[0].budget.period", "must be one of"},
      {"budget tokens zero", keys_doc(R"("keys":[{"name":"a","token":"t","budget":{"tokens":0}}])"),
       "keys[0].budget.tokens", "between"},
      {"budget usd zero",
       keys_doc(R"("keys":[{"name":"a","token":"t","groups":["g2"],"budget":{"usd":0}}])"),
       "keys[0].budget.usd", "must be > 0"},
      {"usd budget unpriced provider",
       keys_doc(R"("keys":[{"name":"a","token":"t","budget":{"usd":5}}])"), "keys[0].budget.usd",
       "providers[0].price is not set"},
      {"expires bad",
       keys_doc(R"("keys":[{"name":"a","token":"t","expires":"2027-02-30T00:00:00Z"}])"),
       "keys[0].expires", "RFC 3339"},
      {"expires local time",
       keys_doc(R"("keys":[{"name":"a","token":"t","expires":"2027-01-01T00:00:00+02:00"}])"),
       "keys[0].expires", "RFC 3339"},
      {"disabled not bool", keys_doc(R"("keys":[{"name":"a","token":"t","disabled":"yes"}])"),
       "keys[0].disabled", "a boolean"},
      {"labels not object", keys_doc(R"("keys":[{"name":"a","token":"t","labels":[]}])"),
       "keys[0].labels", "must be an object"},
      {"label not string", keys_doc(R"("keys":[{"name":"a","token":"t","labels":{"x":1}}])"),
       "keys[0].labels.x", "a string"},
      {"provider limit",
       R"({"security":["t"],"providers":[{"group":"g","name":"m","base":"http://h","limits":{"rpm":"x"}}]})",
       "providers[0].limits.rpm", "an integer"},
      {"price missing output",
       R"({"security":["t"],"providers":[{"group":"g","name":"m","base":"http://h","price":{"input":1}}]})",
       "providers[0].price.output", "is required"},
      {"price negative",
       R"({"security":["t"],"providers":[{"group":"g","name":"m","base":"http://h","price":{"input":-1,"output":1}}]})",
       "providers[0].price.input", "between"},
      {"max_wait too long",
       keys_doc(R"("keys":[{"name":"a","token":"t","limits":{"max_wait":61}}])"),
       "keys[0].limits.max_wait", "between 0 and 60"},
      {"global max_wait negative", keys_doc(R"("security":["t"],"limits":{"max_wait":-1})"),
       "limits.max_wait", "between 0 and 60"},
      {"global max_waiting", keys_doc(R"("security":["t"],"limits":{"max_waiting":1.5})"),
       "limits.max_waiting", "an integer"},
      {"global default output",
       keys_doc(R"("security":["t"],"limits":{"default_output_tokens":-3})"),
       "limits.default_output_tokens", "between"},
  };
  for (const auto& c : cases) {
    auto r = parse_text(c.text);
    EXPECT_FALSE(r.ok()) << c.name;
    EXPECT_TRUE(has_error(r, c.path, c.part)) << c.name << "\n" << dump(r);
  }
}

TEST(ConfigKeys, SecretsNeverInDiagnostics) {
  auto r = parse_text(keys_doc(
      R"("keys":[{"name":"a","token":"sekrit-1 "},{"name":"a","token_sha256":"sekrit-2"}])"));
  EXPECT_FALSE(r.ok());
  for (const auto& d : r.diagnostics) {
    EXPECT_EQ(d.message.find("sekrit"), std::string::npos) << d.to_string();
  }
}

TEST(ConfigKeys, Rfc3339) {
  using detail::parse_rfc3339_utc;
  EXPECT_EQ(parse_rfc3339_utc("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_utc("2024-02-29T12:00:00.5Z"), 1709208000500LL);
  EXPECT_EQ(parse_rfc3339_utc("2000-03-01t00:00:00+00:00"), 951868800000LL);
  EXPECT_FALSE(parse_rfc3339_utc("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339_utc("2023-01-01T24:00:00Z"));
  EXPECT_FALSE(parse_rfc3339_utc("2023-01-01"));
  EXPECT_FALSE(parse_rfc3339_utc("2023-01-01T00:00:00"));
  EXPECT_FALSE(parse_rfc3339_utc("2023-01-01T00:00:00.Z"));
}

}  // namespace
}  // namespace ob::config
