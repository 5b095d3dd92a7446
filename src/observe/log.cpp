#include "observe/log.hpp"

#include "observe/clock.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace ob::observe {
namespace {

// Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 bytes) at p; the part up to the seconds is formatted
// once per second per thread (this runs for every access line).
constexpr std::size_t time_size = 24;
char* put_time(char* p) {
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[64];
  auto now = coarse_wall_now();  // within a tick (<= 4 ms), as nginx's cached time
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
  std::memcpy(p, cached, 19);
  auto ms = static_cast<int>(ms_total % 1000);
  p[19] = '.';
  p[20] = static_cast<char>('0' + ms / 100);
  p[21] = static_cast<char>('0' + ms / 10 % 10);
  p[22] = static_cast<char>('0' + ms % 10);
  p[23] = 'Z';
  return p + time_size;
}

void append_time(std::string& out) {
  char buf[time_size];
  out.append(buf, put_time(buf));
}

// Values are quoted when they hold anything that would break a logfmt field (space, quote, '=',
// backslash, control bytes); inside quotes '"' and '\\' are escaped and control bytes become
// spaces, so one request is always one line.
bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (unsigned char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return true;
  return false;
}

// Writes into `p` (room for 2 * v.size() + 2 bytes), returns the new end.
char* put_value(char* p, std::string_view v) {
  if (!needs_quotes(v)) {
    std::memcpy(p, v.data(), v.size());
    return p + v.size();
  }
  *p++ = '"';
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') *p++ = '\\';
    *p++ = (c < ' ' || c == 0x7f) ? ' ' : static_cast<char>(c);
  }
  *p++ = '"';
  return p;
}

// " key=" (key is a literal)
template <std::size_t N>
char* put_key(char* p, const char (&key)[N]) {
  *p++ = ' ';
  std::memcpy(p, key, N - 1);
  p += N - 1;
  *p++ = '=';
  return p;
}

char* put_int(char* p, std::int64_t v) {
  return std::to_chars(p, p + 20, v).ptr;
}

// Milliseconds with three decimals (microsecond resolution), e.g. 12.345.
char* put_millis(char* p, double ms) {
  if (!(ms >= 0)) ms = 0;
  if (ms > 1e12) ms = 1e12;  // ~31 years: keeps the conversion defined
  const auto us = static_cast<std::int64_t>(ms * 1000.0 + 0.5);
  p = put_int(p, us / 1000);
  const auto frac = static_cast<int>(us % 1000);
  p[0] = '.';
  p[1] = static_cast<char>('0' + frac / 100);
  p[2] = static_cast<char>('0' + frac / 10 % 10);
  p[3] = static_cast<char>('0' + frac % 10);
  return p + 4;
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
  // One resize to the worst case, then plain stores: this runs for every request.
  const std::size_t texts = r.method.size() + r.path.size() + r.group.size() + r.target.size() +
                            r.provider.size() + r.outcome.size() + r.tried.size() + r.detail.size();
  const std::size_t old = out.size();
  out.resize(old + 2 * texts + 512);
  char* const begin = out.data() + old;
  char* p = begin;
  p = put_time(p);
  std::memcpy(p, " access", 7);
  p += 7;
  p = put_value(put_key(p, "method"), r.method);
  p = put_value(put_key(p, "path"), r.path);
  if (!r.group.empty()) p = put_value(put_key(p, "group"), r.group);
  if (!r.target.empty()) p = put_value(put_key(p, "target"), r.target);
  if (!r.provider.empty()) p = put_value(put_key(p, "provider"), r.provider);
  p = put_int(put_key(p, "status"), r.status);
  p = put_millis(put_key(p, "duration_ms"), r.duration_ms);
  p = put_int(put_key(p, "bytes_in"), static_cast<std::int64_t>(r.bytes_in));
  p = put_int(put_key(p, "bytes_out"), static_cast<std::int64_t>(r.bytes_out));
  if (r.stream) p = put_value(put_key(p, "stream"), "true");
  if (r.attempts) p = put_int(put_key(p, "attempts"), r.attempts);
  if (r.prompt_tokens >= 0) p = put_int(put_key(p, "prompt_tokens"), r.prompt_tokens);
  if (r.completion_tokens >= 0) p = put_int(put_key(p, "completion_tokens"), r.completion_tokens);
  if (r.total_tokens >= 0) p = put_int(put_key(p, "total_tokens"), r.total_tokens);
  p = put_value(put_key(p, "outcome"), r.outcome);
  if (!r.tried.empty()) p = put_value(put_key(p, "tried"), r.tried);
  if (!r.detail.empty()) p = put_value(put_key(p, "detail"), r.detail);
  *p++ = '\n';
  out.resize(old + static_cast<std::size_t>(p - begin));
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
