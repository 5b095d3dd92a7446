#include "state/ledger.hpp"

#include <sqlite3.h>

#include <charconv>
#include <cstdio>

#include "config/civil_date.hpp"
#include "observe/log.hpp"

namespace ob::state {
namespace {

using civil::floor_div;

constexpr epoch_ms day_ms = 86'400'000;

std::string date_of_day(std::int64_t days) {
  civil::date c = civil::civil_from_days(days);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(c.year), c.month,
                c.day);
  return buf;
}

std::string budget_id(std::string_view key, epoch_ms start) {
  std::string id(key);
  id += '\n';
  id += std::to_string(start);
  return id;
}

// A prepared statement, finalized on scope exit.
struct statement {
  sqlite3_stmt* s = nullptr;
  ~statement() { sqlite3_finalize(s); }
};

bool exec(sqlite3* db, const char* sql, std::string* error) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) == SQLITE_OK) return true;
  if (error) *error = msg ? msg : sqlite3_errmsg(db);
  sqlite3_free(msg);
  return false;
}

void bind_text(sqlite3_stmt* s, int i, std::string_view t) {
  sqlite3_bind_text(s, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
}

}  // namespace

std::pair<epoch_ms, epoch_ms> period_bounds(ledger_period p, epoch_ms now) {
  std::int64_t days = floor_div(now, day_ms);
  switch (p) {
    case ledger_period::day:
      return {days * day_ms, (days + 1) * day_ms};
    case ledger_period::week: {
      std::int64_t start = civil::week_start(days);
      return {start * day_ms, (start + 7) * day_ms};
    }
    case ledger_period::month:
      return {civil::month_start(days) * day_ms, civil::next_month_start(days) * day_ms};
  }
  return {days * day_ms, (days + 1) * day_ms};
}

std::string utc_date(epoch_ms t) {
  return date_of_day(floor_div(t, day_ms));
}

std::size_t ledger::stage::hash::operator()(const row_view& v) const {
  std::size_t h = std::hash<std::int64_t>{}(v.day);
  for (auto s : {v.key, v.group, v.target})
    h ^= std::hash<std::string_view>{}(s) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

void ledger::stage::record(const usage_record& r, epoch_ms now) {
  row_view k{floor_div(now, day_ms), r.key, r.group, r.target};
  std::lock_guard lock(mu_);
  auto it = rows_.find(k);
  if (it == rows_.end())
    it = rows_
             .emplace(
                 row_key{k.day, std::string(r.key), std::string(r.group), std::string(r.target)},
                 sums{})
             .first;
  it->second.requests += r.requests;
  it->second.input += r.input_tokens;
  it->second.output += r.output_tokens;
  it->second.usd += r.usd_micros;
}

void ledger::stage::budget(std::string_view key, epoch_ms period_start, std::uint64_t amount) {
  if (amount == 0) return;
  std::string id = budget_id(key, period_start);
  std::lock_guard lock(mu_);
  budgets_[std::move(id)] += amount;
}

std::unique_ptr<ledger> ledger::open(const std::string& path, std::string* error) {
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    if (error) *error = path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<ledger> l(new ledger(db));
  std::string err;
  if (!exec(db,
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "CREATE TABLE IF NOT EXISTS usage ("
            "  day TEXT NOT NULL, key TEXT NOT NULL, grp TEXT NOT NULL, target TEXT NOT NULL,"
            "  requests INTEGER NOT NULL DEFAULT 0, input_tokens INTEGER NOT NULL DEFAULT 0,"
            "  output_tokens INTEGER NOT NULL DEFAULT 0, usd_micros INTEGER NOT NULL DEFAULT 0,"
            "  PRIMARY KEY (day, key, grp, target)) WITHOUT ROWID;"
            "CREATE TABLE IF NOT EXISTS budget ("
            "  key TEXT NOT NULL, period_start INTEGER NOT NULL, used INTEGER NOT NULL,"
            "  PRIMARY KEY (key, period_start)) WITHOUT ROWID;",
            &err) ||
      !l->load_budgets(&err)) {
    if (error) *error = path + ": " + err;
    return nullptr;
  }
  return l;
}

ledger::~ledger() {
  stop();
  sqlite3_close(db_);
}

bool ledger::load_budgets(std::string* error) {
  std::lock_guard lock(db_mu_);
  statement st;
  if (sqlite3_prepare_v2(db_, "SELECT key, period_start, used FROM budget", -1, &st.s, nullptr) !=
      SQLITE_OK) {
    if (error) *error = sqlite3_errmsg(db_);
    return false;
  }
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    std::string_view key(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)),
                         static_cast<std::size_t>(sqlite3_column_bytes(st.s, 0)));
    budget_used_[budget_id(key, sqlite3_column_int64(st.s, 1))] =
        static_cast<std::uint64_t>(sqlite3_column_int64(st.s, 2));
  }
  return true;
}

ledger::stage& ledger::add_stage() {
  std::lock_guard lock(stages_mu_);
  stages_.push_back(std::make_unique<stage>());
  return *stages_.back();
}

bool ledger::flush(std::string* error) {
  std::lock_guard lock(db_mu_);
  // Take every staged row (each worker's lock held for a swap only).
  std::unordered_map<stage::row_key, stage::sums, stage::hash, stage::eq> rows;
  std::unordered_map<std::string, std::uint64_t> budgets;
  std::vector<stage*> stages;
  {
    std::lock_guard sl(stages_mu_);
    for (auto& s : stages_) stages.push_back(s.get());
  }
  for (stage* s : stages) {
    std::unordered_map<stage::row_key, stage::sums, stage::hash, stage::eq> r;
    std::unordered_map<std::string, std::uint64_t> b;
    {
      std::lock_guard sl(s->mu_);
      r.swap(s->rows_);
      b.swap(s->budgets_);
    }
    for (auto& [k, v] : r) {
      auto& t = rows[k];
      t.requests += v.requests, t.input += v.input, t.output += v.output, t.usd += v.usd;
    }
    for (auto& [k, v] : b) budgets[k] += v;
  }
  if (rows.empty() && budgets.empty()) return true;

  std::string err;
  auto put_back = [&] {  // a failed transaction: the rows wait for the next flush
    if (stages.empty()) return;
    stage* s = stages.front();
    std::lock_guard sl(s->mu_);
    for (auto& [k, v] : rows) {
      auto& t = s->rows_[k];
      t.requests += v.requests, t.input += v.input, t.output += v.output, t.usd += v.usd;
    }
    for (auto& [k, v] : budgets) s->budgets_[k] += v;
  };
  statement up, bu;
  bool ok = exec(db_, "BEGIN IMMEDIATE", &err) &&
            sqlite3_prepare_v2(db_,
                               "INSERT INTO usage (day, key, grp, target, requests, input_tokens,"
                               " output_tokens, usd_micros) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                               " ON CONFLICT (day, key, grp, target) DO UPDATE SET"
                               " requests = requests + excluded.requests,"
                               " input_tokens = input_tokens + excluded.input_tokens,"
                               " output_tokens = output_tokens + excluded.output_tokens,"
                               " usd_micros = usd_micros + excluded.usd_micros",
                               -1, &up.s, nullptr) == SQLITE_OK &&
            sqlite3_prepare_v2(
                db_,
                "INSERT INTO budget (key, period_start, used) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (key, period_start) DO UPDATE SET used = used + excluded.used",
                -1, &bu.s, nullptr) == SQLITE_OK;
  for (auto it = rows.begin(); ok && it != rows.end(); ++it) {
    const auto& [k, v] = *it;
    sqlite3_reset(up.s);
    bind_text(up.s, 1, date_of_day(k.day));
    bind_text(up.s, 2, k.key);
    bind_text(up.s, 3, k.group);
    bind_text(up.s, 4, k.target);
    sqlite3_bind_int64(up.s, 5, static_cast<sqlite3_int64>(v.requests));
    sqlite3_bind_int64(up.s, 6, static_cast<sqlite3_int64>(v.input));
    sqlite3_bind_int64(up.s, 7, static_cast<sqlite3_int64>(v.output));
    sqlite3_bind_int64(up.s, 8, static_cast<sqlite3_int64>(v.usd));
    ok = sqlite3_step(up.s) == SQLITE_DONE;
  }
  for (auto it = budgets.begin(); ok && it != budgets.end(); ++it) {
    auto nl = it->first.find('\n');
    std::int64_t start = 0;
    std::from_chars(it->first.data() + nl + 1, it->first.data() + it->first.size(), start);
    sqlite3_reset(bu.s);
    bind_text(bu.s, 1, std::string_view(it->first).substr(0, nl));
    sqlite3_bind_int64(bu.s, 2, start);
    sqlite3_bind_int64(bu.s, 3, static_cast<sqlite3_int64>(it->second));
    ok = sqlite3_step(bu.s) == SQLITE_DONE;
  }
  if (ok) ok = exec(db_, "COMMIT", &err);
  if (!ok) {
    if (err.empty()) err = sqlite3_errmsg(db_);
    exec(db_, "ROLLBACK", nullptr);
    put_back();
    if (error) *error = err;
    return false;
  }
  for (auto& [k, v] : budgets) budget_used_[k] += v;
  ++flushes_;
  return true;
}

std::uint64_t ledger::budget_used(std::string_view key, epoch_ms period_start) const {
  std::lock_guard lock(db_mu_);
  auto it = budget_used_.find(budget_id(key, period_start));
  return it == budget_used_.end() ? 0 : it->second;
}

std::vector<usage_row> ledger::query(const usage_query& q, std::string* error) {
  std::vector<usage_row> out;
  std::string cols;
  for (auto [on, name] : {std::pair{q.by_key, "key"}, {q.by_group, "grp"}, {q.by_target, "target"}})
    if (on) cols += cols.empty() ? name : std::string(", ") + name;
  std::string sql = "SELECT " + (cols.empty() ? std::string() : cols + ", ") +
                    "SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(usd_micros)"
                    " FROM usage WHERE day >= ?1 AND day < ?2" +
                    (cols.empty() ? "" : " GROUP BY " + cols + " ORDER BY " + cols);
  auto [start, end] = period_bounds(q.period, q.now);
  std::lock_guard lock(db_mu_);
  statement st;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st.s, nullptr) != SQLITE_OK) {
    if (error) *error = sqlite3_errmsg(db_);
    return out;
  }
  bind_text(st.s, 1, utc_date(start));
  bind_text(st.s, 2, utc_date(end));
  int rc;
  while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
    usage_row r;
    int i = 0;
    auto text = [&](std::string& to) {
      to.assign(reinterpret_cast<const char*>(sqlite3_column_text(st.s, i)),
                static_cast<std::size_t>(sqlite3_column_bytes(st.s, i)));
      ++i;
    };
    if (q.by_key) text(r.key);
    if (q.by_group) text(r.group);
    if (q.by_target) text(r.target);
    if (sqlite3_column_type(st.s, i) == SQLITE_NULL) break;  // no rows: SUM over nothing
    r.requests = static_cast<std::uint64_t>(sqlite3_column_int64(st.s, i++));
    r.input_tokens = static_cast<std::uint64_t>(sqlite3_column_int64(st.s, i++));
    r.output_tokens = static_cast<std::uint64_t>(sqlite3_column_int64(st.s, i++));
    r.usd_micros = static_cast<std::uint64_t>(sqlite3_column_int64(st.s, i++));
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW && error) *error = sqlite3_errmsg(db_);
  return out;
}

void ledger::start(std::chrono::milliseconds every) {
  std::lock_guard lock(run_mu_);
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this, every] { run(every); });
}

void ledger::run(std::chrono::milliseconds every) {
  std::unique_lock lock(run_mu_);
  while (!stopping_) {
    run_cv_.wait_for(lock, every, [&] { return stopping_; });
    lock.unlock();
    std::string err;
    if (!flush(&err)) observe::log(observe::level::error, "ledger: flush failed: " + err);
    lock.lock();
  }
}

void ledger::stop() {
  {
    std::lock_guard lock(run_mu_);
    stopping_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::string err;
  if (!flush(&err)) observe::log(observe::level::error, "ledger: last flush failed: " + err);
}

}  // namespace ob::state
