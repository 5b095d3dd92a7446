// Process log lines on stderr, one write(2) per line so lines of different threads never mix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ob::observe {

enum class level { info, warn, error };
void log(level l, std::string_view message);

// What one proxied (or refused) request did; written as one logfmt line. Never holds a token.
struct request_record {
  std::string_view method;
  std::string_view path;      // without the query string
  std::string_view group;     // "" when no group was resolved
  std::string_view target;    // real model name of the last attempt, "" if none
  std::string_view provider;  // provider base of the last attempt
  int status = 0;
  double duration_ms = 0;
  std::uint64_t bytes_in = 0;   // request body bytes
  std::uint64_t bytes_out = 0;  // answer bytes written to the client (body, incl. chunk framing)
  bool stream = false;
  int attempts = 0;
  std::int64_t prompt_tokens = -1;
  std::int64_t completion_tokens = -1;
  std::int64_t total_tokens = -1;
  std::string_view outcome = "ok";  // ok, client_cancelled, upstream_error, upstream_timeout, ...
  std::string_view detail;          // short cause of a failure
  std::string_view tried;           // failed attempts before the answer: "model:cause,..."
};

// Appends the line to this thread's buffer; it is written when the buffer passes 32 KiB or on
// flush_access_log(), which each worker calls every 20 ms (like nginx's `access_log buffer=`),
// so logging costs a write(2) per batch instead of per request.
void access_log(const request_record& r);
void flush_access_log();
// Formats without writing (tests, and the writer above).
void format_access_line(std::string& out, const request_record& r);

}  // namespace ob::observe
