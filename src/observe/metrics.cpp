#include "observe/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace ob::observe::metrics {

namespace {

constexpr double token_bounds[] = {1,     4,     16,     64,      256,     1024,     4096,
                                   16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
constexpr double duration_bounds[] = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                      1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
constexpr double ttft_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                  0.25,  0.5,   0.75, 1,    2.5,  5,    7.5,  10};
constexpr double tpot_bounds[] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
                                  0.3,  0.4,   0.5,  0.75,  1.0, 2.5};

static_assert(std::size(token_bounds) <= max_buckets && std::size(duration_bounds) <= max_buckets &&
              std::size(ttft_bounds) <= max_buckets && std::size(tpot_bounds) <= max_buckets);

}  // namespace

bucket_layout token_usage_buckets() {
  return token_bounds;
}
bucket_layout request_duration_buckets() {
  return duration_bounds;
}
bucket_layout time_to_first_token_buckets() {
  return ttft_bounds;
}
bucket_layout time_per_output_token_buckets() {
  return tpot_bounds;
}

std::size_t bucket_index(bucket_layout layout, double value) {
  if (std::isnan(value)) return layout.size();
  // Bounds are few (<= 24) and a sample usually lands low: a linear scan beats a binary search.
  std::size_t i = 0;
  while (i < layout.size() && value > layout[i]) ++i;
  return i;
}

void histogram::observe(bucket_layout layout, double value) {
  ++counts[bucket_index(layout, value)];
  sum += value;
  ++count;
}

void histogram::merge(const histogram& other) {
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  sum += other.sum;
  count += other.count;
}

interner::interner() {
  values_.emplace_back();
  escaped_.emplace_back();
  ids_.emplace(values_.back(), none);
}

std::uint32_t interner::intern(std::string_view s) {
  std::string escaped;
  append_label_value(escaped, s);  // outside the lock; wasted only when s is already known
  std::lock_guard lock(mu_);
  if (auto it = ids_.find(s); it != ids_.end()) return it->second;
  values_.emplace_back(s);
  escaped_.push_back(std::move(escaped));
  auto id = static_cast<std::uint32_t>(values_.size() - 1);
  ids_.emplace(values_.back(), id);
  return id;
}

std::shared_ptr<const interner::table> interner::snapshot() const {
  std::vector<std::string_view> values;
  auto t = std::make_shared<table>();
  {
    std::lock_guard lock(mu_);
    if (table_ && table_->escaped.size() == values_.size()) return table_;
    values.assign(values_.begin(), values_.end());
    t->escaped.assign(escaped_.begin(), escaped_.end());
  }
  // Sort outside the lock: the strings never move, and interning must not wait on a scrape.
  std::vector<std::uint32_t> order(values.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::uint32_t a, std::uint32_t b) { return values[a] < values[b]; });
  t->rank.resize(values.size());
  for (std::uint32_t r = 0; r < order.size(); ++r) t->rank[order[r]] = r;
  std::lock_guard lock(mu_);
  if (!table_ || table_->escaped.size() < t->escaped.size()) table_ = t;
  return t;
}

std::string_view interner::value(std::uint32_t id) const {
  std::lock_guard lock(mu_);
  return id < values_.size() ? std::string_view(values_[id]) : std::string_view();
}

std::size_t interner::size() const {
  std::lock_guard lock(mu_);
  return values_.size();
}

void merge_into(series_map<std::uint64_t>& into, const series_map<std::uint64_t>& from) {
  for (const auto& [k, v] : from) into[k] += v;
}

void merge_into(series_map<double>& into, const series_map<double>& from) {
  for (const auto& [k, v] : from) into[k] += v;
}

void merge_into(series_map<histogram>& into, const series_map<histogram>& from) {
  for (const auto& [k, v] : from) into[k].merge(v);
}

void append_label_value(std::string& out, std::string_view v) {
  // Runs of plain bytes are copied whole; only the three special bytes are written one by one.
  for (;;) {
    auto special = v.find_first_of("\\\"\n");
    out.append(v.substr(0, special));
    if (special == std::string_view::npos) return;
    char c = v[special];
    out += c == '\n' ? "\\n" : c == '"' ? "\\\"" : "\\\\";
    v.remove_prefix(special + 1);
  }
}

void join_label(std::string& joined, std::string_view name, std::string_view escaped_value) {
  if (!joined.empty()) joined += ',';
  joined += name;
  joined += "=\"";
  joined += escaped_value;
  joined += '"';
}

void append_help(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {  // exact integers as such
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v));
    out.append(buf, r.ptr);
    return;
  }
  auto r =
      std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);  // as Go: %g, shortest
  out.append(buf, r.ptr);
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

namespace {

// A sample's value and the line's end in one append.
void append_value_line(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf - 1, v);
  *r.ptr++ = '\n';
  out.append(buf, r.ptr);
}

void append_value_line(std::string& out, double v) {
  append_number(out, v);
  out += '\n';
}

}  // namespace

void text_writer::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_help(out_, help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void text_writer::start_sample(std::string_view name, std::string_view suffix,
                               std::span<const label> labels, const label* extra) {
  out_ += name;
  out_ += suffix;
  bool any = false;
  auto put = [&](const label& l) {
    out_ += any ? ',' : '{';
    any = true;
    out_ += l.name;
    out_ += "=\"";
    append_label_value(out_, l.value);
    out_ += '"';
  };
  for (const auto& l : labels) put(l);
  if (extra) put(*extra);
  if (any) out_ += '}';
  out_ += ' ';
}

void text_writer::sample(std::string_view name, std::span<const label> labels, double value) {
  start_sample(name, {}, labels, nullptr);
  append_number(out_, value);
  out_ += '\n';
}

void text_writer::sample(std::string_view name, std::span<const label> labels,
                         std::uint64_t value) {
  start_sample(name, {}, labels, nullptr);
  append_number(out_, value);
  out_ += '\n';
}

void text_writer::histogram(std::string_view name, std::span<const label> labels,
                            bucket_layout layout, const metrics::histogram& h) {
  std::string joined;
  for (const auto& l : labels) {
    std::string escaped;
    append_label_value(escaped, l.value);
    join_label(joined, l.name, escaped);
  }
  histogram_joined(name, joined, layout, h);
}

void text_writer::start_joined(std::string_view name, std::string_view suffix,
                               std::string_view joined) {
  out_ += name;
  out_ += suffix;
  if (!joined.empty()) {
    out_ += '{';
    out_ += joined;
    out_ += '}';
  }
  out_ += ' ';
}

void text_writer::sample_joined(std::string_view name, std::string_view joined, double value) {
  start_joined(name, {}, joined);
  append_value_line(out_, value);
}

void text_writer::sample_joined(std::string_view name, std::string_view joined,
                                std::uint64_t value) {
  start_joined(name, {}, joined);
  append_value_line(out_, value);
}

const std::vector<std::string>& text_writer::bucket_ends(bucket_layout layout) {
  for (const auto& [data, ends] : bucket_ends_)
    if (data == layout.data() && ends.size() == layout.size() + 1) return ends;
  std::vector<std::string> ends;
  for (double bound : layout) {
    ends.emplace_back();
    append_number(ends.back(), bound);
    ends.back() += "\"} ";
  }
  ends.emplace_back("+Inf\"} ");
  bucket_ends_.emplace_back(layout.data(), std::move(ends));
  return bucket_ends_.back().second;
}

void text_writer::histogram_joined(std::string_view name, std::string_view joined,
                                   bucket_layout layout, const metrics::histogram& h) {
  const auto& ends = bucket_ends(layout);
  // Everything of a bucket line before its bound, written once for the series.
  scratch_.assign(name);
  scratch_ += "_bucket{";
  scratch_ += joined;
  scratch_ += joined.empty() ? "le=\"" : ",le=\"";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= layout.size(); ++i) {
    cumulative += h.counts[i];
    out_ += scratch_;
    out_ += ends[i];
    append_value_line(out_, cumulative);
  }
  start_joined(name, "_sum", joined);
  append_value_line(out_, h.sum);
  start_joined(name, "_count", joined);
  append_value_line(out_, h.count);
}

std::string output_size_hint::buffer() const {
  std::string out;
  auto last = last_.load(std::memory_order_relaxed);
  out.reserve(last + last / 8);
  return out;
}

namespace {

double boot_time_seconds() {
  std::ifstream f("/proc/stat");
  std::string key;
  double value = 0;
  while (f >> key) {
    if (key == "btime") {
      f >> value;
      return value;
    }
    f.ignore(1 << 20, '\n');
  }
  return 0;
}

std::size_t count_open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    if (n > 0) --n;  // the descriptor opendir itself holds
  }
  return n;
}

}  // namespace

void write_process_metrics(text_writer& w) {
  // /proc/self/stat: fields after the command name (which may hold spaces) are space-separated;
  // utime and stime are fields 14 and 15, starttime 22, vsize 23, rss 24 (pages).
  std::ifstream f("/proc/self/stat");
  std::string line;
  std::getline(f, line);
  auto close = line.rfind(')');
  std::istringstream rest(close == std::string::npos ? std::string() : line.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0, start = 0, vsize = 0, rss = 0;
  for (int i = 3; rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
    if (i == 22) start = std::stod(field);
    if (i == 23) vsize = std::stod(field);
    if (i == 24) {
      rss = std::stod(field);
      break;
    }
  }
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);

  w.family("process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.");
  w.sample("process_cpu_seconds_total", {}, (utime + stime) / ticks);
  w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  w.sample("process_resident_memory_bytes", {}, rss * page);
  w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  w.sample("process_virtual_memory_bytes", {}, vsize);
  w.family("process_open_fds", "gauge", "Number of open file descriptors.");
  w.sample("process_open_fds", {}, static_cast<std::uint64_t>(count_open_fds()));
  w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
  w.sample("process_max_fds", {}, static_cast<double>(lim.rlim_cur));
  w.family("process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
  w.sample("process_start_time_seconds", {}, boot_time_seconds() + start / ticks);
}

}  // namespace ob::observe::metrics
