// Config parsing: the old OpenResty file, every validation rule with its exact path,
// ${ENV} expansion, unknown and duplicate keys, malformed JSON, file loading.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "config/parse_helpers.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Byte for byte the example from the old gateway's README.
constexpr std::string_view old_readme_file = R"({
    "providers": [
        {
            "group": "fast",
            "name": "gpt-4o-mini",
            "base": "https://api.openai.com",
            "key": "sk-abcdefghijklmnopqrstuvwxyz"
        }
    ],
    "security": [
        "sk-abcdefghijklmnopqrstuvwxyz"
    ]
}
)";

TEST(ConfigParse, OldReadmeFileLoadsWithoutDiagnostics) {
  auto r = parse_text(old_readme_file);
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  const auto& c = *r.cfg;
  ASSERT_EQ(c.providers.size(), 1u);
  const auto& p = c.providers[0];
  EXPECT_EQ(p.group, "fast");
  EXPECT_EQ(p.name, "gpt-4o-mini");
  EXPECT_EQ(p.base, "https://api.openai.com");
  EXPECT_EQ(p.key, "sk-abcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(p.weight, 1u);
  EXPECT_TRUE(p.url.tls);
  EXPECT_EQ(p.url.host, "api.openai.com");
  EXPECT_EQ(p.url.port, 443);
  EXPECT_EQ(p.url.path_prefix, "");
  EXPECT_EQ(p.url.host_header, "api.openai.com");
  EXPECT_THAT(c.security, ElementsAre("sk-abcdefghijklmnopqrstuvwxyz"));
}

TEST(ConfigParse, ExtensionDefaultsWhenAbsent) {
  auto r = parse_text(old_readme_file);
  ASSERT_TRUE(r.ok());
  const config defaults;
  EXPECT_EQ(r.cfg->listen, "0.0.0.0:8080");
  EXPECT_EQ(r.cfg->workers, 0u);
  EXPECT_EQ(r.cfg->limits.max_header_bytes, defaults.limits.max_header_bytes);
  EXPECT_EQ(r.cfg->limits.max_body_bytes, defaults.limits.max_body_bytes);
  EXPECT_EQ(r.cfg->limits.max_response_bytes, defaults.limits.max_response_bytes);
  EXPECT_EQ(r.cfg->timeouts.connect, defaults.timeouts.connect);
  EXPECT_EQ(r.cfg->timeouts.shutdown_grace, defaults.timeouts.shutdown_grace);
}

TEST(ConfigParse, RootMustBeAnObject) {
  for (auto text : {"[]", "42", "\"x\"", "null"}) {
    auto r = parse_text(text);
    EXPECT_FALSE(r.ok());
    ASSERT_EQ(r.diagnostics.size(), 1u) << text;
    EXPECT_TRUE(has_error(r, "", "must be a JSON object")) << dump(r);
  }
}

TEST(ConfigParse, ProvidersAndSecurityAreRequired) {
  auto r = parse_text("{}");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r),
              ElementsAre("providers: is required", "security: is required (or \"keys\")"));
}

TEST(ConfigParse, ProvidersShape) {
  auto r = parse_text(R"({"providers":{},"security":["t"]})");
  EXPECT_THAT(errors(r),
              ElementsAre("providers: must be an array of provider objects, got an object"));
  r = parse_text(R"({"providers":[],"security":["t"]})");
  EXPECT_THAT(errors(r), ElementsAre("providers: must list at least one provider"));
  r = parse_text(R"({"providers":["x"],"security":["t"]})");
  EXPECT_THAT(errors(r), ElementsAre("providers[0]: must be an object, got a string"));
}

TEST(ConfigParse, ProviderRequiredFields) {
  auto r = parse_text(doc("", R"("name":"m","base":"http://h","key":"k")"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].group: is required"));
  r = parse_text(doc("", R"("group":"g","base":"http://h","key":"k")"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].name: is required"));
  r = parse_text(doc("", R"("group":"g","name":"m","key":"k")"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].base: is required"));
}

TEST(ConfigParse, ProviderFieldsMustBeNonEmptyStrings) {
  auto r = parse_text(doc("", R"("group":"","name":5,"base":null,"key":"k")"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].group: must not be empty",
                                     "providers[0].name: must be a string, got a number",
                                     "providers[0].base: must be a string, got null"));
  r = parse_text(doc("", R"("group":"a\nb","name":"m","base":"http://h","key":"k")"));
  EXPECT_TRUE(has_error(r, "providers[0].group", "control characters")) << dump(r);
}

TEST(ConfigParse, EmptyOrMissingKeyIsAllowedWithAWarning) {
  auto r =
      parse_text(doc("", R"("group":"g","name":"m","base":"http://localhost:11434","key":"")"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].key, "");
  EXPECT_TRUE(has_warning(r, "providers[0].key", "no Authorization header"));
  r = parse_text(doc("", R"("group":"g","name":"m","base":"http://localhost:11434")"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(has_warning(r, "providers[0].key", "missing"));
}

TEST(ConfigParse, KeyTypeAndHeaderInjection) {
  auto r = parse_text(doc("", R"("group":"g","name":"m","base":"http://h","key":42)"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].key: must be a string, got a number"));
  // The key goes into an upstream header line; CR/LF would inject headers.
  r = parse_text(doc("", R"("group":"g","name":"m","base":"http://h","key":"k\r\nX-Evil: 1")"));
  EXPECT_THAT(errors(r), ElementsAre("providers[0].key: must not contain control characters"));
}

TEST(ConfigParse, Weight) {
  auto with = [](std::string w) {
    return parse_text(
        doc("", R"("group":"g","name":"m","base":"http://h","key":"k","weight":)" + w));
  };
  EXPECT_EQ(with("3").cfg->providers[0].weight, 3u);
  EXPECT_EQ(with("2.0").cfg->providers[0].weight, 2u);
  EXPECT_EQ(with("1000000").cfg->providers[0].weight, 1000000u);
  EXPECT_THAT(errors(with("0")),
              ElementsAre("providers[0].weight: must be between 1 and 1000000, got 0"));
  EXPECT_TRUE(has_error(with("-1"), "providers[0].weight", "between 1 and"));
  EXPECT_THAT(errors(with("1.5")),
              ElementsAre("providers[0].weight: must be an integer, got a number"));
  EXPECT_THAT(errors(with("\"2\"")),
              ElementsAre("providers[0].weight: must be an integer, got a string"));
}

TEST(ConfigParse, SecurityRules) {
  auto sec = [](std::string s) {
    return parse_text(R"({"providers":[{"group":"g","name":"m","base":"http://h","key":"k"}],)"
                      R"("security":)" +
                      s + "}");
  };
  EXPECT_THAT(errors(sec("[]")), ElementsAre("security: must list at least one client token"));
  EXPECT_THAT(errors(sec("\"tok\"")),
              ElementsAre("security: must be an array of client token strings, got a string"));
  EXPECT_THAT(errors(sec(R"(["a",""])")), ElementsAre("security[1]: must not be empty"));
  EXPECT_THAT(errors(sec(R"(["a",7,{}])")),
              ElementsAre("security[1]: must be a string, got a number",
                          "security[2]: must be a string, got an object"));
  auto r = sec(R"(["a","b"])");
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r.cfg->security, ElementsAre("a", "b"));
  r = sec(R"([" padded "])");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(has_warning(r, "security[0]", "no client can send it"));
}

TEST(ConfigParse, EnvExpansionInKeysAndTokens) {
  auto env = fake_env({{"OPENAI_KEY", "sk-real"}, {"CLIENT_TOKEN", "ct-1"}});
  auto r = parse_text(R"({"providers":[{"group":"g","name":"m","base":"http://h",)"
                      R"("key":"${OPENAI_KEY}"}],"security":["${CLIENT_TOKEN}","plain"]})",
                      env);
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers[0].key, "sk-real");
  EXPECT_THAT(r.cfg->security, ElementsAre("ct-1", "plain"));
}

TEST(ConfigParse, EnvExpansionUnsetIsAnErrorNamingTheVariable) {
  auto r = parse_text(R"({"providers":[{"group":"g","name":"m","base":"http://h",)"
                      R"("key":"${OPENAI_KEY}"}],"security":["ok","${CLIENT_TOKEN}"]})");
  EXPECT_THAT(errors(r), ElementsAre("providers[0].key: environment variable OPENAI_KEY is not set",
                                     "security[1]: environment variable CLIENT_TOKEN is not set"));
}

TEST(ConfigParse, EnvExpansionOnlyForTheWholeString) {
  auto env = fake_env({{"X", "expanded"}, {"EMPTY", ""}});
  auto key = [&](std::string k) {
    return parse_text(doc("", R"("group":"g","name":"m","base":"http://h","key":")" + k + "\""),
                      env);
  };
  EXPECT_EQ(key("pre${X}").cfg->providers[0].key, "pre${X}");
  EXPECT_EQ(key("${X}post").cfg->providers[0].key, "${X}post");
  EXPECT_EQ(key("$X").cfg->providers[0].key, "$X");
  EXPECT_EQ(key("${X}").cfg->providers[0].key, "expanded");
  auto empty = key("${EMPTY}");  // set but empty: like an empty key
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(has_warning(empty, "providers[0].key", "empty"));
  EXPECT_TRUE(has_error(key("${1BAD}"), "providers[0].key", "invalid environment variable name"));
  EXPECT_TRUE(has_error(key("${A-B}"), "providers[0].key", "invalid environment variable name"));
  // `base` and the other fields are never expanded.
  auto r = parse_text(doc("", R"("group":"${X}","name":"m","base":"http://h","key":"k")"), env);
  EXPECT_EQ(r.cfg->providers[0].group, "${X}");
  // An empty token from the environment is still an empty token.
  r = parse_text(R"({"providers":[{"group":"g","name":"m","base":"http://h","key":"k"}],)"
                 R"("security":["${EMPTY}"]})",
                 env);
  EXPECT_THAT(errors(r), ElementsAre("security[0]: must not be empty"));
}

TEST(ConfigParse, ManyErrorsAreReportedTogether) {
  auto r = parse_text(R"({
    "providers": [
      {"group": "a", "name": "m", "base": "htp://x", "key": "k"},
      {"group": "b", "name": "m", "base": "https://ok.example", "key": "k", "weight": 0},
      {"name": "m", "base": "http://h:65536", "key": "k"}
    ],
    "security": [],
    "workers": 999,
    "timeouts": {"connect": -1}
  })");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r),
              ElementsAre("providers[0].base: \"htp://x\" is not an http(s) URL",
                          "providers[1].weight: must be between 1 and 1000000, got 0",
                          "providers[2].base: \"http://h:65536\" has an invalid port \"65536\" "
                          "(expected 1-65535)",
                          "providers[2].group: is required",
                          "security: must list at least one client token",
                          "workers: must be between 0 and 256, got 999",
                          "timeouts.connect: must be > 0 and <= 604800 seconds, got -1"));
}

TEST(ConfigParse, WrongTypesAreErrors) {
  auto r = parse_text(doc(R"("listen":8080,"workers":"4","limits":[],"timeouts":"fast")"));
  EXPECT_THAT(errors(r), ElementsAre("listen: must be a string, got a number",
                                     "workers: must be an integer, got a string",
                                     "limits: must be an object, got an array",
                                     "timeouts: must be an object, got a string"));
}

TEST(ConfigParse, UnknownKeysWarnButLoad) {
  auto r = parse_text(R"({"providers":[{"group":"g","name":"m","base":"http://h","key":"k",)"
                      R"("extra":1}],"security":["t"],"foo":{"bar":1},)"
                      R"("limits":{"bogus":1},"timeouts":{"read":3}})");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r), ElementsAre("warning: providers[0].extra: unknown key (ignored)",
                                       "warning: foo: unknown key (ignored)",
                                       "warning: limits.bogus: unknown key (ignored)",
                                       "warning: timeouts.read: unknown key (ignored)"));
}

TEST(ConfigParse, DuplicateObjectKeysLastWinsWithWarning) {
  auto r = parse_text(R"({"listen":"127.0.0.1:1","providers":[{"group":"g","name":"m",)"
                      R"("base":"http://h","key":"first","key":"second"}],)"
                      R"("security":["t"],"listen":":9090"})");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->listen, ":9090");
  EXPECT_EQ(r.cfg->providers[0].key, "second");
  EXPECT_TRUE(has_warning(r, "listen", "more than once"));
  EXPECT_TRUE(has_warning(r, "providers[0].key", "more than once"));
}

TEST(ConfigParse, DuplicateProviderEntriesWarn) {
  auto r = parse_text(R"({"providers":[
      {"group":"g","name":"m","base":"http://h","key":"k"},
      {"group":"g","name":"m","base":"http://h","key":"other"},
      {"group":"g","name":"m","base":"http://h","key":"k"}],"security":["t"]})");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(warnings(r), ElementsAre("warning: providers[2]: same group, name, base and key as "
                                       "providers[0] (duplicate entry gets twice the traffic)"));
}

TEST(ConfigParse, MalformedJsonIsOneErrorWithLineAndColumn) {
  auto r = parse_text("{\n  \"providers\": [\n    }\n");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].path, "");
  EXPECT_NE(r.diagnostics[0].message.find("invalid JSON at line 3, column 5"), std::string::npos)
      << dump(r);
  for (auto text : {"", "   ", "{", "{\"a\":1,}", "{} trailing", "{'a':1}", "// c\n{}"}) {
    auto bad = parse_text(text);
    EXPECT_FALSE(bad.ok()) << text;
    ASSERT_EQ(bad.diagnostics.size(), 1u) << text;
    EXPECT_NE(bad.diagnostics[0].message.find("invalid JSON at line"), std::string::npos)
        << bad.diagnostics[0].message;
  }
}

TEST(ConfigParse, ThousandProviders) {
  std::string text = R"({"providers":[)";
  for (int i = 0; i < 1000; ++i) {
    if (i) text += ",";
    text += R"({"group":"g)" + std::to_string(i % 10) + R"(","name":"m)" + std::to_string(i) +
            R"(","base":"https://p)" + std::to_string(i) + R"(.example.com/v1/","key":"k"})";
  }
  text += R"(],"security":["t"]})";
  auto t0 = std::chrono::steady_clock::now();
  auto r = parse_text(text);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_THAT(r.diagnostics, IsEmpty());
  ASSERT_EQ(r.cfg->providers.size(), 1000u);
  EXPECT_EQ(r.cfg->providers[999].url.host, "p999.example.com");
  EXPECT_EQ(r.cfg->providers[999].url.path_prefix, "/v1");
  EXPECT_LT(took, std::chrono::seconds(2));  // generous: it takes milliseconds
}

TEST(ConfigParse, DiagnosticToString) {
  diagnostic e{diagnostic::level::error, "providers[2].base", "bad"};
  EXPECT_EQ(e.to_string(), "providers[2].base: bad");
  diagnostic w{diagnostic::level::warning, "foo", "unknown key (ignored)"};
  EXPECT_EQ(w.to_string(), "warning: foo: unknown key (ignored)");
  diagnostic doc_level{diagnostic::level::error, "", "invalid JSON"};
  EXPECT_EQ(doc_level.to_string(), "invalid JSON");
}

TEST(ConfigParse, NeverThrowsEvenIfTheEnvLookupDoes) {
  env_lookup throwing = [](std::string_view) -> std::optional<std::string> {
    throw std::runtime_error("boom");
  };
  parse_result r;
  EXPECT_NO_THROW(
      r = parse(doc("", R"("group":"g","name":"m","base":"http://h","key":"${K}")"), throwing));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "", "boom"));
}

TEST(ConfigParse, ProcessEnvReadsTheEnvironment) {
  ::setenv("OB_PARSE_TEST_VAR", "v", 1);
  ::unsetenv("OB_PARSE_TEST_UNSET");
  auto env = process_env();
  EXPECT_EQ(env("OB_PARSE_TEST_VAR"), "v");
  EXPECT_EQ(env("OB_PARSE_TEST_UNSET"), std::nullopt);
}

class ConfigLoadFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ob-parse-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(ConfigLoadFile, ReadsAndParses) {
  auto path = (dir_ / "config.json").string();
  std::ofstream(path) << old_readme_file;
  auto r = load_file(path, fake_env());
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->providers.size(), 1u);
}

TEST_F(ConfigLoadFile, MissingFileIsOneErrorNamingTheFile) {
  auto path = (dir_ / "nope.json").string();
  auto r = load_file(path, fake_env());
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].path, "");
  EXPECT_EQ(r.diagnostics[0].message,
            "cannot read config file \"" + path + "\": No such file or directory");
}

TEST_F(ConfigLoadFile, DirectoryIsAReadError) {
  auto r = load_file(dir_.string(), fake_env());
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_NE(r.diagnostics[0].message.find("Is a directory"), std::string::npos)
      << r.diagnostics[0].message;
}

}  // namespace
}  // namespace ob::config

namespace ob::config::testing {
namespace {

TEST(ConfigParseHeaders, ExposeRoutingDefaultsToTrue) {
  auto r = parse_text(doc());
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->headers.expose_routing);
  r = parse_text(doc(R"("headers":{})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->headers.expose_routing);
}

TEST(ConfigParseHeaders, ExposeRoutingReadsABoolean) {
  for (bool b : {false, true}) {
    auto r = parse_text(
        doc(std::string(R"("headers":{"expose_routing":)") + (b ? "true" : "false") + "}"));
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_EQ(r.cfg->headers.expose_routing, b);
    EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  }
}

// server_timing and request_id: true unless set; each is read alone, and only a boolean.
TEST(ConfigParseHeaders, ServerTimingAndRequestIdDefaultToTrueAndReadBooleans) {
  auto r = parse_text(doc(R"("headers":{"expose_routing":false})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.cfg->headers.server_timing);
  EXPECT_TRUE(r.cfg->headers.request_id);
  const std::pair<const char*, bool header_options::*> keys[] = {
      {"server_timing", &header_options::server_timing},
      {"request_id", &header_options::request_id}};
  for (auto [name, member] : keys) {
    r = parse_text(doc(std::string(R"("headers":{")") + name + R"(":false})"));
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
    for (auto [other, m] : keys) EXPECT_EQ(r.cfg->headers.*m, m != member) << name << " " << other;
    EXPECT_TRUE(r.cfg->headers.expose_routing);
    r = parse_text(doc(std::string(R"("headers":{")") + name + R"(":"off"})"));
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(has_error(r, std::string("headers.") + name, "must be a boolean, got a string"))
        << dump(r);
  }
}

TEST(ConfigParseHeaders, WrongTypesAndUnknownKeys) {
  auto r = parse_text(doc(R"("headers":{"expose_routing":"no"})"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "headers.expose_routing", "must be a boolean, got a string")) << dump(r);
  r = parse_text(doc(R"("headers":{"expose_routing":0})"));
  EXPECT_TRUE(has_error(r, "headers.expose_routing", "must be a boolean, got a number")) << dump(r);
  r = parse_text(doc(R"("headers":false)"));
  EXPECT_TRUE(has_error(r, "headers", "must be an object, got a boolean")) << dump(r);
  r = parse_text(doc(R"("headers":{"expose":false})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(has_warning(r, "headers.expose", "unknown key")) << dump(r);
  EXPECT_TRUE(r.cfg->headers.expose_routing);
}

}  // namespace
}  // namespace ob::config::testing
