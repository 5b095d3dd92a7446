// Finding the `model` form field of a multipart/form-data body (proxy/http/multipart.hpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

// form_scanner, the incremental form: whatever the pieces the body arrives in (one piece, one
// byte at a time, cuts of 7 bytes), it answers the same, and pending until the model part and
// the delimiter after it are in. It stops at the first model part, so the table's "duplicate"
// is ok (a, the first) for it, and the framing after that part is not its concern.
form_field scan_in_pieces(const multipart_case& c, std::size_t piece, std::size_t& done_at) {
  form_scanner s(c.content_type, "model");
  form_field f{form_status::pending};
  done_at = 0;
  for (std::size_t n = std::min(piece, c.body.size());; n = std::min(n + piece, c.body.size())) {
    f = s.scan(std::string_view(c.body).substr(0, n));
    if (f.status != form_status::pending || n == c.body.size()) {
      done_at = n;
      return f;
    }
  }
}

TEST(MultipartScanner, SameAnswerWhateverThePieces) {
  for (const auto& c : cases()) {
    auto expect = c.status == form_status::duplicate ? form_status::ok : c.status;
    // A body cut short has not ended: the scanner waits for more (the caller knows the end).
    if (c.status == form_status::malformed) expect = form_status::pending;
    const char* value = c.status == form_status::duplicate ? "a" : c.value;
    for (std::size_t piece : {c.body.size(), std::size_t{1}, std::size_t{7}}) {
      std::size_t done_at = 0;
      auto f = scan_in_pieces(c, piece, done_at);
      EXPECT_EQ(f.status, expect) << c.name << " piece " << piece;
      if (f.status == form_status::ok) {
        EXPECT_EQ(std::string_view(c.body).substr(f.begin, f.end - f.begin), value) << c.name;
      }
      if (piece == 1 && expect == form_status::ok) {
        // Decided as soon as the delimiter after the value is in, not at the body's end.
        auto delim_end = f.end + std::string_view("\r\n--XyZ").size();
        EXPECT_EQ(done_at, delim_end) << c.name;
      }
    }
  }
}

TEST(MultipartScanner, ModelFirstIsFoundBeforeTheFile) {
  // The file part never ends (still uploading): the model before it is found anyway.
  auto body = part("Content-Disposition: form-data; name=\"model\"", "whisper") +
              "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\n" +
              std::string(100000, 'x');
  form_scanner s(ct, "model");
  auto f = s.scan(body);
  ASSERT_EQ(f.status, form_status::ok);
  EXPECT_EQ(body.substr(f.begin, f.end - f.begin), "whisper");
  EXPECT_EQ(f.text_bytes, 7u);
}

TEST(MultipartScanner, ModelAfterFileNeedsTheFileWhole) {
  auto body = part("Content-Disposition: form-data; name=\"prompt\"", "twelve bytes") + file_part +
              part("Content-Disposition: form-data; name=\"model\"", "whisper") + end();
  form_scanner s(ct, "model");
  auto cut = body.find("whisper");
  EXPECT_EQ(s.scan(std::string_view(body).substr(0, cut)).status, form_status::pending);
  auto f = s.scan(body);
  ASSERT_EQ(f.status, form_status::ok);
  EXPECT_EQ(f.text_bytes, 12u + 7u);
  EXPECT_EQ(s.delimiter(), "\r\n--XyZ");
}

// The end of a streamed body: its close delimiter, wherever the pieces cut it.
TEST(MultipartEndWatch, SeesTheCloseDelimiterAcrossPieces) {
  const std::string rest = std::string(5000, 'z') + "\r\n--XyZ--";  // the end: its last byte
  for (std::size_t piece : {std::size_t{1}, std::size_t{3}, std::size_t{9}, rest.size()}) {
    form_end_watch w;
    w.start("\r\n--XyZ", "tail", "model");
    for (std::size_t i = 0; i < rest.size(); i += piece) {
      EXPECT_FALSE(w.seen()) << piece;
      w.feed(std::string_view(rest).substr(i, piece));
    }
    EXPECT_TRUE(w.seen()) << piece;
    EXPECT_EQ(w.problem(), form_status::ok);
  }
  // A part delimiter is not the end; neither is a body cut inside the close delimiter.
  form_end_watch w;
  w.start("\r\n--XyZ", "", "model");
  w.feed("abc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nmore\r\n--XyZ-");
  EXPECT_FALSE(w.seen());
  w.feed("-");
  EXPECT_TRUE(w.seen());
  EXPECT_EQ(w.problem(), form_status::ok);
  // The tail before the first piece counts (the close delimiter cut at the prefix's end).
  form_end_watch t;
  t.start("\r\n--XyZ", "x\r\n--Xy", "model");
  t.feed("Z--");
  EXPECT_TRUE(t.seen());
}

// Another part named like the routing field, wherever the pieces cut its head: the piece that
// completes the head reports it (and is not sent); other parts, files included, pass.
TEST(MultipartEndWatch, FindsASecondRoutingFieldAcrossPieces) {
  const std::string file =
      "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
      "filename=\"a.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n" +
      std::string(3000, 'a') + "\r\n--XyZ\r\n";
  const std::string second = "Content-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o";
  const std::string rest = file + second + "\r\n--XyZ--\r\n";
  const std::size_t shown = file.size() + second.size() - std::string("gpt-4o").size();
  for (std::size_t piece :
       {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{500}, rest.size()}) {
    form_end_watch w;
    w.start("\r\n--XyZ", "", "model");
    std::size_t fed = 0;
    while (fed < rest.size() && w.problem() == form_status::ok) {
      auto n = std::min(piece, rest.size() - fed);
      w.feed(std::string_view(rest).substr(fed, n));
      fed += n;
    }
    EXPECT_EQ(w.problem(), form_status::duplicate) << piece;
    EXPECT_FALSE(w.seen());
    // Reported by the piece holding the head's blank line, not later.
    EXPECT_GE(fed, shown) << piece;
    EXPECT_LT(fed, shown + piece) << piece;
  }
  // A name that only starts like it, or the same word as a file's name: not the field.
  form_end_watch other;
  other.start("\r\n--XyZ", "", "model");
  other.feed(
      "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"models\"\r\n\r\nx"
      "\r\n--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"model\""
      "\r\n\r\ny\r\n--XyZ--");
  EXPECT_EQ(other.problem(), form_status::ok);
  EXPECT_TRUE(other.seen());
  // In the tail already (the prefix read held the second part).
  form_end_watch tail;
  tail.start("\r\n--XyZ", "\r\n--XyZ\r\nContent-Disposition: form-data; name=model\r\n\r\n",
             "model");
  EXPECT_EQ(tail.problem(), form_status::duplicate);
}

TEST(MultipartEndWatch, RefusesWhatIsNotAPartAfterADelimiter) {
  form_end_watch junk;  // neither "--" nor CRLF after the delimiter
  junk.start("\r\n--XyZ", "", "model");
  junk.feed("\r\n--XyZ  x\r\n");
  EXPECT_EQ(junk.problem(), form_status::malformed);
  form_end_watch ws;  // whitespace before the CRLF is allowed (transport padding)
  ws.start("\r\n--XyZ", "", "model");
  ws.feed("\r\n--XyZ \t\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--XyZ--");
  EXPECT_EQ(ws.problem(), form_status::ok);
  EXPECT_TRUE(ws.seen());
  form_end_watch endless;  // a head without its blank line within max_part_head
  endless.start("\r\n--XyZ", "", "model");
  endless.feed("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n");
  EXPECT_EQ(endless.problem(), form_status::ok);
  endless.feed(std::string(form_end_watch::max_part_head, 'h'));
  EXPECT_EQ(endless.problem(), form_status::malformed);
}

}  // namespace
}  // namespace ob::proxy::http
