// The upstream answer parser as the exchange wires it (src/proxy/parsers.*, exchange.cpp:
// eager, 64 KiB head limit, no body limit, interim 1xx answers skipped, end of stream = put_eof).
// Invariants: never crashes; status, reason, headers, de-chunked body and outcome do not depend
// on how the bytes were split into reads (a bad status line may be noticed only at the end of
// the head when split).
#include <optional>
#include <string>
#include <vector>

#include "fuzz/http_feed.hpp"
#include "proxy/parsers.hpp"

namespace {

namespace bhttp = boost::beast::http;
using namespace ob::proxy;

struct result {
  bool done = false, error = false, eof_ok = false;
  int status = 0, version = 0, interim = 0;
  std::string reason, body;
  std::vector<std::string> headers;
  bool operator==(const result&) const = default;
};

void sink(void* ctx, std::string_view bytes) {
  static_cast<std::string*>(ctx)->append(bytes);
}

result run(const std::vector<std::string_view>& reads) {
  http::header_list headers;
  result r;
  std::optional<response_parser> parser;
  auto start = [&] {
    headers.clear();
    r.body.clear();
    parser.emplace(headers, &sink, &r.body);
    parser->eager(true);
    parser->header_limit(64 * 1024);
    parser->body_limit(boost::none);
  };
  start();
  std::string in;
  for (std::string_view chunk : reads) {
    in.append(chunk);
    while (!in.empty() && !parser->is_done() && ob::proxy::ready_to_feed(*parser, in.size())) {
      boost::beast::error_code ec;
      auto used = parser->put(boost::asio::buffer(in), ec);
      OB_FUZZ_CHECK(used <= in.size());
      in.erase(0, used);
      if (ec == bhttp::error::need_more) break;
      if (ec) {
        r.error = true;
        return r;
      }
      if (parser->is_header_done() && parser->status() < 200 && parser->is_done()) {
        ++r.interim;
        start();
        continue;
      }
      if (used == 0) break;
    }
    if (parser->is_done()) break;
  }
  if (parser->got_some() && !parser->is_done()) {
    boost::beast::error_code ec;
    parser->put_eof(ec);
    r.eof_ok = !ec;
  }
  r.done = parser->is_done();
  if (parser->is_header_done()) {
    r.status = parser->status();
    r.version = parser->version();
    r.reason = parser->reason();
    r.headers = ob::fuzz::header_lines(headers);
  }
  return r;
}

void print(const char* what, const result& r) {
  std::fprintf(stderr,
               "%s: done %d error %d eof_ok %d status %d version %d interim %d reason '%s' headers "
               "%zu body %zu\n",
               what, r.done, r.error, r.eof_ok, r.status, r.version, r.interim, r.reason.c_str(),
               r.headers.size(), r.body.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ob::fuzz::split_input in = ob::fuzz::take_splits(data, size);
  result whole = run({in.bytes});
  auto reads = ob::fuzz::pieces(in.bytes, in.cuts);
  result split = run(reads);
  if (whole.error && !split.error && split.status == 0) {
    // Beast checks a status line that arrives whole at once, but once it has asked for more it
    // waits for the end of the head before parsing again: the same error comes later.
    reads.push_back("\r\n\r\n");
    split = run(reads);
  }
  // An unfinished chunked answer: up to 4 trailing bytes wait for more (proxy::ready_to_feed),
  // so how much of its body came out depends on the reads; what came out must agree.
  // Only answers both runs finished are compared whole; for the others, the head.
  if (!whole.done || !split.done) {
    whole.done = split.done = false;
    whole.error = split.error = false;
    whole.eof_ok = split.eof_ok = false;
    whole.body.clear();
    split.body.clear();
    if (whole.status == 0 || split.status == 0) return 0;  // one never finished its head
  }
  if (!(split == whole)) {
    print("whole", whole);
    print("split", split);
  }
  OB_FUZZ_CHECK(split == whole);
  return 0;
}
