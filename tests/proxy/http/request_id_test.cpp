// Request ids: which client values are kept, and the format and uniqueness of generated ones.
#include "proxy/http/request_id.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace ob::proxy::http {
namespace {

bool is_generated_format(std::string_view id) {
  if (id.size() != generated_request_id_size) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

struct id_case {
  const char* name;
  std::string value;
  bool kept;
};

const std::vector<id_case> id_cases = {
    {"uuid", "3f2a1c9e-8b7d-4e6f-a5c4-1b2d3e4f5a6b", true},
    {"every allowed class", "AZaz09._:@/+=-", true},
    {"one byte", "x", true},
    {"128 bytes", std::string(128, 'a'), true},
    {"base64 with padding", "dGVzdA==", true},
    {"empty", "", false},
    {"129 bytes", std::string(129, 'a'), false},
    {"space", "a b", false},
    {"tab", "a\tb", false},
    {"CR LF injection", "a\r\nx-evil: 1", false},
    {"NUL", std::string("a\0b", 3), false},
    {"quote", "a\"b", false},
    {"backslash", "a\\b", false},
    {"comma", "a,b", false},
    {"semicolon", "a;b", false},
    {"angle brackets", "<script>", false},
    {"percent", "a%20b", false},
    {"non-ASCII", "caf\xc3\xa9", false},
    {"DEL", "a\x7f", false},
    {"high byte", "\xff", false},
};

TEST(request_id, ValidationTable) {
  for (const auto& c : id_cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(is_safe_request_id(c.value), c.kept);
    const request_id id = request_id::choose(c.value);
    EXPECT_EQ(id.from_client(), c.kept);
    if (c.kept) {
      EXPECT_EQ(id.view(), c.value);
    } else {
      EXPECT_TRUE(is_generated_format(id.view())) << id.view();
      EXPECT_EQ(id.view().find(c.value.empty() ? "\x01" : c.value), std::string_view::npos);
    }
  }
}

TEST(request_id, GeneratedFormat) {
  for (int i = 0; i < 1000; ++i) {
    char buf[generated_request_id_size + 1];
    buf[generated_request_id_size] = '!';
    generate_request_id(buf);
    EXPECT_EQ(buf[generated_request_id_size], '!');  // writes exactly 32 bytes
    EXPECT_TRUE(is_generated_format(std::string_view(buf, generated_request_id_size)));
    EXPECT_TRUE(is_safe_request_id(std::string_view(buf, generated_request_id_size)));
  }
}

TEST(request_id, UniqueAcrossThreads) {
  constexpr int threads = 4, per_thread = 25000;
  std::vector<std::vector<std::string>> ids(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      ids[t].reserve(per_thread);
      for (int i = 0; i < per_thread; ++i) ids[t].emplace_back(request_id::choose({}).view());
    });
  for (auto& w : workers) w.join();
  std::unordered_set<std::string> all;
  for (const auto& v : ids)
    for (const auto& id : v) {
      EXPECT_TRUE(is_generated_format(id));
      all.insert(id);
    }
  EXPECT_EQ(all.size(), std::size_t{threads * per_thread});
  // Every hex digit shows up in every position (a stuck nibble would be a broken generator).
  for (std::size_t pos = 0; pos < generated_request_id_size; ++pos) {
    std::unordered_set<char> seen;
    for (int i = 0; i < 1000; ++i) seen.insert(ids[0][i][pos]);
    EXPECT_EQ(seen.size(), 16u) << "position " << pos;
  }
}

}  // namespace
}  // namespace ob::proxy::http
