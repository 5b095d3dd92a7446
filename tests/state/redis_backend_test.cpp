// admit.lua / settle.lua through the Redis backend, on a real redis-server, with the spec's
// numbers (docs/SCALING.md; LIMITS spec). The scripts run on a test clock.
#include "state/redis_backend.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "state/backend_fixture.hpp"

namespace ob::state {
namespace {

using limits::refusal;
using namespace std::chrono_literals;

class RedisBackend : public test::BackendFixture {
 protected:
  limits::demand demand_for(const limits::key_demand* k, std::uint64_t in = 100,
                            std::uint64_t out = 200,
                            std::span<const limits::target_demand> targets = {}) {
    limits::demand d;
    d.key = k;
    d.input_tokens = in;
    d.output_tokens = out;
    d.targets = targets;
    return d;
  }
};

TEST_F(RedisBackend, GcraAdmitsTheLimitThenRefusesWithTheExactRetryAfter) {
  connect();
  limits::key_demand k{0, "alice", {.rpm = 60}, {}};
  auto d = demand_for(&k);
  for (int i = 0; i < 60; ++i) {
    auto v = admit(d);
    ASSERT_TRUE(v.ok()) << i;
    EXPECT_EQ(v.headers.limit_requests, 60);
    EXPECT_EQ(v.headers.remaining_requests, 59 - i) << i;
    EXPECT_EQ(v.headers.reset_requests_ms, 1000 * (i + 1)) << i;
  }
  auto no = admit(d);
  EXPECT_EQ(no.kind, refusal::rpm);
  EXPECT_EQ(no.retry_after_ms, 1000);
  EXPECT_EQ(no.headers.remaining_requests, 0);
  now += 999;
  EXPECT_EQ(admit(d).retry_after_ms, 1);
  now += 1;
  EXPECT_TRUE(admit(d).ok());
  EXPECT_EQ(admit(d).kind, refusal::rpm);
  EXPECT_EQ(backend->stats().redis_admissions, 64u);
}

TEST_F(RedisBackend, GcraBurstAndDailyLimit) {
  connect();
  // rpm 6 -> I = 10 s; burst 2 -> tau = 10 s: two at once, then one every 10 s.
  limits::key_demand k{0, "b", {.rpm = 6, .rpd = 3, .burst = 2}, {}};
  auto d = demand_for(&k);
  EXPECT_TRUE(admit(d).ok());
  EXPECT_TRUE(admit(d).ok());
  auto v = admit(d);
  EXPECT_EQ(v.kind, refusal::rpm);
  EXPECT_EQ(v.retry_after_ms, 10'000);
  now += 10'000;
  // rpd 3 with burst 2 (the key's burst applies to both): I = 28.8e6, the third is refused.
  v = admit(d);
  EXPECT_EQ(v.kind, refusal::rpd);
  EXPECT_EQ(v.retry_after_ms, 2 * 28'800'000 - 10'000 - 28'800'000);
}

TEST_F(RedisBackend, TokenBucketReservesSettlesAndReleases) {
  connect();
  limits::key_demand k{0, "tok", {.tpm = 1000}, {}};
  auto d = demand_for(&k, 100, 200);  // est 300
  auto a = admit(d), b = admit(d), c = admit(d);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(c.headers.limit_tokens, 1000);
  EXPECT_EQ(c.headers.remaining_tokens, 100);
  EXPECT_EQ(c.headers.reset_tokens_ms, 54'000);  // 900 tokens at 1000/60000 per ms
  auto no = admit(d);
  EXPECT_EQ(no.kind, refusal::tpm);
  EXPECT_EQ(no.retry_after_ms, 12'000);  // (300 - 100) / (1000 / 60000)
  backend->release(a.res);               // level 400
  sync();
  auto e = admit(d);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e.headers.remaining_tokens, 100);
  backend->settle(b.res, limits::usage{20, 30});  // used 50 of 300: level += 250
  sync();
  auto f = admit(d);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f.headers.remaining_tokens, 50);  // 100 + 250 - 300
  // Unknown usage keeps the reservation as the charge.
  backend->settle(c.res, limits::usage{});
  sync();
  EXPECT_EQ(admit(d).kind, refusal::tpm);
  // Debt: 1000 tokens used against a 300 reservation leaves the level below zero.
  backend->settle(e.res, limits::usage{600, 400});  // level 50 - 700 = -650
  sync();
  now += 60'000;  // refill 1000: level 350
  auto g = admit(d);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g.headers.remaining_tokens, 50);
}

TEST_F(RedisBackend, ARequestLargerThanTheBucketPassesWhenItIsFull) {
  connect();
  limits::key_demand k{0, "big", {.tpm = 1000}, {}};
  auto d = demand_for(&k, 4000, 1000);
  auto v = admit(d);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.headers.remaining_tokens, 0);
  auto no = admit(d);
  EXPECT_EQ(no.kind, refusal::tpm);
  EXPECT_EQ(no.retry_after_ms, 60'000);
}

TEST_F(RedisBackend, LeaseOfADeadHolderExpires) {
  connect();
  limits::key_demand k{0, "conc", {.concurrency = 2}, {}};
  auto d = demand_for(&k);
  auto a = admit(d), b = admit(d);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(backend->live_leases(), 2u);
  auto no = admit(d);
  EXPECT_EQ(no.kind, refusal::concurrency);
  // A slot frees when a request ends, which nothing tells: 1 s, as in memory (it said the
  // oldest lease's whole 30 s ttl, and SDKs slept that long).
  EXPECT_EQ(no.retry_after_ms, 1'000);
  backend->release(a.res);
  sync();
  auto c = admit(d);
  ASSERT_TRUE(c.ok());
  // b and c's holders die (never settle): their leases expire after the 30 s ttl.
  now += 29'999;
  EXPECT_EQ(admit(d).kind, refusal::concurrency);
  now += 1;
  EXPECT_TRUE(admit(d).ok());
}

// Two workers, two connections: Redis orders commands per connection only. Worker A gives a
// lease back after worker B's admission was refused but before B read the refusal (the order a
// busy Redis can process them in when A's settlement and B's admission were sent the other way
// round: A's client was answered between the two). The refusal gets a second look, which sees
// the lease gone. B runs on an event loop of its own, so the test decides when B reads.
TEST_F(RedisBackend, ALeaseGivenBackOnAnotherConnectionIsSeenByTheNextAdmission) {
  connect();
  boost::asio::io_context io_b;
  state::redis::client_options co;
  co.address = *config::parse_redis_url(server.url(), nullptr);
  co.timeout = 2s;
  auto client_b = std::make_shared<state::redis::client>(io_b.get_executor(), co);
  state::register_scripts(*client_b);
  client_b->start();
  ASSERT_TRUE(test::run_until(io_b, [&] { return client_b->connected(); }));
  std::vector<std::string_view> ping{"PING"};
  ASSERT_TRUE(test::await(io_b, client_b->call(ping)));  // B's scripts are loaded
  redis_backend_options ob;
  ob.test_clock = &now;
  auto backend_b = std::make_shared<redis_backend>(client_b, nullptr, ob);
  limits::key_demand k{0, "one", {.concurrency = 1}, {}};
  auto d = demand_for(&k);
  auto held = admit(d);  // worker A's request
  ASSERT_TRUE(held.ok());
  std::optional<limits::verdict> next;
  boost::asio::co_spawn(io_b, backend_b->admit(d),
                        [&](std::exception_ptr, limits::verdict v) { next = v; });
  server.pause();  // so that B cannot read the answer while its admission is written
  io_b.poll();
  server.resume();
  std::this_thread::sleep_for(50ms);  // the refusal waits unread in B's socket
  ASSERT_FALSE(next.has_value());
  backend->settle(held.res, limits::usage{5, 5});  // A gives its lease back
  sync();                                          // ... and Redis has applied it
  ASSERT_TRUE(test::run_until(io_b, [&] { return next.has_value(); }));
  EXPECT_TRUE(next->ok()) << "refused: " << static_cast<int>(next->kind);
  EXPECT_EQ(backend_b->stats().lease_rechecks, 1u);
  if (next->ok()) backend_b->release(next->res);
  backend_b->stop();
  client_b->stop();
  test::run_for(io_b, 20ms);
}

TEST_F(RedisBackend, RenewalKeepsALongStreamsLease) {
  redis_backend_options o;
  o.renew_every = 50ms;
  connect(o);
  limits::key_demand k{0, "stream", {.concurrency = 1}, {}};
  auto d = demand_for(&k);
  auto a = admit(d);
  ASSERT_TRUE(a.ok());
  now += 20'000;
  test::run_for(io, 120ms);  // renewed at now + 30 s
  sync();
  now += 20'000;  // 40 s after admission: alive thanks to the renewal
  EXPECT_EQ(admit(d).kind, refusal::concurrency);
  backend->release(a.res);
  sync();
  EXPECT_TRUE(admit(d).ok());
}

TEST_F(RedisBackend, BudgetReservesSettlesAndRollsOverAtTheNextPeriod) {
  connect();
  limits::key_demand k{
      0, "bud", {}, {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  auto d = demand_for(&k, 100, 200);
  auto a = admit(d);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.res.budget_period_start, test::test_day);
  EXPECT_EQ(a.res.budget_cost, 300u);
  backend->settle(a.res, limits::usage{500, 400});  // used 900
  sync();
  auto b = admit(d);  // 900 < 1000: something is left
  ASSERT_TRUE(b.ok());
  auto no = admit(d);  // 900 + 300 >= 1000
  EXPECT_EQ(no.kind, refusal::budget);
  EXPECT_EQ(no.retry_after_ms, 75'600'000);  // 21 h to the next day, 00:00Z
  backend->release(b.res);
  sync();
  EXPECT_TRUE(admit(d).ok());
  now += 75'600'000;  // the next day starts at zero
  auto c = admit(d);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.res.budget_period_start, test::test_next_day);
}

TEST_F(RedisBackend, BudgetPeriodsAreCalendarWeeksAndMonthsInUtc) {
  connect();
  struct row {
    limits::budget_period period;
    limits::epoch_ms now, start, retry;
  };
  const row rows[] = {
      // (Dates far in the future: budget hashes expire at an absolute time a day after their
      // period, by Redis's clock; backend_fixture.hpp.)
      // Sunday 23:00 -> the week began the Monday 6 days 23 h before; the next Monday is 1 h
      // away.
      {limits::budget_period::week, test::test_day - 3'600'000,
       test::test_day - 3'600'000 - 6 * 86'400'000 - 82'800'000, 3'600'000},
      {limits::budget_period::week, test::test_monday, test::test_day, 594'000'000},
      // 2040-02-29 12:00 (leap year) -> 2040-02-01, next 2040-03-01.
      {limits::budget_period::month, 2'214'129'600'000, 2'211'667'200'000, 43'200'000},
      // The last millisecond of 2037 -> 2037-12-01, next 2038-01-01.
      {limits::budget_period::month, test::test_next_day + 31 * 86'400'000LL - 1,
       test::test_next_day, 1},
  };
  int n = 0;
  for (const row& r : rows) {
    std::string name = "p" + std::to_string(n++);
    limits::key_demand k{0, name, {}, {limits::budget_unit::tokens, r.period, 1}};
    now = r.now;
    auto d = demand_for(&k);
    auto a = admit(d);
    ASSERT_TRUE(a.ok()) << name;
    EXPECT_EQ(a.res.budget_period_start, r.start) << name;
    auto no = admit(d);
    EXPECT_EQ(no.kind, refusal::budget) << name;
    EXPECT_EQ(no.retry_after_ms, r.retry) << name;
  }
}

TEST_F(RedisBackend, UsdBudgetChargesTheChosenTargetsPrice) {
  connect();
  limits::key_demand k{
      0, "usd", {}, {limits::budget_unit::usd, limits::budget_period::month, 5000}};
  limits::target_demand t[] = {{0, "g/a@h", {}, {2'500'000, 10'000'000}}};  // $2.5/M in, $10/M out
  auto d = demand_for(&k, 1000, 200, t);
  auto a = admit(d);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.target, 0);
  EXPECT_EQ(a.res.budget_cost, 4500u);            // 2500 + 2000 micro-dollars
  backend->settle(a.res, limits::usage{100, 1});  // 250 + 10 = 260
  sync();
  std::string used = server.command(
      {"HGET", "ob:{k:usd}:budget:" + std::to_string(a.res.budget_period_start), "used"});
  EXPECT_EQ(used, "$3\r\n260\r\n");
}

TEST_F(RedisBackend, UsdBudgetOfAKeyAdmittedWithoutTargetIsChargedTheServedCost) {
  connect();
  // The key is admitted before a target is chosen (no price): settlement carries the actual cost.
  limits::key_demand k{
      0, "usd-late", {}, {limits::budget_unit::usd, limits::budget_period::day, 5000}};
  limits::demand d;
  d.key = &k;
  d.input_tokens = 10;
  d.output_tokens = 10;
  auto a = admit(d);
  ASSERT_TRUE(a.ok());
  limits::usage u{100, 1};
  u.usd_micros = 260;
  backend->settle(a.res, u);
  sync();
  std::string used = server.command(
      {"HGET", "ob:{k:usd-late}:budget:" + std::to_string(a.res.budget_period_start), "used"});
  EXPECT_EQ(used, "$3\r\n260\r\n");
}

TEST_F(RedisBackend, SettlingAZeroCostReservationIsNoScriptError) {
  connect();
  // A usd budget with no target: nothing reserved ("-0" is not an integer to HINCRBY).
  limits::key_demand k{
      0, "zero", {.tpm = 1000}, {limits::budget_unit::usd, limits::budget_period::day, 5000}};
  limits::demand d;
  d.key = &k;
  d.input_tokens = 10;
  d.output_tokens = 10;
  auto a = admit(d);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.res.budget_cost, 0u);
  server.command({"CONFIG", "RESETSTAT"});
  backend->settle(a.res, limits::usage{5, 5});
  backend->release(admit(d).res);
  sync();
  std::string errors = server.command({"INFO", "errorstats"});
  EXPECT_EQ(errors.find("errorstat_"), std::string::npos) << errors;
}

TEST_F(RedisBackend, ARefusalChargesNothing) {
  connect();
  // The key passes budget, concurrency and rpm but not tpm: nothing may be written.
  limits::key_demand k{0,
                       "aon",
                       {.rpm = 10, .tpm = 100, .concurrency = 5},
                       {limits::budget_unit::tokens, limits::budget_period::day, 10'000}};
  auto big = demand_for(&k, 100, 50);  // est 150 > 100: clamped to 100, passes when full
  ASSERT_TRUE(admit(big).ok());
  std::string before_rpm = get("ob:{k:aon}:rpm");
  std::string budget_key = "ob:{k:aon}:budget:" + std::to_string(test::test_day);
  std::string before_budget = server.command({"HGET", budget_key, "reserved"});
  auto no = admit(big);
  ASSERT_EQ(no.kind, refusal::tpm);
  EXPECT_EQ(get("ob:{k:aon}:rpm"), before_rpm);
  EXPECT_EQ(server.command({"HGET", budget_key, "reserved"}), before_budget);
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:aon}:conc"}), ":1\r\n");
  // Every target full: the key is not charged either.
  limits::key_demand k2{0, "aon2", {.rpm = 10, .concurrency = 5}, {}};
  limits::target_demand t[] = {{0, "g/x@h", {.concurrency = 1}, {}}, {1, "g/y@h", {.rpm = 1}, {}}};
  auto d = demand_for(&k2, 1, 1, t);
  auto first = admit(d);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first.target, 0);
  auto second = admit(d);  // x is busy: y
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second.target, 1);
  std::string tat = get("ob:{k:aon2}:rpm");
  auto full = admit(d);
  EXPECT_EQ(full.kind, refusal::targets_full);
  EXPECT_EQ(full.retry_after_ms, 1'000);  // x's lease: a second (y's rpm: 60 s)
  EXPECT_EQ(get("ob:{k:aon2}:rpm"), tat);
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:aon2}:conc"}), ":2\r\n");
}

TEST_F(RedisBackend, AdmissionIsOneRoundTripAndSettlementsRideWithTheNext) {
  redis_backend_options o;
  o.batching.delay = 10s;  // never idle here: only admissions and flush() send settlements
  connect(o);
  limits::key_demand k{0,
                       "rt",
                       {.rpm = 1000, .tpm = 100'000, .concurrency = 100},
                       {limits::budget_unit::tokens, limits::budget_period::day, 1'000'000}};
  limits::target_demand t[] = {{0, "g/a@h", {.rpm = 1000, .concurrency = 100}, {}}};
  auto d = demand_for(&k, 10, 10, t);
  auto running = admit(d);  // a request that runs throughout: the worker is never idle
  ASSERT_TRUE(running.ok());
  server.command({"CONFIG", "RESETSTAT"});
  constexpr int n = 20;
  // Admissions only: one script call each.
  std::vector<limits::verdict> vs;
  for (int i = 0; i < n; ++i) {
    vs.push_back(admit(d));
    ASSERT_TRUE(vs.back().ok()) << i;
  }
  std::string stats = server.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=20,"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("cmdstat_eval:"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("cmdstat_script"), std::string::npos) << stats;
  // Their 20 settlements wait for a carrier; with none, one batch call sends them all.
  for (auto& v : vs) backend->settle(v.res, limits::usage{5, 5});
  test::run_for(io, 20ms);
  EXPECT_EQ(backend->batch().size(), 20u);
  EXPECT_NE(server.command({"INFO", "commandstats"}).find("cmdstat_evalsha:calls=20,"),
            std::string::npos);
  backend->batch().flush();
  sync();
  stats = server.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=21,"), std::string::npos) << stats;
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:rt}:conc"}), ":1\r\n");
  EXPECT_EQ(server.command({"ZCARD", "ob:{t:g/a@h}:conc"}), ":1\r\n");
  // Admit, settle, admit...: each settlement rides with the next admission.
  server.command({"CONFIG", "RESETSTAT"});
  auto prev = admit(d);
  ASSERT_TRUE(prev.ok());
  for (int i = 1; i < n; ++i) {
    backend->settle(prev.res, limits::usage{5, 5});
    EXPECT_EQ(backend->batch().size(), 1u);
    prev = admit(d);
    ASSERT_TRUE(prev.ok()) << i;
    EXPECT_EQ(backend->batch().size(), 0u);
    // Applied before the admission: two leases (the new one's and the running one's).
    EXPECT_EQ(server.command({"ZCARD", "ob:{k:rt}:conc"}), ":2\r\n") << i;
  }
  stats = server.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=20,"), std::string::npos) << stats;
  backend->release(prev.res);
  backend->release(running.res);  // the last one: sent at once with the other
  EXPECT_EQ(backend->batch().size(), 0u);
  sync();
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:rt}:conc"}), ":0\r\n");
  std::string budget = "ob:{k:rt}:budget:" + std::to_string(prev.res.budget_period_start);
  EXPECT_EQ(server.command({"HGET", budget, "reserved"}), "$1\r\n0\r\n");
  EXPECT_EQ(server.command({"HGET", budget, "used"}), "$3\r\n390\r\n");  // 39 settled x 10
  EXPECT_EQ(backend->batch().stats().carried, 19u);
  EXPECT_EQ(backend->batch().stats().batched, 22u);
}

TEST(RedisKeyNames, OneHashTagWithClusterElseOnePerKeyAndTarget) {
  boost::asio::io_context io;
  auto c = std::make_shared<redis::client>(io.get_executor(), redis::client_options{});
  redis_backend_options o;
  o.prefix = "ob:";
  redis_backend plain(c, nullptr, o);
  EXPECT_EQ(plain.key_name("team-a", "rpm"), "ob:{k:team-a}:rpm");
  EXPECT_EQ(plain.target_name("g/m@h", "conc"), "ob:{t:g/m@h}:conc");
  o.cluster = true;
  redis_backend one(c, nullptr, o);
  EXPECT_EQ(one.key_name("team-a", "rpm"), "ob:{ob}:k:team-a:rpm");
  EXPECT_EQ(one.target_name("g/m@h", "conc"), "ob:{ob}:t:g/m@h:conc");
  EXPECT_EQ(key_head("gw1::", true), "gw1::{gw1}:");
  EXPECT_EQ(key_head("", true), "{ob}:");
  EXPECT_EQ(key_head("x", true), "x{x}:");
  EXPECT_EQ(key_head("ob:", false), "ob:");
}

TEST_F(RedisBackend, UnlimitedKeysNeverTouchRedis) {
  connect();
  limits::key_demand k{0, "free", {}, {}};
  limits::target_demand t[] = {{0, "g/a@h", {}, {}}};
  auto d = demand_for(&k, 1, 1, t);
  server.command({"CONFIG", "RESETSTAT"});
  auto v = backend->admit_now(d);
  ASSERT_TRUE(v && v->ok());
  EXPECT_EQ(v->target, 0);
  EXPECT_EQ(server.command({"INFO", "commandstats"}).find("evalsha"), std::string::npos);
}

TEST_F(RedisBackend, AReloadThatChangesRpmKeepsTheRequestsCountedNotTheirTime) {
  // As in memory (limits::gcra_state::at): rpm 2 -> 3 with two requests counted leaves one.
  connect();
  limits::key_demand k{0, "resc", {.rpm = 2}, {}};
  limits::demand d;
  d.key = &k;
  ASSERT_TRUE(admit(d).ok());
  ASSERT_TRUE(admit(d).ok());
  EXPECT_EQ(admit(d).kind, refusal::rpm);
  k.limits.rpm = 3;  // the next snapshot's limit, same key name
  auto v = admit(d);
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(v.headers.limit_requests, 3);
  EXPECT_EQ(v.headers.remaining_requests, 0);
  EXPECT_EQ(admit(d).kind, refusal::rpm);
  // A bare value written by an older gateway is still read (no interval: not rescaled).
  server.command({"SET", "ob:{k:old}:rpm", std::to_string(now + 60'000)});
  limits::key_demand old{0, "old", {.rpm = 2}, {}};
  d.key = &old;
  EXPECT_EQ(admit(d).kind, refusal::rpm);
  // "<tat>:<interval>" in milliseconds, as an older gateway writes it: read as such.
  server.command({"SET", "ob:{k:ms}:rpm", std::to_string(now + 60'000) + ":30000"});
  limits::key_demand ms{0, "ms", {.rpm = 2}, {}};
  d.key = &ms;
  auto legacy = admit(d);
  EXPECT_EQ(legacy.kind, refusal::rpm);
  EXPECT_EQ(legacy.retry_after_ms, 30'000);
}

TEST_F(RedisBackend, GcraStateIsMicrosecondsAndTheSustainedRateIsTheLimit) {
  connect();
  // rpm 40,000: one request every 1.5 ms. In whole milliseconds the interval was 2 ms (30,000
  // a minute). With a burst of 10, 300 ms of the test clock (as many requests as pass each
  // ms) admit (300 ms + 9 intervals) / 1.5 ms + 1 = 210; with the 2 ms interval, 160.
  limits::key_demand k{0, "fast", {.rpm = 40'000, .burst = 10}, {}};
  auto d = demand_for(&k);
  const auto start = now;
  ASSERT_TRUE(admit(d).ok());
  const std::string state = std::to_string(start * 1000 + 1500) + ":1500:u";
  EXPECT_EQ(get("ob:{k:fast}:rpm"), "$" + std::to_string(state.size()) + "\r\n" + state + "\r\n");
  int admitted = 1;
  for (int ms = 1; ms <= 300; ++ms) {
    now = start + ms;
    while (admit(d).ok()) ++admitted;
  }
  EXPECT_EQ(admitted, 210);
}

// On Redis's own clock (TIME) the GCRA keeps its microseconds: requests one after another,
// each a round trip after the last, all pass a limit of one per microsecond with no burst. With
// TIME cut to whole milliseconds every request after the first of its millisecond was refused.
TEST_F(RedisBackend, GcraOnRedisTimeKeepsItsMicroseconds) {
  state::redis_backend_options o;
  const limits::epoch_ms redis_time = 0;  // the scripts' clock: TIME
  o.test_clock = &redis_time;
  connect(o);
  limits::key_demand k{0, "paced", {.rpm = 60'000'000, .burst = 1}, {}};  // I = 1 us
  auto d = demand_for(&k);
  int refused = 0;
  for (int i = 0; i < 50; ++i) refused += admit(d).kind == refusal::rpm ? 1 : 0;
  EXPECT_EQ(refused, 0);
}

}  // namespace
}  // namespace ob::state
