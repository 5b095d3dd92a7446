#include "proxy/http/errors.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace ob::proxy::http {
namespace {

struct parsed_error {
  std::string message, type, code;
};

parsed_error parse_body(const std::string& body) {
  simdjson::dom::parser p;
  auto doc = p.parse(body);
  EXPECT_FALSE(doc.error()) << body;
  parsed_error e;
  e.message = std::string(doc["error"]["message"].get_string().value());
  e.type = std::string(doc["error"]["type"].get_string().value());
  e.code = std::string(doc["error"]["code"].get_string().value());
  EXPECT_TRUE(doc["error"]["param"].is_null());
  return e;
}

TEST(Errors, StatusesMatchKinds) {
  EXPECT_EQ(status_of(error_kind::bad_json), 400);
  EXPECT_EQ(status_of(error_kind::unauthorized), 401);
  EXPECT_EQ(status_of(error_kind::model_not_found), 404);
  EXPECT_EQ(status_of(error_kind::route_not_found), 404);
  EXPECT_EQ(status_of(error_kind::method_not_allowed), 405);
  EXPECT_EQ(status_of(error_kind::body_too_large), 413);
  EXPECT_EQ(status_of(error_kind::header_too_large), 431);
  EXPECT_EQ(status_of(error_kind::upstream_unreachable), 502);
  EXPECT_EQ(status_of(error_kind::upstream_timeout), 504);
}

TEST(Errors, BodyIsOpenAIShapedAndEscaped) {
  std::string body;
  append_error_body(body, error_kind::model_not_found, "The model 'a\"b\\c\n' does not exist.");
  auto e = parse_body(body);
  EXPECT_EQ(e.message, "The model 'a\"b\\c\n' does not exist.");
  EXPECT_EQ(e.type, "invalid_request_error");
  EXPECT_EQ(e.code, "model_not_found");
}

TEST(Errors, ResponseHasLengthAndConnectionClose) {
  std::string out;
  append_error_response(out, error_kind::unauthorized, "no", false);
  auto head_end = out.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  auto head = out.substr(0, head_end);
  auto body = out.substr(head_end + 4);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
  EXPECT_NE(head.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(head.find("Content-Length: " + std::to_string(body.size())), std::string::npos);
  EXPECT_NE(head.find("Connection: close"), std::string::npos);
  EXPECT_EQ(parse_body(body).type, "authentication_error");
}

TEST(Errors, KeepAliveResponseHasExtraHeadersAndNoClose) {
  std::string out;
  append_error_response(out, error_kind::method_not_allowed, "use POST", true, "Allow: POST\r\n");
  EXPECT_NE(out.find("\r\nAllow: POST\r\n\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Connection: close"), std::string::npos);
}

TEST(Errors, PathAndCodingKinds) {
  EXPECT_EQ(status_of(error_kind::bad_path), 400);
  EXPECT_EQ(status_of(error_kind::not_implemented), 501);
  EXPECT_EQ(reason_of(501), "Not Implemented");
  std::string body;
  append_error_body(body, error_kind::bad_path, "x");
  EXPECT_EQ(parse_body(body).code, "invalid_path");
  body.clear();
  append_error_body(body, error_kind::not_implemented, "x");
  EXPECT_EQ(parse_body(body).code, "not_implemented");
}

// A HEAD answer has the head a GET would get (with the would-be length) and not one body byte.
TEST(Errors, HeadAnswerHasTheSameHeadAndNoBody) {
  for (bool keep : {true, false}) {
    std::string get, head;
    append_error_response(get, error_kind::route_not_found, "Unknown route /nope.", keep,
                          "Allow: GET\r\n");
    append_error_response(head, error_kind::route_not_found, "Unknown route /nope.", keep,
                          "Allow: GET\r\n", true);
    auto end = get.find("\r\n\r\n") + 4;
    EXPECT_EQ(head, get.substr(0, end));
    EXPECT_GT(get.size(), end);
  }
}

}  // namespace
}  // namespace ob::proxy::http
