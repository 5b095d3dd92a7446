#include "proxy/http/path_check.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ob::proxy::http {
namespace {

struct row {
  std::string target;
  path_problem want;
};

const std::vector<row> table = {
    // accepted
    {"/v1/chat/completions", path_problem::none},
    {"/v1/chat/completions?api-version=2024-01-01&x=a%20b", path_problem::none},
    {"/v1/models/gpt-4o", path_problem::none},
    {"/v1/files/file-abc/content", path_problem::none},
    {"/", path_problem::none},
    {"/healthz", path_problem::none},
    {"/v1//chat", path_problem::none},  // empty segment: not a dot segment
    {"/v1/...", path_problem::none},
    {"/v1/.../x", path_problem::none},
    {"/v1/.a/a./..b/b../a.b", path_problem::none},
    {"/v1/%2e%2e%2e", path_problem::none},
    {"/v1/%41%7e", path_problem::none},
    {"/v1/caf\xc3\xa9", path_problem::none},
    {"/v1/chat?x=/../../admin", path_problem::none},          // the query is not a path
    {"/v1/chat?x=%2f%5c%25%00..%2e%2e", path_problem::none},  // encoded anything in a query
    {"/v1/chat?a\\b", path_problem::none},
    {"/v1/chat?", path_problem::none},
    {"/v1/chat??", path_problem::none},
    {"/v1/chat/?x=1", path_problem::none},
    // not origin-form
    {"", path_problem::not_origin_form},
    {"*", path_problem::not_origin_form},
    {"http://h/v1/chat", path_problem::not_origin_form},
    {"v1/chat", path_problem::not_origin_form},
    {"?x=1", path_problem::not_origin_form},
    // dot segments, every spelling, every position
    {"/v1/../admin", path_problem::dot_segment},
    {"/v1/./admin", path_problem::dot_segment},
    {"/v1/..", path_problem::dot_segment},
    {"/v1/.", path_problem::dot_segment},
    {"/v1/../", path_problem::dot_segment},
    {"/v1/./", path_problem::dot_segment},
    {"/..", path_problem::dot_segment},
    {"/.", path_problem::dot_segment},
    {"/../v1/chat", path_problem::dot_segment},
    {"/v1/chat/../../../internal/admin", path_problem::dot_segment},
    {"/v1/%2e%2e/admin", path_problem::dot_segment},
    {"/v1/%2E%2E/admin", path_problem::dot_segment},
    {"/v1/%2e%2E/admin", path_problem::dot_segment},
    {"/v1/.%2e/admin", path_problem::dot_segment},
    {"/v1/%2e./admin", path_problem::dot_segment},
    {"/v1/%2e/admin", path_problem::dot_segment},
    {"/v1/%2E", path_problem::dot_segment},
    {"/v1/..?x=1", path_problem::dot_segment},
    {"/v1/.?x=1", path_problem::dot_segment},
    {"/v1/%2e%2e?x=/v1/chat", path_problem::dot_segment},
    // path parameters: the name before ';' counts
    {"/v1/..;/admin", path_problem::dot_segment},
    {"/v1/..;x=1/admin", path_problem::dot_segment},
    {"/v1/.;x", path_problem::dot_segment},
    {"/v1/%2e%2e%3b/admin", path_problem::dot_segment},
    {"/v1/a;..", path_problem::none},
    {"/v1/a;../b", path_problem::none},
    {"/v1/chat;v=1/completions", path_problem::none},
    {"/v1/..x;/a", path_problem::none},
    // encoded separators
    {"/v1/..%2fadmin", path_problem::encoded_separator},
    {"/v1/..%2Fadmin", path_problem::encoded_separator},
    {"/v1/chat%2fcompletions", path_problem::encoded_separator},
    {"/v1/chat%5c..%5cadmin", path_problem::encoded_separator},
    {"/v1/chat%5C..%5Cadmin", path_problem::encoded_separator},
    {"/v1/..%3Fx", path_problem::encoded_separator},
    {"/v1/..%3fx/admin", path_problem::encoded_separator},
    {"/v1/..%23frag", path_problem::encoded_separator},
    {"/v1/chat/completions?q=%3F%23", path_problem::none},  // the query may hold them
    {"/%2f", path_problem::encoded_separator},
    // encoded percent (double decoding)
    {"/v1/%252e%252e/admin", path_problem::encoded_percent},
    {"/v1/a%25", path_problem::encoded_percent},
    // encoded control bytes
    {"/v1/chat%00", path_problem::encoded_control},
    {"/v1/chat%0a", path_problem::encoded_control},
    {"/v1/chat%0D%0A", path_problem::encoded_control},
    {"/v1/chat%1f", path_problem::encoded_control},
    {"/v1/chat%7F", path_problem::encoded_control},
    // raw backslash
    {"/v1/chat\\..\\admin", path_problem::backslash},
    {"/v1\\..\\admin", path_problem::backslash},
    {"/\\", path_problem::backslash},
    // raw control bytes and spaces, in path or query
    {std::string("/v1/chat\0x", 10), path_problem::control},
    {"/v1/chat\x01", path_problem::control},
    {"/v1/chat\x7f", path_problem::control},
    {"/v1/ch at", path_problem::control},
    {"/v1/chat\t", path_problem::control},
    {"/v1/chat\r\n", path_problem::control},
    {"/v1/chat?x=\x01", path_problem::control},
    {"/v1/chat?x= y", path_problem::control},
    // fragment
    {"/v1/chat#frag", path_problem::fragment},
    {"/v1/chat/completions#/../../admin", path_problem::fragment},
    {"/v1/chat?x#y", path_problem::fragment},
    // bad percent-encoding, in path or query
    {"/v1/chat%", path_problem::bad_percent},
    {"/v1/chat%2", path_problem::bad_percent},
    {"/v1/chat%zz", path_problem::bad_percent},
    {"/v1/chat%g0", path_problem::bad_percent},
    {"/v1/chat%0g", path_problem::bad_percent},
    {"/v1/chat%%30", path_problem::bad_percent},
    {"/v1/chat?x=%zz", path_problem::bad_percent},
    {"/v1/chat?x=%", path_problem::bad_percent},
    {"/v1/chat?x=%a", path_problem::bad_percent},
};

TEST(PathCheck, Table) {
  for (const auto& r : table) EXPECT_EQ(check_target(r.target), r.want) << '"' << r.target << '"';
}

TEST(PathCheck, EveryProblemHasAMessage) {
  EXPECT_EQ(describe(path_problem::none), "");
  for (int p = 1; p <= static_cast<int>(path_problem::bad_percent); ++p)
    EXPECT_FALSE(describe(static_cast<path_problem>(p)).empty()) << p;
}

// ---- the invariant, checked exhaustively over short paths built from hostile pieces ---------

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
  return -1;
}

std::string decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// RFC 3986 section 5.2.4, also treating '\' as '/' (as some servers do).
std::string remove_dot_segments(std::string in) {
  for (auto& c : in)
    if (c == '\\') c = '/';
  std::string out;
  while (!in.empty()) {
    if (in.starts_with("../")) {
      in.erase(0, 3);
    } else if (in.starts_with("./")) {
      in.erase(0, 2);
    } else if (in.starts_with("/./")) {
      in.erase(0, 2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.starts_with("/../") || in == "/..") {
      in = in == "/.." ? "/" : in.substr(3);
      auto cut = out.rfind('/');
      out.erase(cut == std::string::npos ? 0 : cut);
    } else if (in == "." || in == "..") {
      in.clear();
    } else {
      auto next = in.find('/', 1);
      out += in.substr(0, next);
      in.erase(0, next == std::string::npos ? in.size() : next);
    }
  }
  return out;
}

// Each segment without its ";parameters" (as Tomcat-like servers see a path).
std::string strip_params(const std::string& p) {
  std::string out;
  bool skip = false;
  for (char c : p) {
    if (c == '/') skip = false;
    if (c == ';') skip = true;
    if (!skip) out.push_back(c);
  }
  return out;
}

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
}

TEST(PathCheck, AcceptedPathsNeverLeaveV1UnderAPrefix) {
  const std::vector<std::string> pieces = {"/", ".", "..", "%2e", "%2E", "%2f", "%5c", "\\", "%25",
                                           "%", "a", "?",  "%2",  "#",   "%00", "2e",  ";",  "%3b"};
  const std::string prefix = "/openai";
  std::size_t accepted = 0, total = 0;
  std::vector<std::size_t> idx;
  for (std::size_t len = 0; len <= 5; ++len) {
    idx.assign(len, 0);
    for (;;) {
      std::string target = "/v1/";
      for (auto i : idx) target += pieces[i];
      ++total;
      if (check_target(target) == path_problem::none) {
        ++accepted;
        std::string p = path_of(target);
        for (const std::string& seen :
             {p, decode(p), decode(decode(p)), strip_params(p), strip_params(decode(p))}) {
          std::string full = prefix + seen;
          std::string norm = remove_dot_segments(full);
          EXPECT_EQ(norm, full) << target;
          EXPECT_TRUE(norm.starts_with(prefix + "/v1/")) << target << " -> " << norm;
        }
      }
      std::size_t k = 0;
      while (k < len && ++idx[k] == pieces.size()) idx[k++] = 0;
      if (k == len) break;
    }
  }
  EXPECT_GT(accepted, 1000u);
  EXPECT_GT(total, accepted);
}

}  // namespace
}  // namespace ob::proxy::http
