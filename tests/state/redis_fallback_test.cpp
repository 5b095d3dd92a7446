// The Redis backend when Redis is down or late: on_failure "local" (in-memory backend with the
// limits divided by `instances`, budgets reconciled later) and "deny" (503 state_unavailable).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "state/backend_fixture.hpp"
#include "state/redis/fake_node.hpp"
#include "state/redis_backend.hpp"

namespace ob::state {
namespace {

using limits::refusal;
using namespace std::chrono_literals;

// Stands in for the in-memory backend: admits everything and records what it was asked.
class recording_backend final : public limits::backend {
 public:
  std::optional<limits::verdict> admit_now(const limits::demand& d) override {
    ++admits;
    if (d.key) last_key = *d.key;
    last_targets.assign(d.targets.begin(), d.targets.end());
    limits::verdict v;
    v.target = d.targets.empty() ? -1 : 0;
    v.res.key = d.key;
    v.res.target = v.target;
    v.res.target_ptr = d.targets.empty() ? nullptr : &d.targets[0];
    v.res.tokens = d.input_tokens + d.output_tokens;
    v.res.budget_cost = v.res.tokens;
    v.res.budget_period_start = test::test_day;
    return v;
  }
  boost::asio::awaitable<limits::verdict> admit(const limits::demand& d) override {
    co_return *admit_now(d);
  }
  void settle(const limits::reservation&, const limits::usage&) override { ++settles; }
  void release(const limits::reservation&) override { ++releases; }
  int admits = 0, settles = 0, releases = 0;
  limits::key_demand last_key;
  std::vector<limits::target_demand> last_targets;
};

class RedisFallback : public test::BackendFixture {};

TEST_F(RedisFallback, DenyAnswersUnavailableAtOnceWhenRedisIsDown) {
  redis_backend_options o;
  o.on_failure = failure_mode::deny;
  connect(o);
  server.stop();
  ASSERT_TRUE(test::run_until(io, [&] { return !client->connected(); }));
  limits::key_demand k{0, "k", {.rpm = 10}, {}};
  limits::demand d;
  d.key = &k;
  auto v = backend->admit_now(d);  // decided without waiting
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->kind, refusal::unavailable);
  EXPECT_EQ(backend->stats().unavailable, 1u);
}

TEST_F(RedisFallback, LocalDividesTheLimitsAndReconcilesBudgetsWhenRedisIsBack) {
  recording_backend local;
  redis_backend_options o;
  o.instances = 3;
  connect(o, &local);
  server.stop();
  ASSERT_TRUE(test::run_until(io, [&] { return !client->connected(); }));
  limits::key_demand k{0,
                       "rec",
                       {.rpm = 10, .tpm = 1, .concurrency = 2},
                       {limits::budget_unit::tokens, limits::budget_period::day, 900}};
  limits::target_demand t[] = {{0, "g/a@h", {.rpm = 7, .concurrency = 1}, {}}};
  limits::demand d;
  d.key = &k;
  d.targets = t;
  d.input_tokens = 10;
  d.output_tokens = 20;
  auto v = backend->admit_now(d);
  ASSERT_TRUE(v && v->ok());
  EXPECT_EQ(v->res.lease, 0u);               // a local reservation
  EXPECT_EQ(local.last_key.limits.rpm, 4u);  // ceil(10 / 3)
  EXPECT_EQ(local.last_key.limits.tpm, 1u);  // at least 1
  EXPECT_EQ(local.last_key.limits.concurrency, 1u);
  EXPECT_EQ(local.last_key.budget.amount, 300u);
  ASSERT_EQ(local.last_targets.size(), 1u);
  EXPECT_EQ(local.last_targets[0].limits.rpm, 3u);
  EXPECT_EQ(local.last_targets[0].limits.concurrency, 1u);
  // The same snapshot objects map to the same copies (the reservation's pointers stay valid).
  auto v2 = backend->admit_now(d);
  EXPECT_EQ(v2->res.key, v->res.key);
  backend->settle(v->res, limits::usage{40, 60});  // 100 tokens of budget used locally
  backend->release(v2->res);
  EXPECT_EQ(local.settles, 1);
  EXPECT_EQ(local.releases, 1);
  EXPECT_EQ(backend->stats().local_admissions, 2u);
  // Redis is back: shared counting resumes and the local budget usage is added to it.
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(test::run_until(
      io, [&] { return client->connected(); }, 8000ms));
  sync();
  auto r = admit(d);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r.res.lease, 0u);
  sync();
  EXPECT_EQ(backend->stats().reconciled, 1u);
  EXPECT_EQ(server.command({"HGET", "ob:{k:rec}:budget:" + std::to_string(test::test_day), "used"}),
            "$3\r\n100\r\n");
}

TEST_F(RedisFallback, ASettlementWhileRedisIsDownIsSentWhenItIsBack) {
  connect();
  limits::key_demand k{0,
                       "q",
                       {.concurrency = 5},
                       {limits::budget_unit::tokens, limits::budget_period::day, 10'000}};
  limits::demand d;
  d.key = &k;
  d.input_tokens = 100;
  d.output_tokens = 200;
  auto a = admit(d);
  ASSERT_TRUE(a.ok());
  // The server drops our connection; settle while it is down.
  server.command({"CLIENT", "KILL", "TYPE", "normal"});
  ASSERT_TRUE(test::run_until(io, [&] { return !client->connected(); }));
  backend->settle(a.res, limits::usage{40, 60});
  EXPECT_EQ(backend->queued(), 1u);
  EXPECT_EQ(backend->stats().queued_settlements, 1u);
  ASSERT_TRUE(test::run_until(io, [&] { return client->connected(); }));
  sync();
  auto b = admit(d);  // sends the queued settlement after itself
  ASSERT_TRUE(b.ok());
  sync();
  EXPECT_EQ(backend->queued(), 0u);
  std::string key = "ob:{k:q}:budget:" + std::to_string(a.res.budget_period_start);
  EXPECT_EQ(server.command({"HGET", key, "used"}), "$3\r\n100\r\n");
  EXPECT_EQ(server.command({"HGET", key, "reserved"}), "$3\r\n300\r\n");  // b's
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:q}:conc"}), ":1\r\n");        // b's lease
  EXPECT_EQ(backend->stats().lost_settlements, 0u);
}

TEST_F(RedisFallback, SettlementsQueuedByAReplacedBackendAreSentByItsSuccessor) {
  // A reload replaces a worker's backend (server/worker_state.cpp): what the old one queued
  // while Redis was down goes to the new one instead of being dropped with it.
  connect();
  limits::key_demand k{0,
                       "h",
                       {.concurrency = 5},
                       {limits::budget_unit::tokens, limits::budget_period::day, 10'000}};
  limits::demand d;
  d.key = &k;
  d.input_tokens = 100;
  d.output_tokens = 200;
  auto a = admit(d);
  ASSERT_TRUE(a.ok());
  server.command({"CLIENT", "KILL", "TYPE", "normal"});
  ASSERT_TRUE(test::run_until(io, [&] { return !client->connected(); }));
  backend->settle(a.res, limits::usage{40, 60});
  ASSERT_EQ(backend->queued(), 1u);
  redis_backend_options o;
  o.test_clock = &now;
  auto next = std::make_shared<redis_backend>(client, nullptr, o);
  next->start();
  backend->hand_over(*next);
  EXPECT_EQ(backend->queued(), 0u);
  EXPECT_EQ(next->queued(), 1u);
  backend->stop();
  backend = next;  // the old one is gone
  ASSERT_TRUE(test::run_until(io, [&] { return client->connected(); }));
  sync();
  ASSERT_TRUE(admit(d).ok());  // sends the queued settlement after itself
  sync();
  EXPECT_EQ(next->queued(), 0u);
  std::string key = "ob:{k:h}:budget:" + std::to_string(a.res.budget_period_start);
  EXPECT_EQ(server.command({"HGET", key, "used"}), "$3\r\n100\r\n");
  EXPECT_EQ(server.command({"HGET", key, "reserved"}), "$3\r\n300\r\n");  // the new one's
}

TEST_F(RedisFallback, ALateRedisFallsBackWithinTheTimeout) {
  recording_backend local;
  connect({}, &local, 50ms);
  limits::key_demand k{0, "late", {.rpm = 10}, {}};
  limits::demand d;
  d.key = &k;
  ASSERT_TRUE(admit(d).ok());
  EXPECT_EQ(local.admits, 0);
  server.pause();
  auto t0 = std::chrono::steady_clock::now();
  auto v = admit(d);
  auto took = std::chrono::steady_clock::now() - t0;
  server.resume();
  EXPECT_TRUE(v.ok());
  EXPECT_EQ(local.admits, 1);
  EXPECT_EQ(v.res.lease, 0u);
  EXPECT_LT(took, 100ms);
  EXPECT_GE(took, 45ms);
}

// An admission whose reply comes after the timeout ran in Redis all the same: when the late reply
// says admitted, the lease, the token estimates and the budget reservation it took are given
// back (before: held until the lease ttl, the budget until the period's end).
TEST_F(RedisFallback, ALateAdmissionGivesBackWhatItTookInRedis) {
  recording_backend local;
  connect({}, &local, 50ms);
  limits::key_demand k{0,
                       "late-in",
                       {.tpm = 1000, .concurrency = 1},
                       {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  std::array<limits::target_demand, 1> t{
      limits::target_demand{0, "g/t@h", {.tpm = 1000, .concurrency = 1}, {}}};
  limits::demand d;
  d.key = &k;
  d.targets = t;
  d.input_tokens = 300;
  d.output_tokens = 400;
  server.pause();
  auto v = admit(d);
  EXPECT_EQ(local.admits, 1);  // served by the fallback
  EXPECT_EQ(v.res.lease, 0u);
  server.resume();
  ASSERT_TRUE(test::run_until(io, [&] { return client->late_replies() == 1; }));
  sync();
  EXPECT_EQ(server.command({"ZCARD", backend->key_name("late-in", "conc")}), ":0\r\n");
  EXPECT_EQ(server.command({"ZCARD", backend->target_name("g/t@h", "conc")}), ":0\r\n");
  const std::string budget =
      backend->key_name("late-in", "budget") + ":" + std::to_string(test::test_day);
  EXPECT_EQ(server.command({"HGET", budget, "reserved"}), "$1\r\n0\r\n");
  // The whole of each limit is there for the next request: 700 of 1000 tokens, the only slot.
  auto next = admit(d);
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next.res.lease, 0u);
  EXPECT_EQ(local.admits, 1);
  EXPECT_EQ(local.releases, 0);  // the fallback's own reservation is the caller's to settle
}

// A late refusal took nothing: nothing is given back (the holder keeps its lease).
TEST_F(RedisFallback, ALateRefusalGivesNothingBack) {
  recording_backend local;
  connect({}, &local, 50ms);
  limits::key_demand k{0,
                       "late-no",
                       {.concurrency = 1},
                       {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  limits::demand d;
  d.key = &k;
  d.input_tokens = 100;
  d.output_tokens = 100;
  auto held = admit(d);
  ASSERT_TRUE(held.ok());
  ASSERT_NE(held.res.lease, 0u);
  server.pause();
  admit(d);  // times out: the fallback admits it
  EXPECT_EQ(local.admits, 1);
  server.resume();
  ASSERT_TRUE(test::run_until(io, [&] { return client->late_replies() == 1; }));
  sync();
  // The late run was refused (the slot is held): the holder's lease and reservation stay.
  EXPECT_EQ(server.command({"ZCARD", backend->key_name("late-no", "conc")}), ":1\r\n");
  const std::string budget =
      backend->key_name("late-no", "budget") + ":" + std::to_string(test::test_day);
  EXPECT_EQ(server.command({"HGET", budget, "reserved"}), "$3\r\n200\r\n");
  EXPECT_EQ(admit(d).kind, refusal::concurrency);
  backend->release(held.res);
  sync();
  EXPECT_EQ(server.command({"HGET", budget, "reserved"}), "$1\r\n0\r\n");
  EXPECT_TRUE(admit(d).ok());
}

// An admission whose waiter timed out and whose late reply is NOSCRIPT (the server lost its
// scripts meanwhile) did not run: the settlements it carried are sent again, once, as EVAL, so
// the budget gets its usage and the lease is given back (before: both lost).
TEST_F(RedisFallback, SettlementsCarriedByALateAdmissionAnsweredNoScriptAreSentAgainOnce) {
  recording_backend local;
  redis_backend_options o;
  o.batching.delay = 10s;  // the settlement waits for the next admission to carry it
  connect(o, &local, 50ms);
  limits::key_demand k{0,
                       "noscript",
                       {.concurrency = 10},
                       {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  limits::demand d;
  d.key = &k;
  d.input_tokens = 10;
  d.output_tokens = 10;
  auto running = admit(d);  // keeps the worker busy: settlements wait for a carrier
  auto ended = admit(d);
  ASSERT_NE(running.res.lease, 0u);
  ASSERT_NE(ended.res.lease, 0u);
  backend->settle(ended.res, limits::usage{3, 4});
  ASSERT_EQ(backend->batch().size(), 1u);
  server.command({"SCRIPT", "FLUSH"});
  // Redis busy past the timeout: the next admission (carrying the settlement) times out, then
  // is answered NOSCRIPT.
  std::array<std::string_view, 3> sleep{"DEBUG", "SLEEP", "0.15"};
  ASSERT_TRUE(client->send_detached(sleep));
  auto late = admit(d);
  EXPECT_EQ(late.res.lease, 0u);  // the fallback decided
  EXPECT_EQ(local.admits, 1);
  EXPECT_EQ(backend->batch().size(), 0u);  // carried
  ASSERT_TRUE(test::run_until(io, [&] { return client->late_replies() == 1; }));
  sync();
  test::run_for(io, 50ms);
  sync();
  const std::string budget =
      backend->key_name("noscript", "budget") + ":" + std::to_string(ended.res.budget_period_start);
  EXPECT_EQ(server.command({"HGET", budget, "used"}), "$1\r\n7\r\n");
  EXPECT_EQ(server.command({"HGET", budget, "reserved"}), "$2\r\n20\r\n");  // `running`'s
  EXPECT_EQ(server.command({"ZCARD", backend->key_name("noscript", "conc")}), ":1\r\n");
  std::string stats = server.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_eval:calls=1,"), std::string::npos) << stats;  // once
  EXPECT_EQ(backend->batch().stats().resent, 1u);
  backend->release(running.res);
  sync();
  EXPECT_EQ(server.command({"HGET", budget, "used"}), "$1\r\n7\r\n");
  EXPECT_EQ(server.command({"HGET", budget, "reserved"}), "$1\r\n0\r\n");
}

// Redis Cluster: an admission still answered TRYAGAIN after its retries (its slot's keys split
// by a migration for longer than its timeout) falls back, and the settlements it carried, which
// did not run either, are sent again once (as EVAL of settle.lua), not lost. Node: a stand-in
// that admits the first two admissions, then answers TRYAGAIN to every admission.
TEST_F(RedisFallback, SettlementsCarriedByAnAdmissionAnsweredTryAgainAreSentAgain) {
  const std::string admitted =
      "*12\r\n:1\r\n:0\r\n:0\r\n:-1\r\n:0\r\n:" + std::to_string(test::test_day) +
      "\r\n"
      ":-1\r\n:-1\r\n:-1\r\n:-1\r\n:-1\r\n:-1\r\n";
  const std::string tryagain = "-TRYAGAIN Multiple keys request during rehashing of slot\r\n";
  int admissions = 0;
  test::fake_node node(io, [&](const std::vector<std::string>& argv, std::size_t) {
    if (argv[0] == "EVALSHA")
      return test::fake_node::answer_t{++admissions <= 2 ? admitted : tryagain};
    if (argv[0] == "EVAL") return test::fake_node::answer_t{":1\r\n"};
    return test::fake_node::answer_t{"+OK\r\n"};
  });
  redis::client_options co;
  co.address =
      *config::parse_redis_url("redis://127.0.0.1:" + std::to_string(node.port()) + "/0", nullptr);
  co.timeout = 50ms;
  co.cluster = true;
  client = std::make_shared<redis::client>(io.get_executor(), co);
  register_scripts(*client);
  client->start();
  ASSERT_TRUE(test::run_until(io, [&] { return client->connected(); }));
  recording_backend local;
  redis_backend_options o;
  o.cluster = true;
  o.batching.delay = 10s;  // the settlement waits for the next admission to carry it
  backend = std::make_shared<redis_backend>(client, &local, o);
  backend->start();
  limits::key_demand k{0,
                       "split",
                       {.concurrency = 10},
                       {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  limits::demand d;
  d.key = &k;
  d.input_tokens = 10;
  d.output_tokens = 10;
  auto running = admit(d);
  auto ended = admit(d);
  ASSERT_NE(ended.res.lease, 0u);
  backend->settle(ended.res, limits::usage{3, 4});
  ASSERT_EQ(backend->batch().size(), 1u);
  auto split = admit(d);  // carries it; TRYAGAIN until it falls back
  EXPECT_EQ(split.res.lease, 0u);
  EXPECT_EQ(local.admits, 1);
  ASSERT_TRUE(test::run_until(
      io, [&] { return node.count("EVAL") == 1; }, 1000ms));
  test::run_for(io, 100ms);
  EXPECT_EQ(node.count("EVAL"), 1u);  // once
  const auto& eval = *std::find_if(node.received().begin(), node.received().end(),
                                   [](const auto& c) { return c[0] == "EVAL"; });
  ASSERT_EQ(eval.size(), 3u + 4u + 1u + 15u);  // EVAL body numkeys, keys, count, arguments
  EXPECT_EQ(eval[1], settle_script().body);
  EXPECT_EQ(eval[2], "4");  // the key's tpm, tpd, conc, budget
  EXPECT_EQ(eval[3], backend->key_name("split", "tpm"));
  EXPECT_EQ(eval[7], "1");                              // one settlement
  EXPECT_EQ(eval[9], std::to_string(ended.res.lease));  // its lease
  backend->release(running.res);
}

}  // namespace
}  // namespace ob::state
