// Finding the `model` form field of a multipart/form-data body (proxy/http/multipart.hpp).
#include <gtest/gtest.h>

#include <string>

#include "proxy/http/multipart.hpp"

namespace ob::proxy::http {
namespace {

std::string part(std::string_view headers, std::string_view value, std::string_view b = "XyZ") {
  return "--" + std::string(b) + "\r\n" + std::string(headers) + "\r\n\r\n" + std::string(value) +
         "\r\n";
}
std::string end(std::string_view b = "XyZ") {
  return "--" + std::string(b) + "--\r\n";
}

const std::string ct = "multipart/form-data; boundary=XyZ";
const std::string file_part = part(
    "Content-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\nContent-Type: "
    "audio/mpeg",
    std::string("ID3\0\r\n--Xy binary\r\n", 20));

struct multipart_case {
  const char* name;
  std::string content_type;
  std::string body;
  form_status status;
  const char* value;  // expected value when ok
};

std::vector<multipart_case> cases() {
  return {
      {"model_after_file", ct,
       file_part + part("Content-Disposition: form-data; name=\"model\"", "whisper") + end(),
       form_status::ok, "whisper"},
      {"model_first", ct,
       part("Content-Disposition: form-data; name=\"model\"", "g-1") + file_part + end(),
       form_status::ok, "g-1"},
      {"quoted_boundary", "multipart/form-data; charset=utf-8; boundary=\"XyZ\"",
       part("content-disposition: form-data; name=model", "m") + end(), form_status::ok, "m"},
      {"preamble", ct,
       "preamble\r\n" + part("Content-Disposition: form-data; name=\"model\"", "m") + end(),
       form_status::ok, "m"},
      {"no_boundary", "multipart/form-data",
       part("Content-Disposition: form-data; name=\"model\"", "m") + end(),
       form_status::no_boundary, ""},
      {"missing", ct, file_part + end(), form_status::missing, ""},
      {"duplicate", ct,
       part("Content-Disposition: form-data; name=\"model\"", "a") +
           part("Content-Disposition: form-data; name=\"model\"", "b") + end(),
       form_status::duplicate, ""},
      {"empty_value", ct, part("Content-Disposition: form-data; name=\"model\"", "") + end(),
       form_status::bad_value, ""},
      {"file_named_model", ct,
       part("Content-Disposition: form-data; name=\"model\"; filename=\"m.txt\"", "m") + end(),
       form_status::bad_value, ""},
      {"control_in_value", ct,
       part("Content-Disposition: form-data; name=\"model\"", "a\x01") + end(),
       form_status::bad_value, ""},
      {"no_end", ct, "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm",
       form_status::malformed, ""},
      {"no_delimiter", ct, "hello", form_status::malformed, ""},
      {"other_name_prefix", ct,
       part("Content-Disposition: form-data; name=\"models\"", "x") + end(), form_status::missing,
       ""},
  };
}

TEST(Multipart, Table) {
  for (const auto& c : cases()) {
    auto f = find_form_field(c.content_type, c.body, "model");
    EXPECT_EQ(f.status, c.status) << c.name;
    if (c.status == form_status::ok) {
      EXPECT_EQ(std::string_view(c.body).substr(f.begin, f.end - f.begin), c.value) << c.name;
    }
  }
}

// The limits' input estimate counts the text fields' values, never a file's bytes.
TEST(Multipart, TextBytesCountTextFieldsOnly) {
  auto body = part("Content-Disposition: form-data; name=\"prompt\"", "twelve bytes") + file_part +
              part("Content-Disposition: form-data; name=\"model\"", "whisper") +
              part("Content-Disposition: form-data; name=\"language\"", "en") + end();
  auto f = find_form_field(ct, body, "model");
  ASSERT_EQ(f.status, form_status::ok);
  EXPECT_EQ(f.text_bytes, 12u + 7u + 2u);
  // Only the file besides the model: the model's bytes.
  f = find_form_field(
      ct, file_part + part("Content-Disposition: form-data; name=\"model\"", "g") + end(), "model");
  ASSERT_EQ(f.status, form_status::ok);
  EXPECT_EQ(f.text_bytes, 1u);
}

}  // namespace
}  // namespace ob::proxy::http
