#include "config/redis_url.hpp"

#include <gtest/gtest.h>

namespace ob::config {
namespace {

TEST(RedisUrl, Table) {
  struct row {
    const char* text;
    bool ok;
    const char* host;
    int port;
    const char* password;
    int db;
  };
  const row rows[] = {
      {"redis://127.0.0.1:6379/0", true, "127.0.0.1", 6379, "", 0},
      {"redis://localhost", true, "localhost", 6379, "", 0},
      {"redis://:s3cret@10.0.0.2:7000/5", true, "10.0.0.2", 7000, "s3cret", 5},
      {"redis://user:pw@h:1/", true, "h", 1, "pw", 0},  // user: see UserName
      {"redis://:p%40ss%3Aw@h:2/1", true, "h", 2, "p@ss:w", 1},
      {"redis://[::1]:6380/2", true, "::1", 6380, "", 2},
      {"http://h:1", false, "", 0, "", 0},
      {"redis://h:0", false, "", 0, "", 0},
      {"redis://h:70000", false, "", 0, "", 0},
      {"redis://h:1/x", false, "", 0, "", 0},
      {"redis://:1/0", false, "", 0, "", 0},
      {"redis://:p%4@h:1", false, "", 0, "", 0},
      {"redis://[::1:1", false, "", 0, "", 0},
  };
  for (const row& r : rows) {
    std::string err;
    auto u = parse_redis_url(r.text, &err);
    ASSERT_EQ(u.has_value(), r.ok) << r.text << " " << err;
    if (!u) {
      EXPECT_FALSE(err.empty()) << r.text;
      continue;
    }
    EXPECT_EQ(u->host, r.host) << r.text;
    EXPECT_EQ(u->port, r.port) << r.text;
    EXPECT_EQ(u->password, r.password) << r.text;
    EXPECT_EQ(u->db, r.db) << r.text;
  }
}

TEST(RedisUrl, UserName) {
  auto u = parse_redis_url("redis://gw%40eu:pw@h:1/", nullptr);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->username, "gw@eu");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(parse_redis_url("redis://:pw@h", nullptr)->username, "");
}

}  // namespace
}  // namespace ob::config
