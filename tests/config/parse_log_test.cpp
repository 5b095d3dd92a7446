// The "log" extension: format, file, level, access; every refusal names its path.
#include <gtest/gtest.h>

#include "config/parse_helpers.hpp"

namespace ob::config {
namespace {

using namespace ob::config::testing;

TEST(ConfigLog, DefaultsWhenAbsent) {
  auto r = parse_text(doc());
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.cfg->log.format, log_config::format_kind::text);
  EXPECT_EQ(r.cfg->log.file, "");
  EXPECT_EQ(r.cfg->log.level, log_config::level_kind::info);
  EXPECT_EQ(r.cfg->log.access, log_config::access_kind::all);
}

TEST(ConfigLog, EveryKey) {
  auto r = parse_text(
      doc(R"("log":{"format":"json","file":"/var/log/openbridge/access.log","level":"debug",)"
          R"("access":"errors"})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  EXPECT_EQ(r.cfg->log.format, log_config::format_kind::json);
  EXPECT_EQ(r.cfg->log.file, "/var/log/openbridge/access.log");
  EXPECT_EQ(r.cfg->log.level, log_config::level_kind::debug);
  EXPECT_EQ(r.cfg->log.access, log_config::access_kind::errors);
  for (auto [name, a] :
       {std::pair{"all", log_config::access_kind::all}, {"off", log_config::access_kind::off}}) {
    auto x = parse_text(doc(std::string(R"("log":{"access":")") + name + "\"}"));
    ASSERT_TRUE(x.ok()) << dump(x);
    EXPECT_EQ(x.cfg->log.access, a) << name;
  }
  for (auto [name, lv] : {std::pair{"info", log_config::level_kind::info},
                          {"warn", log_config::level_kind::warn},
                          {"error", log_config::level_kind::error}}) {
    auto x = parse_text(doc(std::string(R"("log":{"level":")") + name + "\"}"));
    ASSERT_TRUE(x.ok()) << dump(x);
    EXPECT_EQ(x.cfg->log.level, lv) << name;
  }
}

struct refusal {
  const char* name;
  const char* log;  // the "log" value
  const char* path;
  const char* message;
};

const refusal refusals[] = {
    {"not an object", R"("json")", "log", "must be an object, got a string"},
    {"unknown format", R"({"format":"xml"})", "log.format",
     R"(must be one of "text", "json", got "xml")"},
    {"format case", R"({"format":"JSON"})", "log.format", "must be one of"},
    {"format type", R"({"format":1})", "log.format", "must be a string, got a number"},
    {"unknown level", R"({"level":"warning"})", "log.level",
     R"(must be one of "debug", "info", "warn", "error", got "warning")"},
    {"level type", R"({"level":null})", "log.level", "must be a string, got null"},
    {"unknown access", R"({"access":"none"})", "log.access",
     R"(must be one of "all", "errors", "off", got "none")"},
    {"access type", R"({"access":false})", "log.access", "must be a string, got a boolean"},
    {"empty file", R"({"file":""})", "log.file", "must not be empty"},
    {"relative file", R"({"file":"logs/access.log"})", "log.file", "must be an absolute path"},
    {"directory", R"({"file":"/var/log/"})", "log.file", "names a directory"},
    {"control char", R"({"file":"/var/log/a\nb"})", "log.file", "control characters"},
    {"file type", R"({"file":["/a"]})", "log.file", "must be a string, got an array"},
};

TEST(ConfigLog, RefusalsNameThePath) {
  for (const auto& c : refusals) {
    auto r = parse_text(doc(std::string(R"("log":)") + c.log));
    EXPECT_FALSE(r.ok()) << c.name;
    EXPECT_TRUE(has_error(r, c.path, c.message)) << c.name << "\n" << dump(r);
  }
}

TEST(ConfigLog, UnknownKeyWarns) {
  auto r = parse_text(doc(R"("log":{"formatt":"json"})"));
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(has_warning(r, "log.formatt", "unknown key")) << dump(r);
}

TEST(ConfigLog, EveryProblemReportedAtOnce) {
  auto r = parse_text(doc(R"("log":{"format":"x","level":"y","file":"z"})"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_error(r, "log.format"));
  EXPECT_TRUE(has_error(r, "log.level"));
  EXPECT_TRUE(has_error(r, "log.file"));
}

}  // namespace
}  // namespace ob::config
