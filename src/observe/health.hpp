// Structured lines for health and reload events. Health events go to the process log (stderr,
// in the configured format: logfmt text or JSON) and, as JSON, to the event ring; reload events
// go to the event ring (the server already logs reloads in its own words).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "observe/log.hpp"

namespace ob::observe {

struct health_record {
  std::string_view event;  // "ejected", "probe", "recovered", "check_failed", ...
  std::string_view group;
  std::string_view target;        // real model name
  std::string_view provider;      // provider base
  std::string_view reason;        // why, e.g. "5 consecutive failures", "probe answered 503"
  std::int64_t ejection_ms = -1;  // length of this ejection; -1 = none
  std::chrono::system_clock::time_point until{};  // end of the ejection; epoch = none
  std::int64_t ejections = -1;                    // ejections in a row (cooldown doubling)
};

// "ejected" and "check_failed" are warnings, every other event info.
level health_level(std::string_view event);

// "<time> <level> health event=ejected group=... target=... provider=... reason=...
//  ejection_ms=... until=... ejections=..." (unset fields left out)
void format_health_text(std::string& out, const health_record& h);
// {"time":...,"type":"health","level":...,"event":...,"group":...,"target":...,"provider":...,
//  "reason":...,"ejection_ms":...|null,"until":...|null,"ejections":...|null}
void format_health_json(std::string& out, const health_record& h);
// Logs the event (if its level is enabled) and publishes it to events().
void health_event(const health_record& h);

struct reload_record {
  bool ok = true;                // false: the new file was refused, the old config runs on
  std::uint64_t generation = 0;  // config generation now running
  std::string_view trigger;      // "file", "signal", "admin", ...
  std::uint64_t errors = 0;
  std::uint64_t warnings = 0;
  std::string_view detail;  // first diagnostic or a summary; never a secret
};

// {"time":...,"type":"reload","ok":...,"generation":...,"trigger":...,"errors":...,
//  "warnings":...,"detail":...|null}
void format_reload_json(std::string& out, const reload_record& r);
// Publishes to events().
void reload_event(const reload_record& r);

}  // namespace ob::observe
