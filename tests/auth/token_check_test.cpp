// Client tokens: exact match only (no prefix/suffix/empty), many tokens, Bearer parsing.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "auth/token_check.hpp"

namespace ob::auth {
namespace {

TEST(TokenSet, ContainsExactTokensOnly) {
  token_set s({"sk-abcdefghijklmnopqrstuvwxyz", "other-token"});
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(s.contains("sk-abcdefghijklmnopqrstuvwxyz"));
  EXPECT_TRUE(s.contains("other-token"));
  EXPECT_FALSE(s.contains("sk-abcdefghijklmnopqrstuvwxy"));    // prefix
  EXPECT_FALSE(s.contains("k-abcdefghijklmnopqrstuvwxyz"));    // suffix
  EXPECT_FALSE(s.contains("sk-abcdefghijklmnopqrstuvwxyzz"));  // longer
  EXPECT_FALSE(s.contains("SK-ABCDEFGHIJKLMNOPQRSTUVWXYZ"));   // case matters
  EXPECT_FALSE(s.contains("sk-abcdefghijklmnopqrstuvwxyz "));  // trailing space
  EXPECT_FALSE(s.contains("nope"));
}

TEST(TokenSet, EmptyTokenNeverMatches) {
  token_set s({"a"});
  EXPECT_FALSE(s.contains(""));
  token_set with_empty({"", "b"});  // an empty entry is dropped, not "anyone"
  EXPECT_EQ(with_empty.size(), 1u);
  EXPECT_FALSE(with_empty.contains(""));
  EXPECT_TRUE(with_empty.contains("b"));
}

TEST(TokenSet, EmptySetContainsNothing) {
  token_set s;
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.contains("anything"));
}

TEST(TokenSet, BinaryAndLongTokens) {
  std::string nul_inside("a\0b", 3);
  std::string long_token(10'000, 'x');
  token_set s({nul_inside, long_token});
  EXPECT_TRUE(s.contains(nul_inside));
  EXPECT_FALSE(s.contains("a"));  // would match if compared as a C string
  EXPECT_TRUE(s.contains(long_token));
  EXPECT_FALSE(s.contains(std::string(9'999, 'x')));
}

TEST(TokenSet, ManyTokens) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 5000; ++i) tokens.push_back("client-" + std::to_string(i));
  token_set s(tokens);
  EXPECT_EQ(s.size(), 5000u);
  for (int i = 0; i < 5000; i += 499) EXPECT_TRUE(s.contains("client-" + std::to_string(i)));
  EXPECT_TRUE(s.contains("client-4999"));
  EXPECT_FALSE(s.contains("client-5000"));
  EXPECT_FALSE(s.contains("client-"));
}

TEST(TokenSet, FindGivesEachTokensOwnIndexAmongMany) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 2000; ++i) tokens.push_back("sk-key-" + std::to_string(i));
  token_set s(tokens);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(s.find("sk-key-" + std::to_string(i)), i);
  EXPECT_EQ(s.find("sk-key-2000"), -1);
  EXPECT_EQ(s.find(""), -1);
}

TEST(TokenSet, FromDigestsIsIndexedAndATokenListedTwiceFindsItsLastEntry) {
  std::vector<digest> d = {sha256_digest("a"), sha256_digest("b"), sha256_digest("a")};
  auto s = token_set::from_digests(d);
  EXPECT_EQ(s.find("b"), 1);
  EXPECT_EQ(s.find("a"), 2);
  EXPECT_EQ(s.find("c"), -1);
}

TEST(BearerToken, ParsingTable) {
  const std::pair<std::string_view, std::optional<std::string_view>> table[] = {
      {"Bearer abc", "abc"},
      {"bearer abc", "abc"},
      {"BEARER abc", "abc"},
      {"BeArEr abc", "abc"},
      {"Bearer  \t abc", "abc"},
      {"Bearer\tabc", "abc"},
      {"Bearer abc  ", "abc"},
      {"Bearer abc\t", "abc"},
      {"  Bearer abc", "abc"},  // leading whitespace of a header value is not part of it
      {"Bearer sk-abc.def_ghi/jkl+mno=", "sk-abc.def_ghi/jkl+mno="},
      {"Bearer a b", "a b"},  // kept as is: it simply matches no configured token
      {"", std::nullopt},
      {"   ", std::nullopt},
      {"Bearer", std::nullopt},
      {"Bearer ", std::nullopt},
      {"Bearer \t  ", std::nullopt},
      {"Bearerabc", std::nullopt},
      {"Basic dXNlcjpwYXNz", std::nullopt},
      {"Token abc", std::nullopt},
      {"abc", std::nullopt},
      {"Bear abc", std::nullopt},
      {"Bearer-abc", std::nullopt},
      // Bytes that are not letters never match one case-insensitively.
      {"Be@rer abc", std::nullopt},     // '@' is 'A' less 1, '`' is 'a' less 1
      {"Bea\x12er abc", std::nullopt},  // 'R' without its 0x40 bit
      {"\xc2earer abc", std::nullopt},
  };
  for (const auto& [in, want] : table) EXPECT_EQ(bearer_token(in), want) << '"' << in << '"';
}

TEST(BearerToken, FeedsTokenSet) {
  token_set s({"sk-client"});
  auto t = bearer_token("Bearer sk-client ");
  ASSERT_TRUE(t);
  EXPECT_TRUE(s.contains(*t));
  EXPECT_FALSE(s.contains(*bearer_token("Bearer sk-client-x")));
}

}  // namespace
}  // namespace ob::auth
