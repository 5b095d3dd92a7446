#include "observe/log.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace ob::observe {
namespace {

// Formats "YYYY-MM-DDTHH:MM:SS.mmmZ"; the part up to the seconds is formatted once per second
// per thread (this runs for every access line).
void append_time(std::string& out) {
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[64];
  auto now = std::chrono::system_clock::now();
  auto ms_total =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms_total / 1000);
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_secs = secs;
  }
  out.append(cached, 19);
  auto ms = static_cast<int>(ms_total % 1000);
  char frac[6] = {'.',
                  static_cast<char>('0' + ms / 100),
                  static_cast<char>('0' + ms / 10 % 10),
                  static_cast<char>('0' + ms % 10),
                  'Z',
                  0};
  out.append(frac, 5);
}

// Values are quoted when they hold spaces, quotes or '=' so the line stays machine-readable.
void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty() || v.find_first_of(" \"=\t") != std::string_view::npos;
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n' || c == '\r') c = ' ';
    out += c;
  }
  out += '"';
}

void kv(std::string& out, std::string_view k, std::string_view v) {
  out += ' ';
  out += k;
  out += '=';
  append_value(out, v);
}

void kv(std::string& out, std::string_view k, std::int64_t v) {
  out += ' ';
  out += k;
  out += '=';
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void write_all(const std::string& s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    auto n = ::write(2, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void log(level l, std::string_view message) {
  std::string line;
  append_time(line);
  line += l == level::info ? " info " : l == level::warn ? " warn " : " error ";
  line += message;
  line += '\n';
  write_all(line);
}

void format_access_line(std::string& out, const request_record& r) {
  append_time(out);
  out += " access";
  kv(out, "method", r.method);
  kv(out, "path", r.path);
  if (!r.group.empty()) kv(out, "group", r.group);
  if (!r.target.empty()) kv(out, "target", r.target);
  if (!r.provider.empty()) kv(out, "provider", r.provider);
  kv(out, "status", r.status);
  char dur[32];
  auto [dur_end, dur_ec] =
      std::to_chars(dur, dur + sizeof dur, r.duration_ms, std::chars_format::fixed, 3);
  kv(out, "duration_ms", std::string_view(dur, static_cast<std::size_t>(dur_end - dur)));
  kv(out, "bytes_in", static_cast<std::int64_t>(r.bytes_in));
  kv(out, "bytes_out", static_cast<std::int64_t>(r.bytes_out));
  if (r.stream) kv(out, "stream", "true");
  if (r.attempts) kv(out, "attempts", r.attempts);
  if (r.prompt_tokens >= 0) kv(out, "prompt_tokens", r.prompt_tokens);
  if (r.completion_tokens >= 0) kv(out, "completion_tokens", r.completion_tokens);
  if (r.total_tokens >= 0) kv(out, "total_tokens", r.total_tokens);
  kv(out, "outcome", r.outcome);
  if (!r.tried.empty()) kv(out, "tried", r.tried);
  if (!r.detail.empty()) kv(out, "detail", r.detail);
  out += '\n';
}

namespace {
thread_local std::string access_buffer;
constexpr std::size_t access_buffer_limit = 32 * 1024;
}  // namespace

void access_log(const request_record& r) {
  format_access_line(access_buffer, r);
  if (access_buffer.size() >= access_buffer_limit) flush_access_log();
}

void flush_access_log() {
  if (access_buffer.empty()) return;
  write_all(access_buffer);
  access_buffer.clear();
}

}  // namespace ob::observe
