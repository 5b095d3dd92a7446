#include "observe/health.hpp"

#include <unistd.h>

#include "observe/events.hpp"
#include "observe/fields.hpp"

namespace ob::observe {
namespace {

using namespace detail;

std::size_t texts(const health_record& h) {
  return h.event.size() + h.group.size() + h.target.size() + h.provider.size() + h.reason.size();
}

bool has_until(const health_record& h) {
  return h.until.time_since_epoch().count() > 0;
}

char* put_level(char* p, level l) {
  auto name = level_name(l);
  std::memcpy(p, name.data(), name.size());
  return p + name.size();
}

}  // namespace

level health_level(std::string_view event) {
  return event == "ejected" || event == "check_failed" ? level::warn : level::info;
}

void format_health_text(std::string& out, const health_record& h) {
  const std::size_t old = out.size();
  out.resize(old + 2 * texts(h) + 256);
  char* const begin = out.data() + old;
  char* p = put_now(begin);
  *p++ = ' ';
  p = put_literal(put_level(p, health_level(h.event)), " health");
  p = put_value(put_key(p, "event"), h.event);
  if (!h.group.empty()) p = put_value(put_key(p, "group"), h.group);
  if (!h.target.empty()) p = put_value(put_key(p, "target"), h.target);
  if (!h.provider.empty()) p = put_value(put_key(p, "provider"), h.provider);
  if (!h.reason.empty()) p = put_value(put_key(p, "reason"), h.reason);
  if (h.ejection_ms >= 0) p = put_int(put_key(p, "ejection_ms"), h.ejection_ms);
  if (has_until(h)) p = put_time(put_key(p, "until"), h.until);
  if (h.ejections >= 0) p = put_int(put_key(p, "ejections"), h.ejections);
  *p++ = '\n';
  out.resize(old + static_cast<std::size_t>(p - begin));
}

void format_health_json(std::string& out, const health_record& h) {
  const std::size_t old = out.size();
  out.resize(old + json_expansion * texts(h) + 320);
  char* const begin = out.data() + old;
  char* p = put_now(put_literal(begin, "{\"time\":\""));
  p = put_literal(p, "\",\"type\":\"health\",\"level\":\"");
  p = put_level(p, health_level(h.event));
  *p++ = '"';
  p = put_json_string(put_json_key(p, "event"), h.event);
  p = put_json_text_or_null(put_json_key(p, "group"), h.group);
  p = put_json_text_or_null(put_json_key(p, "target"), h.target);
  p = put_json_text_or_null(put_json_key(p, "provider"), h.provider);
  p = put_json_text_or_null(put_json_key(p, "reason"), h.reason);
  p = put_json_int_or_null(put_json_key(p, "ejection_ms"), h.ejection_ms);
  p = put_json_key(p, "until");
  if (has_until(h)) {
    *p++ = '"';
    p = put_time(p, h.until);
    *p++ = '"';
  } else {
    p = put_literal(p, "null");
  }
  p = put_json_int_or_null(put_json_key(p, "ejections"), h.ejections);
  *p++ = '}';
  *p++ = '\n';
  out.resize(old + static_cast<std::size_t>(p - begin));
}

void health_event(const health_record& h) {
  const bool json = current_access_format() == access_format::json;
  std::string line;
  if (log_enabled(health_level(h.event))) {
    if (json)
      format_health_json(line, h);
    else
      format_health_text(line, h);
    write_all(2, line);
  }
  if (!events().enabled()) return;
  if (!json || line.empty()) {
    line.clear();
    format_health_json(line, h);
  }
  line.pop_back();
  events().publish(line);
}

void format_reload_json(std::string& out, const reload_record& r) {
  const std::size_t old = out.size();
  out.resize(old + json_expansion * (r.trigger.size() + r.detail.size()) + 256);
  char* const begin = out.data() + old;
  char* p = put_now(put_literal(begin, "{\"time\":\""));
  p = put_literal(p, "\",\"type\":\"reload\"");
  p = put_json_key(p, "ok");
  p = r.ok ? put_literal(p, "true") : put_literal(p, "false");
  p = put_int(put_json_key(p, "generation"), static_cast<std::int64_t>(r.generation));
  p = put_json_text_or_null(put_json_key(p, "trigger"), r.trigger);
  p = put_int(put_json_key(p, "errors"), static_cast<std::int64_t>(r.errors));
  p = put_int(put_json_key(p, "warnings"), static_cast<std::int64_t>(r.warnings));
  p = put_json_text_or_null(put_json_key(p, "detail"), r.detail);
  *p++ = '}';
  *p++ = '\n';
  out.resize(old + static_cast<std::size_t>(p - begin));
}

void reload_event(const reload_record& r) {
  if (!events().enabled()) return;
  std::string line;
  format_reload_json(line, r);
  line.pop_back();
  events().publish(line);
}

}  // namespace ob::observe
