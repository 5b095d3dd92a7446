// Metrics: per-thread series merged at scrape, rendered in the Prometheus text format 0.0.4.
//
// Hot path: each worker thread owns a `shard`; recording a sample is a hash lookup of a small
// integer key and a plain add in that thread's memory: no lock, no atomic, no cache line written
// by two threads. A scrape asks every worker to copy its shard on its own thread (a message,
// not a lock), merges the copies and renders them. Label values are interned once (config
// entities when a snapshot is built; bounded dynamic values such as client names when first
// seen) so a series key is a few integers.
//
// Histograms count per bucket and are rendered cumulatively (`le` is an inclusive upper bound,
// as Prometheus defines it). Nothing is reset by a reload: series of entities that left the
// config are skipped when rendering (see `text_writer` users), and their memory is bounded by
// the number of distinct entities ever configured.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ob::observe::metrics {

// Upper bounds of a histogram's finite buckets, ascending; the +Inf bucket is implied.
using bucket_layout = std::span<const double>;

// The bucket layouts the OpenTelemetry GenAI semantic conventions recommend.
bucket_layout token_usage_buckets();       // 1, 4, 16, ..., 67108864 (x4)
bucket_layout request_duration_buckets();  // 0.01, 0.02, ..., 81.92 s (x2)
bucket_layout time_to_first_token_buckets();
bucket_layout time_per_output_token_buckets();

constexpr std::size_t max_buckets = 24;  // finite buckets of any layout above

// One histogram series on one thread. counts[i] counts samples in bucket i alone (not
// cumulative); counts[layout.size()] is the +Inf bucket.
struct histogram {
  std::array<std::uint64_t, max_buckets + 1> counts{};
  double sum = 0;
  std::uint64_t count = 0;

  void observe(bucket_layout layout, double value);
  void merge(const histogram& other);
};

// Index of the bucket `value` falls in: the first bound >= value (NaN and values above every
// bound go to +Inf, index layout.size()).
std::size_t bucket_index(bucket_layout layout, double value);

// Label values as small integers. Interning takes a lock: call it when a config snapshot is
// built or when a bounded dynamic value is first seen, never per request for a known value.
class interner {
 public:
  static constexpr std::uint32_t none = 0;  // the empty string

  interner();
  std::uint32_t intern(std::string_view s);
  // The value of an id; views stay valid for the interner's life.
  std::string_view value(std::uint32_t id) const;
  std::size_t size() const;

  // What a scrape needs of every value, read without a lock per label: the value escaped as a
  // label value (escaped once, when interned) and its rank in byte order (so series sort by
  // comparing integers). Views stay valid for the interner's life.
  struct table {
    std::vector<std::string_view> escaped;  // by id
    std::vector<std::uint32_t> rank;        // by id; ranks of distinct values differ
    std::string_view escaped_of(std::uint32_t id) const {
      return id < escaped.size() ? escaped[id] : std::string_view();
    }
    std::uint32_t rank_of(std::uint32_t id) const { return id < rank.size() ? rank[id] : 0; }
  };
  // Every value interned so far. Rebuilt (a sort of the values) only when values were added
  // since the last call, so a steady scrape reuses the previous one.
  std::shared_ptr<const table> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::deque<std::string> values_;   // deque: growing never moves the strings
  std::deque<std::string> escaped_;  // escaped_[id]: values_[id] as a label value
  std::unordered_map<std::string_view, std::uint32_t> ids_;
  mutable std::shared_ptr<const table> table_;
};

// A series' label values as interned ids, in the order of its family's label names.
struct series_key {
  static constexpr std::size_t max_labels = 6;
  std::array<std::uint32_t, max_labels> v{};
  bool operator==(const series_key&) const = default;
};

struct series_key_hash {
  std::size_t operator()(const series_key& k) const noexcept {
    std::uint64_t h = 0x9e3779b97f4a7c15ull;
    for (auto x : k.v) h = (h ^ x) * 0x100000001b3ull;
    return static_cast<std::size_t>(h ^ (h >> 29));
  }
};

template <class Cell>
using series_map = std::unordered_map<series_key, Cell, series_key_hash>;

// Adds every series of `from` into `into` (counters by sum, histograms bucket by bucket).
void merge_into(series_map<std::uint64_t>& into, const series_map<std::uint64_t>& from);
void merge_into(series_map<double>& into, const series_map<double>& from);
void merge_into(series_map<histogram>& into, const series_map<histogram>& from);

// Escaping of the text format: label values escape backslash, double quote and newline;
// HELP text escapes backslash and newline.
void append_label_value(std::string& out, std::string_view v);
void append_help(std::string& out, std::string_view v);
// Sample values: integers exactly, other numbers in the shortest form that reads back equal;
// NaN and infinities as Prometheus spells them.
void append_number(std::string& out, double v);
void append_number(std::string& out, std::uint64_t v);

struct label {
  std::string_view name;
  std::string_view value;
};

// Appends `name="escaped_value"` to a joined label list (a comma first unless it is empty): the
// form sample_joined and histogram_joined take.
void join_label(std::string& joined, std::string_view name, std::string_view escaped_value);

// Renders families and samples. Every family is written once: HELP, TYPE, then its samples.
class text_writer {
 public:
  explicit text_writer(std::string& out) : out_(out) {}

  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::span<const label> labels, double value);
  void sample(std::string_view name, std::span<const label> labels, std::uint64_t value);
  void sample(std::string_view name, std::initializer_list<label> labels, double value) {
    sample(name, std::span<const label>(labels.begin(), labels.size()), value);
  }
  void sample(std::string_view name, std::initializer_list<label> labels, std::uint64_t value) {
    sample(name, std::span<const label>(labels.begin(), labels.size()), value);
  }
  // name_bucket{...,le="b"} cumulative counts, then name_sum and name_count.
  void histogram(std::string_view name, std::span<const label> labels, bucket_layout layout,
                 const metrics::histogram& h);

  // The same for many series: `joined` is a series' labels already escaped and joined
  // (`a="x",b="y"`, empty for none; see join_label), written as is on each of its lines.
  void sample_joined(std::string_view name, std::string_view joined, double value);
  void sample_joined(std::string_view name, std::string_view joined, std::uint64_t value);
  void histogram_joined(std::string_view name, std::string_view joined, bucket_layout layout,
                        const metrics::histogram& h);

 private:
  void start_sample(std::string_view name, std::string_view suffix, std::span<const label> labels,
                    const label* extra);
  void start_joined(std::string_view name, std::string_view suffix, std::string_view joined);
  // A layout's bounds as they end a bucket line (`0.01"} `, ..., `+Inf"} `), formatted once
  // per layout and writer rather than once per bucket line.
  const std::vector<std::string>& bucket_ends(bucket_layout layout);

  std::string& out_;
  std::string scratch_;
  std::vector<std::pair<const double*, std::vector<std::string>>> bucket_ends_;
};

// Sizes a scrape's output from the previous one, so rendering appends into one allocation
// instead of regrowing (and copying) a 64 KB string up to many megabytes on every scrape.
class output_size_hint {
 public:
  // An empty string with room for the last output and some growth.
  std::string buffer() const;
  void remember(std::size_t size) { last_.store(size, std::memory_order_relaxed); }

 private:
  std::atomic<std::size_t> last_{64 * 1024};
};

// The standard process_* metrics of Prometheus client libraries, read from /proc/self:
// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds.
void write_process_metrics(text_writer& w);

}  // namespace ob::observe::metrics
