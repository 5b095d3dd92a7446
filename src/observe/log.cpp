#include "observe/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <shared_mutex>

#include "observe/clock.hpp"
#include "observe/events.hpp"
#include "observe/fields.hpp"

namespace ob::observe {

namespace detail {

namespace {
// "YYYY-MM-DDTHH:MM:SS" (19 bytes) into out[64] (room for any int the compiler imagines).
void format_seconds(std::time_t secs, char (&out)[64]) {
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

char* put_ms_suffix(char* p, std::int64_t ms_total) {
  auto ms = static_cast<int>(ms_total % 1000);
  p[19] = '.';
  p[20] = static_cast<char>('0' + ms / 100);
  p[21] = static_cast<char>('0' + ms / 10 % 10);
  p[22] = static_cast<char>('0' + ms % 10);
  p[23] = 'Z';
  return p + time_size;
}
}  // namespace

char* put_now(char* p) {
  thread_local std::time_t cached_secs = -1;
  thread_local char cached[64];
  auto now = coarse_wall_now();
  auto ms_total =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms_total / 1000);
  if (secs != cached_secs) {
    format_seconds(secs, cached);
    cached_secs = secs;
  }
  std::memcpy(p, cached, 19);
  return put_ms_suffix(p, ms_total);
}

char* put_time(char* p, std::chrono::system_clock::time_point t) {
  auto ms_total =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  if (ms_total < 0) ms_total = 0;
  char secs[64];
  format_seconds(static_cast<std::time_t>(ms_total / 1000), secs);
  std::memcpy(p, secs, 19);
  return put_ms_suffix(p, ms_total);
}

}  // namespace detail

bool detail::write_all(int fd, std::string_view s) {
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    auto n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

namespace {

using namespace detail;

// Where access lines go. Workers hold the lock shared for one write(2) of their batch; a
// reopen holds it exclusively to swap the descriptor, so a batch is never split between two
// files and the old descriptor is closed only when no batch is being written to it.
struct access_sink {
  std::shared_mutex m;
  int fd = 2;        // guarded by m
  std::string path;  // guarded by m; "" = stderr
};
access_sink& sink() {
  static access_sink s;
  return s;
}
std::atomic<int> format_now{static_cast<int>(access_format::text)};
std::atomic<int> mode_now{static_cast<int>(access_mode::all)};

int open_log_file(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0 && error) *error = "cannot open access log \"" + path + "\": " + std::strerror(errno);
  return fd;
}

// Swaps in (fd, path) and closes the previous file descriptor (never stderr).
void install(int fd, std::string path) {
  auto& s = sink();
  int old;
  {
    std::unique_lock lock(s.m);
    old = s.fd;
    s.fd = fd;
    s.path = std::move(path);
  }
  if (old != 2 && old != fd) ::close(old);
}

}  // namespace

std::optional<level> parse_level(std::string_view name) {
  if (name == "debug") return level::debug;
  if (name == "info") return level::info;
  if (name == "warn") return level::warn;
  if (name == "error") return level::error;
  return std::nullopt;
}

std::string_view level_name(level l) {
  switch (l) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    default:
      return "error";
  }
}

void log(level l, std::string_view message) {
  if (!log_enabled(l)) return;
  std::string line;
  const auto name = level_name(l);
  line.resize(time_size + json_expansion * message.size() + 64);
  char* p = line.data();
  if (current_access_format() == access_format::json) {
    p = put_now(put_literal(p, "{\"time\":\""));
    p = put_literal(p, "\",\"level\":\"");
    std::memcpy(p, name.data(), name.size());
    p = put_json_string(put_literal(p + name.size(), "\",\"msg\":"), message);
    *p++ = '}';
  } else {
    p = put_now(p);
    *p++ = ' ';
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    *p++ = ' ';
    std::memcpy(p, message.data(), message.size());
    p += message.size();
  }
  *p++ = '\n';
  line.resize(static_cast<std::size_t>(p - line.data()));
  write_all(2, line);
}

access_format current_access_format() {
  return static_cast<access_format>(format_now.load(std::memory_order_relaxed));
}

bool configure_access_log(const access_log_options& o, std::string* error) {
  auto& s = sink();
  std::string current;
  {
    std::shared_lock lock(s.m);
    current = s.path;
  }
  if (o.file != current) {
    if (o.file.empty()) {
      install(2, "");
    } else {
      int fd = open_log_file(o.file, error);
      if (fd < 0) return false;
      install(fd, o.file);
    }
  }
  format_now.store(static_cast<int>(o.format), std::memory_order_relaxed);
  mode_now.store(static_cast<int>(o.mode), std::memory_order_relaxed);
  return true;
}

bool reopen_access_log(std::string* error) {
  auto& s = sink();
  std::string path;
  {
    std::shared_lock lock(s.m);
    path = s.path;
  }
  if (path.empty()) return true;
  int fd = open_log_file(path, error);
  if (fd < 0) return false;
  install(fd, std::move(path));
  return true;
}

namespace {
thread_local std::string access_buffer;
thread_local std::string event_scratch;  // the JSON form for the event ring, text format only
thread_local void (*buffered_hook)(void*) = nullptr;  // on_access_buffered
thread_local void* buffered_arg = nullptr;
constexpr std::size_t access_buffer_limit = 32 * 1024;
}  // namespace

bool is_failed_request(const request_record& r) {
  return r.status >= 400 || r.outcome != "ok";
}

void access_log(const request_record& r) {
  const auto mode = static_cast<access_mode>(mode_now.load(std::memory_order_relaxed));
  if (mode != access_mode::all && (mode == access_mode::off || !is_failed_request(r)))
      [[unlikely]] {
    // No line; the live feed still sees the request.
    if (events().enabled() && events().keeps_access(coarse_now())) {
      event_scratch.clear();
      format_access_json(event_scratch, r);
      event_scratch.pop_back();  // the '\n'
      events().publish(event_scratch);
    }
    return;
  }
  const bool json = current_access_format() == access_format::json;
  const std::size_t start = access_buffer.size();
  if (json)
    format_access_json(access_buffer, r);
  else
    format_access_line(access_buffer, r);
  if (events().enabled() && events().keeps_access(coarse_now())) [[unlikely]] {
    std::string_view line;
    if (json) {
      line = std::string_view(access_buffer).substr(start);
    } else {
      event_scratch.clear();
      format_access_json(event_scratch, r);
      line = event_scratch;
    }
    line.remove_suffix(1);  // the '\n'
    events().publish(line);
  }
  if (start == 0 && buffered_hook) buffered_hook(buffered_arg);
  if (access_buffer.size() >= access_buffer_limit) flush_access_log();
}

bool access_log_pending() {
  return !access_buffer.empty();
}

void on_access_buffered(void (*hook)(void*), void* arg) {
  buffered_hook = hook;
  buffered_arg = arg;
}

void flush_access_log() {
  if (access_buffer.empty()) return;
  {
    auto& s = sink();
    std::shared_lock lock(s.m);
    write_all(s.fd, access_buffer);
  }
  access_buffer.clear();
}

}  // namespace ob::observe
