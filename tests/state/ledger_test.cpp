#include "state/ledger.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

namespace ob::state {
namespace {

using namespace std::chrono_literals;

constexpr epoch_ms monday = 1796007600000;  // 2026-11-30T03:00Z, a Monday
constexpr epoch_ms day = 86'400'000;

class Ledger : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ob-ledger-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/state.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<ledger> open() {
    std::string err;
    auto l = ledger::open(path_, &err);
    EXPECT_TRUE(l) << err;
    return l;
  }
  std::string dir_, path_;
};

TEST_F(Ledger, FlushAndQueryByKeyGroupTarget) {
  auto l = open();
  auto& w1 = l->add_stage();
  auto& w2 = l->add_stage();
  w1.record({"alice", "fast", "fast/gpt@api.openai.com", 1, 10, 20, 300}, monday);
  w1.record({"alice", "fast", "fast/gpt@api.openai.com", 1, 1, 2, 3}, monday + 1000);
  w2.record({"alice", "fast", "fast/llama@local", 1, 5, 5, 0}, monday);
  w2.record({"bob", "cheap", "cheap/mini@api.openai.com", 1, 100, 200, 50}, monday);
  ASSERT_TRUE(l->flush());
  auto by_key = l->query({.by_key = true, .period = ledger_period::day, .now = monday});
  ASSERT_EQ(by_key.size(), 2u);
  EXPECT_EQ(by_key[0].key, "alice");
  EXPECT_EQ(by_key[0].requests, 3u);
  EXPECT_EQ(by_key[0].input_tokens, 16u);
  EXPECT_EQ(by_key[0].output_tokens, 27u);
  EXPECT_EQ(by_key[0].usd_micros, 303u);
  EXPECT_EQ(by_key[0].group, "");
  EXPECT_EQ(by_key[1].key, "bob");
  auto all = l->query({.by_key = true,
                       .by_group = true,
                       .by_target = true,
                       .period = ledger_period::day,
                       .now = monday});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].target, "fast/gpt@api.openai.com");
  EXPECT_EQ(all[0].requests, 2u);
  EXPECT_EQ(all[1].target, "fast/llama@local");
  auto by_group =
      l->query({.by_key = false, .by_group = true, .period = ledger_period::day, .now = monday});
  ASSERT_EQ(by_group.size(), 2u);
  EXPECT_EQ(by_group[0].group, "cheap");
  EXPECT_EQ(by_group[1].group, "fast");
  EXPECT_EQ(by_group[1].requests, 3u);
  // A second flush adds to the same rows.
  w1.record({"alice", "fast", "fast/gpt@api.openai.com", 1, 1, 1, 1}, monday);
  ASSERT_TRUE(l->flush());
  EXPECT_EQ(l->query({.now = monday})[0].requests, 4u);
}

TEST_F(Ledger, PeriodsAreUtcDaysIsoWeeksAndMonths) {
  auto l = open();
  auto& w = l->add_stage();
  w.record({"k", "g", "t", 1, 1, 0, 0}, monday);              // Mon 30 Nov
  w.record({"k", "g", "t", 2, 0, 0, 0}, monday - day);        // Sun 29 Nov: last week
  w.record({"k", "g", "t", 4, 0, 0, 0}, monday - 29 * day);   // Sun 1 Nov: same month
  w.record({"k", "g", "t", 8, 0, 0, 0}, monday + day);        // Tue 1 Dec: next month
  w.record({"k", "g", "t", 16, 0, 0, 0}, monday - 30 * day);  // 31 Oct
  ASSERT_TRUE(l->flush());
  auto sum = [&](ledger_period p, epoch_ms now) {
    auto rows = l->query({.period = p, .now = now});
    return rows.empty() ? 0 : rows[0].requests;
  };
  EXPECT_EQ(sum(ledger_period::day, monday), 1u);
  EXPECT_EQ(sum(ledger_period::week, monday), 1u + 8u);
  EXPECT_EQ(sum(ledger_period::week, monday - day), 2u);
  EXPECT_EQ(sum(ledger_period::month, monday), 1u + 2u + 4u);
  EXPECT_EQ(sum(ledger_period::month, monday + day), 8u);
  EXPECT_EQ(sum(ledger_period::day, monday + 5 * day), 0u);
  EXPECT_EQ(utc_date(monday), "2026-11-30");
}

TEST_F(Ledger, ARestartKeepsUsageAndBudgets) {
  const epoch_ms month_start = period_bounds(ledger_period::month, monday).first;
  {
    auto l = open();
    auto& w = l->add_stage();
    l->start(50ms);
    w.record({"alice", "g", "t", 1, 100, 200, 0}, monday);
    w.budget("alice", month_start, 300);
    // The flusher writes it within its period (bounded wait).
    for (int i = 0; i < 200 && l->flushes() == 0; ++i) std::this_thread::sleep_for(5ms);
    EXPECT_GE(l->flushes(), 1u);
    // Staged just before shutdown: written by the last flush.
    w.budget("alice", month_start, 50);
    w.record({"alice", "g", "t", 1, 1, 1, 0}, monday);
  }
  auto l = open();
  EXPECT_EQ(l->budget_used("alice", month_start), 350u);
  EXPECT_EQ(l->budget_used("alice", month_start - 1), 0u);
  EXPECT_EQ(l->budget_used("bob", month_start), 0u);
  auto rows = l->query({.period = ledger_period::month, .now = monday});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].requests, 2u);
  EXPECT_EQ(rows[0].input_tokens, 101u);
}

TEST_F(Ledger, WorkersRecordWhileTheFlusherRuns) {
  auto l = open();
  l->start(1ms);
  constexpr int threads = 4;
  constexpr std::uint64_t at_most = 2'000'000;  // per thread, bounds the loop
  std::vector<ledger::stage*> stages;
  for (int i = 0; i < threads; ++i) stages.push_back(&l->add_stage());
  std::vector<std::uint64_t> counts(threads, 0);
  std::vector<std::thread> ts;
  // Every worker records until the flusher has written at least 3 times meanwhile.
  for (int i = 0; i < threads; ++i)
    ts.emplace_back([&, i] {
      std::string key = "k" + std::to_string(i % 2);
      std::uint64_t n = 0;
      for (; n < at_most && (n < 1000 || l->flushes() < 3); ++n) {
        stages[i]->record({key, "g", "t", 1, 2, 3, 4}, monday);
        stages[i]->budget(key, 0, 1);
      }
      counts[i] = n;
    });
  for (auto& t : ts) t.join();
  const std::uint64_t flushed_during = l->flushes();
  l->stop();
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  auto rows = l->query({.now = monday});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].requests + rows[1].requests, total);
  EXPECT_EQ(rows[0].usd_micros + rows[1].usd_micros, total * 4);
  EXPECT_EQ(l->budget_used("k0", 0) + l->budget_used("k1", 0), total);
  EXPECT_GE(flushed_during, 3u);
}

TEST_F(Ledger, AnUnwritablePathIsAnError) {
  std::string err;
  auto l = ledger::open("/proc/nope/state.db", &err);
  EXPECT_FALSE(l);
  EXPECT_NE(err.find("/proc/nope/state.db"), std::string::npos) << err;
}

}  // namespace
}  // namespace ob::state
