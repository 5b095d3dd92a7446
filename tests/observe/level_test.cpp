// Process log levels: names, filtering below the level, and the line format (text, JSON).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <string>

#include "observe/log.hpp"

namespace ob::observe {
namespace {

// Captures what is written to fd 2 while `f` runs.
template <class F>
std::string capture_stderr(F&& f) {
  char tmpl[] = "/tmp/ob_stderr_XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::unlink(tmpl);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  f();
  ::dup2(saved, 2);
  ::close(saved);
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

struct restore_level {
  ~restore_level() {
    set_level(level::info);
    configure_access_log({}, nullptr);
  }
};

TEST(LogLevel, Names) {
  for (auto l : {level::debug, level::info, level::warn, level::error})
    EXPECT_EQ(parse_level(level_name(l)), l);
  EXPECT_EQ(parse_level("warning"), std::nullopt);
  EXPECT_EQ(parse_level("INFO"), std::nullopt);
  EXPECT_EQ(parse_level(""), std::nullopt);
}

TEST(LogLevel, DefaultIsInfoAndLinesBelowAreDropped) {
  restore_level r;
  EXPECT_FALSE(log_enabled(level::debug));
  EXPECT_TRUE(log_enabled(level::info));
  auto out = capture_stderr([] {
    log(level::debug, "hidden");
    log(level::info, "shown");
  });
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find(" info shown\n"), std::string::npos) << out;

  set_level(level::debug);
  out = capture_stderr([] { log(level::debug, "now visible"); });
  EXPECT_NE(out.find(" debug now visible\n"), std::string::npos) << out;

  set_level(level::error);
  out = capture_stderr([] {
    log(level::warn, "w");
    log(level::error, "e");
  });
  EXPECT_EQ(out.find(" warn "), std::string::npos) << out;
  EXPECT_NE(out.find(" error e\n"), std::string::npos) << out;
}

TEST(LogLevel, JsonFormatMakesProcessLinesJson) {
  restore_level r;
  ASSERT_TRUE(configure_access_log({access_format::json, ""}, nullptr));
  auto out = capture_stderr([] { log(level::warn, "bad \"thing\"\n\xFF"); });
  ASSERT_EQ(out.find('\n'), out.size() - 1) << out;
  auto v = boost::json::parse(out).as_object();
  EXPECT_EQ(v.at("level"), "warn");
  EXPECT_EQ(v.at("msg"), "bad \"thing\"\n\xEF\xBF\xBD");
  EXPECT_TRUE(v.at("time").is_string());
}

}  // namespace
}  // namespace ob::observe
