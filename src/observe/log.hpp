// Process log lines (stderr) and access lines (stderr or a file), text (logfmt) or JSON.
//
// Process lines: one write(2) per line so lines of different threads never mix; lines below
// the level set with set_level() are dropped after one relaxed atomic load.
// Access lines: appended to a per-thread buffer written in batches (see access_log()).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ob::observe {

enum class level { debug, info, warn, error };

// "debug", "info", "warn", "error" -> level; nullopt for anything else.
std::optional<level> parse_level(std::string_view name);
std::string_view level_name(level l);

namespace detail {
inline std::atomic<int> min_level{static_cast<int>(level::info)};
}
// Lines below `l` are dropped. Safe from any thread at any time.
inline void set_level(level l) {
  detail::min_level.store(static_cast<int>(l), std::memory_order_relaxed);
}
// For callers that build an expensive message: `if (log_enabled(level::debug)) log(...)`.
inline bool log_enabled(level l) {
  return static_cast<int>(l) >= detail::min_level.load(std::memory_order_relaxed);
}
void log(level l, std::string_view message);

// One failed attempt of a request, for the structured `tried` list.
struct attempt {
  std::string_view target;  // real model name
  std::string_view cause;   // e.g. "connect", "timeout", "500"
};

// What one proxied (or refused) request did; written as one access line. Never holds a token
// or a provider key, and must not: every field here ends up in a log file.
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
  // Added for observability; every one is optional (empty / negative = unknown, left out of
  // the text line, null in JSON).
  std::string_view request_id;
  std::string_view client;       // peer "address:port" ("[v6]:port")
  std::string_view client_name;  // name of the client key that authorized the request
  std::string_view protocol;     // "h2" for an HTTP/2 stream; empty (left out) for HTTP/1.x
  double ttfb_ms = -1;           // request sent upstream -> first byte of the upstream answer
  double upstream_ms = -1;       // time spent in upstream exchanges, all attempts
  // Structured form of `tried`; preferred when set (a model name may hold ':' or ',').
  std::span<const attempt> tried_list;
  // Metrics only (not logged): label ids of observe::metrics::labels(), 0 = none, and the time
  // from the request's arrival to the first answer byte written to the client (a stream's:
  // to its first data event, -1 without one).
  struct metric_labels {
    std::uint32_t group = 0, target = 0, provider = 0, model = 0, client = 0;
  } labels;
  double first_write_ms = -1;
};

// ---- access log output -------------------------------------------------------------------

enum class access_format { text, json };
// Which requests get a line: all, only failed ones (status >= 400 or an outcome other than
// "ok"), or none. The event ring (live dashboards) is fed every request whatever this says.
enum class access_mode { all, errors, off };
// True when `r` is logged under access_mode::errors.
bool is_failed_request(const request_record& r);

// Appends the line to this thread's buffer in the configured format (text by default) when the
// configured access_mode keeps it; it is written when the buffer passes 32 KiB or on
// flush_access_log(), which each worker calls every 20 ms while the buffer holds lines (like
// nginx's `access_log buffer=`), so logging costs a write(2) per batch instead of per request.
// When the event ring is enabled the record is also published there as JSON (whatever the
// mode: a dashboard's live feed does not depend on what the file keeps).
void access_log(const request_record& r);
void flush_access_log();
// Whether this thread's buffer holds lines not yet written.
bool access_log_pending();
// Called on this thread when a line goes into its empty buffer (null: none): a worker's flush
// loop sleeps while the buffer is empty and is woken this way.
void on_access_buffered(void (*hook)(void*), void* arg);

// Formats without writing (tests, benchmarks, and the writer above); both append one line
// ending in '\n'.
void format_access_line(std::string& out, const request_record& r);  // logfmt text
void format_access_json(std::string& out, const request_record& r);  // one JSON object

struct access_log_options {
  access_format format = access_format::text;
  std::string file;  // "" = stderr; else opened O_APPEND, created 0640
  access_mode mode = access_mode::all;
};
// Applies the format and opens `file` when it differs from the current one (the old file is
// closed once no worker is writing to it). On an open error nothing changes, false + *error.
// Call at start and after each reload.
bool configure_access_log(const access_log_options& o, std::string* error);
access_format current_access_format();
// Reopens the current file by name (logrotate's rename + create): batches written before the
// call are in the old file, later ones in the new; each batch (whole lines) goes to exactly one
// of them, none is lost. Safe from any
// thread while workers log. No-op (true) when logging to stderr. False + *error if the open
// fails (the old file stays in use).
bool reopen_access_log(std::string* error = nullptr);

}  // namespace ob::observe
