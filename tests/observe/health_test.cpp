// Health event lines: text (logfmt) and JSON forms, levels.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>

#include "observe/health.hpp"

namespace ob::observe {
namespace {

health_record ejected() {
  health_record h;
  h.event = "ejected";
  h.group = "fast";
  h.target = "gpt-4o";
  h.provider = "https://api.openai.com/v1";
  h.reason = "5 consecutive failures";
  h.ejection_ms = 10000;
  h.until = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'123));
  h.ejections = 2;
  return h;
}

TEST(HealthEvent, Levels) {
  EXPECT_EQ(health_level("ejected"), level::warn);
  EXPECT_EQ(health_level("check_failed"), level::warn);
  EXPECT_EQ(health_level("recovered"), level::info);
  EXPECT_EQ(health_level("probe"), level::info);
}

TEST(HealthEvent, TextLine) {
  std::string line;
  format_health_text(line, ejected());
  EXPECT_EQ(line.substr(24),
            " warn health event=ejected group=fast target=gpt-4o "
            "provider=https://api.openai.com/v1 reason=\"5 consecutive failures\" "
            "ejection_ms=10000 until=2023-11-14T22:13:20.123Z ejections=2\n");
  health_record probe;
  probe.event = "probe";
  probe.target = "gpt-4o";
  line.clear();
  format_health_text(line, probe);
  EXPECT_EQ(line.substr(24), " info health event=probe target=gpt-4o\n");
}

TEST(HealthEvent, JsonLine) {
  std::string line;
  format_health_json(line, ejected());
  ASSERT_EQ(line.back(), '\n');
  auto o = boost::json::parse(line).as_object();
  EXPECT_EQ(o.at("type"), "health");
  EXPECT_EQ(o.at("level"), "warn");
  EXPECT_EQ(o.at("event"), "ejected");
  EXPECT_EQ(o.at("group"), "fast");
  EXPECT_EQ(o.at("target"), "gpt-4o");
  EXPECT_EQ(o.at("reason"), "5 consecutive failures");
  EXPECT_EQ(o.at("ejection_ms"), 10000);
  EXPECT_EQ(o.at("until"), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(o.at("ejections"), 2);
  health_record bare;
  bare.event = "recovered";
  line.clear();
  format_health_json(line, bare);
  auto b = boost::json::parse(line).as_object();
  EXPECT_TRUE(b.at("until").is_null());
  EXPECT_TRUE(b.at("ejection_ms").is_null());
  EXPECT_TRUE(b.at("group").is_null());
}

}  // namespace
}  // namespace ob::observe
