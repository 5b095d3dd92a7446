// The usage ledger: SQLite (WAL) file holding, per UTC day and (key, group, target), requests,
// input/output tokens and USD micro-dollars, and per key and budget period the budget used.
//
// Never written from an event loop: a worker appends to its own staging buffer (one mutex per
// worker, taken by the flusher once a second, so uncontended on the request path); a
// background thread flushes every buffer in one transaction every second and at shutdown. At
// start the current periods' budget usage is loaded, so a restart loses at most the last
// second of usage.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

struct sqlite3;

namespace ob::state {

using epoch_ms = std::int64_t;

// One exchange's usage, as the settlement hook knows it.
struct usage_record {
  std::string_view key, group, target;
  std::uint64_t requests = 1;
  std::uint64_t input_tokens = 0, output_tokens = 0;
  std::uint64_t usd_micros = 0;
};

enum class ledger_period { day, week, month };

// A row of GET /admin/v1/usage: the grouped dimensions (others empty) and the sums.
struct usage_row {
  std::string key, group, target;
  std::uint64_t requests = 0, input_tokens = 0, output_tokens = 0, usd_micros = 0;
};

struct usage_query {
  bool by_key = true, by_group = false, by_target = false;
  ledger_period period = ledger_period::day;
  epoch_ms now = 0;  // the period holding this instant (UTC)
};

// Start of the UTC calendar period holding `now`, and the next one's.
std::pair<epoch_ms, epoch_ms> period_bounds(ledger_period p, epoch_ms now);
// "YYYY-MM-DD" of the UTC day holding `t`.
std::string utc_date(epoch_ms t);

class ledger {
 public:
  // Opens (creates) the file, sets WAL, creates the tables, loads budget usage. nullptr and
  // `*error` on failure.
  static std::unique_ptr<ledger> open(const std::string& path, std::string* error);
  ~ledger();  // stop(): the last flush
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  // A staging buffer per worker thread (call once per worker at start; stable address).
  class stage {
   public:
    // Usage of one exchange on day `now` (UTC).
    void record(const usage_record& r, epoch_ms now);
    // Budget used by `key` in the period starting at `period_start` (in the budget's unit).
    void budget(std::string_view key, epoch_ms period_start, std::uint64_t amount);

   private:
    friend class ledger;
    struct row_key {
      std::int64_t day;
      std::string key, group, target;
    };
    struct row_view {
      std::int64_t day;
      std::string_view key, group, target;
    };
    struct sums {
      std::uint64_t requests = 0, input = 0, output = 0, usd = 0;
    };
    struct hash {
      using is_transparent = void;
      std::size_t operator()(const row_view& v) const;
      std::size_t operator()(const row_key& k) const {
        return (*this)(row_view{k.day, k.key, k.group, k.target});
      }
    };
    struct eq {
      using is_transparent = void;
      static row_view view(const row_key& k) { return {k.day, k.key, k.group, k.target}; }
      static const row_view& view(const row_view& v) { return v; }
      template <class A, class B>
      bool operator()(const A& a, const B& b) const {
        const row_view &x = view(a), &y = view(b);
        return x.day == y.day && x.key == y.key && x.group == y.group && x.target == y.target;
      }
    };
    std::mutex mu_;
    std::unordered_map<row_key, sums, hash, eq> rows_;
    std::unordered_map<std::string, std::uint64_t> budgets_;  // key '\n' period_start -> amount
  };
  stage& add_stage();

  void start(std::chrono::milliseconds every = std::chrono::seconds(1));  // flusher thread
  void stop();  // flushes and joins; idempotent

  // Writes every staged row now, in one transaction. Thread-safe. False on a SQLite error
  // (the rows are kept for the next attempt).
  bool flush(std::string* error = nullptr);

  // Budget used by `key` in the period starting at `period_start`: what the file held at open
  // plus what was flushed since. For restoring in-memory budgets at start.
  std::uint64_t budget_used(std::string_view key, epoch_ms period_start) const;

  // Sums per the chosen dimensions over the period holding q.now (flushed rows only: call
  // flush() first to include the last second).
  std::vector<usage_row> query(const usage_query& q, std::string* error = nullptr);

  std::uint64_t flushes() const { return flushes_.load(); }

 private:
  explicit ledger(sqlite3* db) : db_(db) {}
  bool load_budgets(std::string* error);
  void run(std::chrono::milliseconds every);

  sqlite3* db_;
  mutable std::mutex db_mu_;  // the connection: flush, query, budget map
  std::vector<std::unique_ptr<stage>> stages_;
  std::mutex stages_mu_;
  std::unordered_map<std::string, std::uint64_t> budget_used_;  // key '\n' period_start
  std::thread thread_;
  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::atomic<std::uint64_t> flushes_{0};
};

}  // namespace ob::state
