#include "server/health_checker.hpp"

#include <gtest/gtest.h>

#include "observe/log.hpp"

namespace ob::server {
namespace {

TEST(HealthChecker, StatusToOutcome) {
  EXPECT_EQ(check_outcome(200), routing::outcome::success);
  EXPECT_EQ(check_outcome(204), routing::outcome::success);
  EXPECT_EQ(check_outcome(401), routing::outcome::failure);
  EXPECT_EQ(check_outcome(404), routing::outcome::failure);
  EXPECT_EQ(check_outcome(429), routing::outcome::rate_limited);
  EXPECT_EQ(check_outcome(500), routing::outcome::failure);
  EXPECT_EQ(check_outcome(503), routing::outcome::overloaded);
}

TEST(HealthChecker, RetryAfterOfTheAnswer) {
  using std::chrono::milliseconds;
  auto now = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 50);
  EXPECT_EQ(check_retry_after("", "", now), std::nullopt);
  EXPECT_EQ(check_retry_after("", "3", now), milliseconds(3000));
  EXPECT_EQ(check_retry_after("1500", "3", now), milliseconds(1500));  // OpenAI's header first
  EXPECT_EQ(check_retry_after("x", "2", now), milliseconds(2000));     // unparseable: the other
  EXPECT_EQ(check_retry_after("", "soon", now), std::nullopt);
}

TEST(AccessLog, OneLogfmtLineWithQuotedValuesAndNoEmptyFields) {
  observe::request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.group = "fast";
  r.target = "gpt 4o";  // a space forces quoting
  r.status = 200;
  r.stream = true;
  r.attempts = 2;
  r.tried = "dead:connect";
  r.prompt_tokens = 9;
  r.detail = "said \"no\"\nthen left";
  std::string line;
  observe::format_access_line(line, r);
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line, even with a newline in a value
  EXPECT_NE(line.find(" access method=POST path=/v1/chat/completions group=fast"),
            std::string::npos);
  EXPECT_NE(line.find(" target=\"gpt 4o\""), std::string::npos);
  EXPECT_NE(line.find(" status=200"), std::string::npos);
  EXPECT_NE(line.find(" stream=true attempts=2 prompt_tokens=9"), std::string::npos);
  EXPECT_EQ(line.find("completion_tokens"), std::string::npos);
  EXPECT_NE(line.find(" tried=dead:connect"), std::string::npos);
  EXPECT_NE(line.find(R"( detail="said \"no\" then left")"), std::string::npos);
}

}  // namespace
}  // namespace ob::server
