#include "server/listen_address.hpp"

#include <gtest/gtest.h>

namespace ob::server {
namespace {

TEST(ListenAddress, Forms) {
  std::string err;
  auto a = parse_listen_address("127.0.0.1:8080", &err);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->address().to_string(), "127.0.0.1");
  EXPECT_EQ(a->port(), 8080);
  auto b = parse_listen_address(":9000", &err);
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->address().is_unspecified());
  EXPECT_EQ(b->port(), 9000);
  auto c = parse_listen_address("[::1]:7000", &err);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->address().is_v6());
  EXPECT_EQ(c->port(), 7000);
  auto d = parse_listen_address("localhost:1", &err);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->address().is_loopback());
  auto e = parse_listen_address("0.0.0.0:0", &err);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port(), 0);
}

TEST(ListenAddress, FormatReadsBack) {
  std::string err;
  for (const char* text : {"127.0.0.1:8080", "[::1]:7000", "[::]:1", "0.0.0.0:65535"}) {
    auto ep = parse_listen_address(text, &err);
    ASSERT_TRUE(ep) << text;
    EXPECT_EQ(format_listen_address(*ep), text);
  }
}

TEST(ListenAddress, Errors) {
  std::string err;
  EXPECT_FALSE(parse_listen_address("8080", &err));
  EXPECT_FALSE(parse_listen_address("127.0.0.1:99999", &err));
  EXPECT_FALSE(parse_listen_address("127.0.0.1:http", &err));
  EXPECT_FALSE(parse_listen_address("[::1]8080", &err));
  EXPECT_FALSE(parse_listen_address("127.0.0.1:", &err));
  EXPECT_FALSE(err.empty());
}

}  // namespace
}  // namespace ob::server
