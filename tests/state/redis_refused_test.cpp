// Error replies Redis gives instead of running an admission's script for a while (BUSY,
// LOADING, MASTERDOWN, CLUSTERDOWN, MOVED/ASK past the redirect limit): the settlements the
// admission carried did not run, and must reach Redis once, not be lost. A stand-in node
// answers the error to the first script calls, then passes every command through to a real
// redis-server.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "state/backend_fixture.hpp"
#include "state/redis/fake_node.hpp"
#include "state/redis_backend.hpp"

namespace ob::state {
namespace {

using namespace std::chrono_literals;

// Admits everything locally (the fallback while Redis refuses).
class local_backend final : public limits::backend {
 public:
  std::optional<limits::verdict> admit_now(const limits::demand& d) override {
    ++admits;
    limits::verdict v;
    v.res.key = d.key;
    v.res.budget_period_start = period_start;
    return v;
  }
  boost::asio::awaitable<limits::verdict> admit(const limits::demand& d) override {
    co_return *admit_now(d);
  }
  void settle(const limits::reservation&, const limits::usage&) override {}
  void release(const limits::reservation&) override {}
  int admits = 0;
  limits::epoch_ms period_start = 0;  // of the budget reservations it makes
};

class RedisRefused : public test::BackendFixture {
 protected:
  // The client talks to `node`, which refuses the next `refuse` script calls with `error` and
  // passes everything else through to the redis-server.
  void connect_through_node(redis_backend_options o) {
    node = std::make_unique<test::fake_node>(
        io, [this](const std::vector<std::string>& argv, std::size_t) {
          const bool script = argv[0] == "EVALSHA" || argv[0] == "EVAL";
          if (script) ++scripts;
          if (script && refuse > 0) {
            --refuse;
            ++refused;
            return test::fake_node::answer_t{error, refuse_delay};
          }
          auto out = server.command(argv);
          if (script && out.starts_with("-")) script_error = out;
          return test::fake_node::answer_t{out};
        });
    redis::client_options co;
    co.address = *config::parse_redis_url(
        "redis://127.0.0.1:" + std::to_string(node->port()) + "/0", nullptr);
    co.timeout = 200ms;
    co.cluster = cluster_client;
    client = std::make_shared<redis::client>(io.get_executor(), co);
    register_scripts(*client);
    client->start();
    ASSERT_TRUE(test::run_until(io, [&] { return client->connected(); }));
    sync();
    o.test_clock = &now;
    o.batching.delay = 10s;  // a settlement waits for the next admission to carry it
    if (share_batch) {  // as the gateway does: one queue per connection, shared by its backends
      batch = std::make_shared<settle_batch>(client, o.batching);
      o.batch = batch;
    }
    options = o;
    backend = std::make_shared<redis_backend>(client, &local, o);
    backend->start();
  }
  std::string budget_field(const limits::verdict& v, const char* field) {
    return server.command(
        {"HGET",
         backend->key_name(name, "budget") + ":" + std::to_string(v.res.budget_period_start),
         field});
  }

  // The key most tests use: concurrency 10, a daily budget of 1,000 tokens, named `name`.
  limits::key_demand budget_key() const {
    return {0,
            name,
            {.concurrency = 10},
            {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  }
  // A request on `k` that reserves 20 tokens.
  static limits::demand demand_of(const limits::key_demand& k) {
    limits::demand d;
    d.key = &k;
    d.input_tokens = 10;
    d.output_tokens = 10;
    return d;
  }

  std::unique_ptr<test::fake_node> node;
  bool cluster_client = false;  // the client follows MOVED/ASK and retries TRYAGAIN
  bool share_batch = false;
  std::shared_ptr<settle_batch> batch;
  redis_backend_options options;  // the backend's
  local_backend local;
  std::string error;
  int refuse = 0;
  std::chrono::milliseconds refuse_delay{0};  // past the client's timeout: a late refusal
  int refused = 0;
  int scripts = 0;
  std::string script_error;  // the last error a script passed through answered
  std::string name;
};

struct refusal_case {
  const char* name;
  const char* reply;
};

const refusal_case refusals[] = {
    {"busy",
     "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN "
     "NOSAVE.\r\n"},
    {"loading", "-LOADING Redis is loading the dataset in memory\r\n"},
    {"masterdown",
     "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"},
    {"clusterdown", "-CLUSTERDOWN The cluster is down\r\n"},
    {"moved", "-MOVED 1234 127.0.0.1:1\r\n"},  // as a waiter gets it past the redirect limit
};

// The admission carrying a settlement is refused, and so is the first re-send; the second
// re-send (after the backoff) runs: the budget's `used` has the settlement's usage once and
// nothing of it stays reserved.
TEST_F(RedisRefused, SettlementsCarriedByARefusedAdmissionReachRedisOnceAfterABackoff) {
  for (const auto& c : refusals) {
    SCOPED_TRACE(c.name);
    TearDown();
    backend.reset();
    client.reset();
    node.reset();
    refuse = 0;
    refused = 0;
    name = std::string("refused-") + c.name;
    error = c.reply;
    connect_through_node({});
    const limits::key_demand k = budget_key();
    const limits::demand d = demand_of(k);
    auto running = admit(d);  // keeps the worker busy: the settlement waits for a carrier
    auto ended = admit(d);
    ASSERT_NE(running.res.lease, 0u);
    ASSERT_NE(ended.res.lease, 0u);
    backend->settle(ended.res, limits::usage{3, 4});
    ASSERT_EQ(backend->batch().size(), 1u);
    refuse = 2;  // the admission carrying it, then its first re-send
    const int scripts_before = scripts;
    const int admits_before = local.admits;
    auto refused_admission = admit(d);
    EXPECT_EQ(refused_admission.res.lease, 0u);  // the fallback decided
    EXPECT_EQ(local.admits, admits_before + 1);
    EXPECT_EQ(backend->batch().size(), 0u);  // carried
    // The re-sends go by themselves (no admission comes to carry them): refused once more,
    // then run (a command the node passes through has run in Redis when it is counted).
    ASSERT_TRUE(test::run_until(
        io, [&] { return scripts == scripts_before + 3; }, 3000ms));
    EXPECT_EQ(refused, 2);
    sync();
    EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
    EXPECT_EQ(budget_field(ended, "reserved"), "$2\r\n20\r\n");  // `running`'s
    EXPECT_EQ(server.command({"ZCARD", backend->key_name(name, "conc")}), ":1\r\n");
    test::run_for(io, 300ms);  // nothing goes again
    sync();
    backend->release(running.res);
    sync();
    EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
    EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
    EXPECT_EQ(server.command({"ZCARD", backend->key_name(name, "conc")}), ":0\r\n");
  }
}

// Past the bound (Redis still refuses): the settlements wait with those kept while Redis is
// unreachable, and reach Redis with the first admission it answers again, once.
TEST_F(RedisRefused, PastTheBoundTheyWaitForTheFirstAdmissionRedisAnswers) {
  name = "refused-long";
  error = refusals[0].reply;  // BUSY
  redis_backend_options o;
  o.refused_retry_for = 300ms;
  connect_through_node(o);
  const limits::key_demand k = budget_key();
  const limits::demand d = demand_of(k);
  auto running = admit(d);
  auto ended = admit(d);
  ASSERT_NE(ended.res.lease, 0u);
  backend->settle(ended.res, limits::usage{3, 4});
  ASSERT_EQ(backend->batch().size(), 1u);
  refuse = 1'000'000;  // for as long as the test says
  auto refused_admission = admit(d);
  EXPECT_EQ(refused_admission.res.lease, 0u);
  test::run_for(io, 800ms);  // re-sent, refused each time, then left waiting
  EXPECT_GE(refused, 3);     // the admission and at least two re-sends
  const int at_bound = refused;
  test::run_for(io, 400ms);
  EXPECT_EQ(refused, at_bound);  // no more re-sends past the bound
  EXPECT_NE(budget_field(ended, "used"), "$1\r\n7\r\n");
  refuse = 0;  // Redis answers again
  auto back = admit(d);
  ASSERT_NE(back.res.lease, 0u);
  sync();
  test::run_for(io, 100ms);
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
  EXPECT_EQ(budget_field(ended, "reserved"), "$2\r\n40\r\n");  // `running`'s and `back`'s
  backend->release(running.res);
  backend->release(back.res);
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
  EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
}

// The admission's waiter times out (the fallback decides), then the refusal comes: the late
// reply's handler keeps the carried settlement the same way.
TEST_F(RedisRefused, ALateRefusalKeepsTheCarriedSettlementsToo) {
  name = "refused-late";
  error = refusals[1].reply;  // LOADING
  connect_through_node({});
  const limits::key_demand k = budget_key();
  const limits::demand d = demand_of(k);
  auto running = admit(d);
  auto ended = admit(d);
  ASSERT_NE(ended.res.lease, 0u);
  backend->settle(ended.res, limits::usage{3, 4});
  ASSERT_EQ(backend->batch().size(), 1u);
  refuse = 1;
  refuse_delay = 300ms;  // the client's timeout is 200 ms
  const int scripts_before = scripts;
  auto late = admit(d);
  EXPECT_EQ(late.res.lease, 0u);
  ASSERT_TRUE(test::run_until(
      io, [&] { return client->late_replies() == 1; }, 2000ms));
  ASSERT_TRUE(test::run_until(
      io, [&] { return scripts == scripts_before + 2; }, 3000ms));
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
  EXPECT_EQ(budget_field(ended, "reserved"), "$2\r\n20\r\n");  // `running`'s
  backend->release(running.res);
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
  EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
}

// A batch of settlements sent on its own (no admission came to carry it: the worker went idle)
// is refused: it is kept with the refused calls and re-sent after the backoff, so the usage
// reaches Redis once and nothing stays reserved.
TEST_F(RedisRefused, ASettlementBatchCallRefusedIsSentAgainAfterABackoff) {
  for (const auto& c : {refusals[0], refusals[1]}) {  // BUSY, LOADING
    SCOPED_TRACE(c.name);
    TearDown();
    backend.reset();
    client.reset();
    node.reset();
    refuse = 0;
    refused = 0;
    name = std::string("refused-batch-") + c.name;
    error = c.reply;
    connect_through_node({});
    const limits::key_demand k = budget_key();
    const limits::demand d = demand_of(k);
    auto ended = admit(d);
    ASSERT_NE(ended.res.lease, 0u);
    sync();
    EXPECT_EQ(budget_field(ended, "reserved"), "$2\r\n20\r\n");
    refuse = 1;  // the batch call
    const int scripts_before = scripts;
    backend->settle(ended.res, limits::usage{3, 4});  // the worker is idle: sent at once
    EXPECT_EQ(backend->batch().size(), 0u);
    ASSERT_TRUE(test::run_until(
        io, [&] { return scripts == scripts_before + 2; }, 3000ms));
    EXPECT_EQ(refused, 1);
    sync();
    EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
    EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
    EXPECT_EQ(server.command({"ZCARD", backend->key_name(name, "conc")}), ":0\r\n");
    EXPECT_EQ(backend->stats().refused_settlements, 1u);
    test::run_for(io, 300ms);  // nothing goes again
    sync();
    EXPECT_EQ(scripts, scripts_before + 2);
    EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
  }
}

// Redis Cluster: a settlement batch call still answered TRYAGAIN after the client's own retries
// (its slot's keys split by a migration for longer than they last, ~250 ms) did not run: it is
// kept with the refused calls and re-sent after a backoff, not dropped.
TEST_F(RedisRefused, ABatchCallStillAnsweredTryAgainAfterItsRetriesIsSentAgainLater) {
  name = "tryagain-batch";
  error = "-TRYAGAIN Multiple keys request during rehashing of slot\r\n";
  cluster_client = true;
  connect_through_node({});
  const limits::key_demand k = budget_key();
  const limits::demand d = demand_of(k);
  auto ended = admit(d);
  ASSERT_NE(ended.res.lease, 0u);
  sync();
  refuse = 6;  // the batch call and the client's 5 retries of it
  const int scripts_before = scripts;
  backend->settle(ended.res, limits::usage{3, 4});  // the worker is idle: sent at once
  ASSERT_TRUE(test::run_until(
      io, [&] { return scripts == scripts_before + 7; }, 3000ms));
  EXPECT_EQ(refused, 6);
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
  EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
  EXPECT_EQ(server.command({"ZCARD", backend->key_name(name, "conc")}), ":0\r\n");
  test::run_for(io, 300ms);  // nothing goes again
  sync();
  EXPECT_EQ(scripts, scripts_before + 7);
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
}

// Past the bound a refused batch call waits, like a refused admission's settlements, for the
// first admission Redis runs.
TEST_F(RedisRefused, ARefusedBatchCallPastTheBoundWaitsForTheFirstAdmissionRedisAnswers) {
  name = "refused-batch-long";
  error = refusals[0].reply;  // BUSY
  redis_backend_options o;
  o.refused_retry_for = 300ms;
  connect_through_node(o);
  const limits::key_demand k = budget_key();
  const limits::demand d = demand_of(k);
  auto ended = admit(d);
  ASSERT_NE(ended.res.lease, 0u);
  refuse = 1'000'000;
  backend->settle(ended.res, limits::usage{3, 4});  // sent at once, refused
  test::run_for(io, 800ms);
  EXPECT_GE(refused, 3);  // the batch call and at least two re-sends
  const int at_bound = refused;
  test::run_for(io, 400ms);
  EXPECT_EQ(refused, at_bound);
  EXPECT_EQ(backend->queued(), 1u);
  refuse = 0;
  auto back = admit(d);
  ASSERT_NE(back.res.lease, 0u);
  sync();
  test::run_for(io, 100ms);
  sync();
  EXPECT_EQ(backend->queued(), 0u);
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
  EXPECT_EQ(budget_field(ended, "reserved"), "$2\r\n20\r\n");  // `back`'s
  backend->release(back.res);
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
  EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
}

// A reload replaces the backend while an admission's refusal is late: the backend that sent it
// is gone (retired, handed over, released) when the refusal comes; the settlements it carried
// go to the backend in use, which re-sends them.
TEST_F(RedisRefused, ALateRefusalReachesTheBackendThatReplacedTheOneThatSentIt) {
  name = "refused-reload";
  error = refusals[1].reply;  // LOADING
  share_batch = true;
  connect_through_node({});
  const limits::key_demand k = budget_key();
  const limits::demand d = demand_of(k);
  auto running = admit(d);
  auto ended = admit(d);
  ASSERT_NE(ended.res.lease, 0u);
  backend->settle(ended.res, limits::usage{3, 4});
  ASSERT_EQ(batch->size(), 1u);
  refuse = 1;
  refuse_delay = 300ms;  // the client's timeout is 200 ms
  const int scripts_before = scripts;
  auto late = admit(d);
  EXPECT_EQ(late.res.lease, 0u);
  EXPECT_EQ(client->late_replies(), 0u);
  // The reload: a new backend on the same connection takes over; the old one ends its last
  // request, hands over what it holds and goes (worker_state::sweep).
  auto next = std::make_shared<redis_backend>(client, &local, options);
  next->start();
  std::shared_ptr<redis_backend> old = std::move(backend);
  backend = next;
  old->release(running.res);
  EXPECT_EQ(old->live_leases(), 0u);
  old->hand_over(*next);
  old->stop();
  std::weak_ptr<redis_backend> gone = old;
  old.reset();
  ASSERT_TRUE(gone.expired());
  ASSERT_TRUE(test::run_until(
      io, [&] { return client->late_replies() == 1; }, 2000ms));
  ASSERT_TRUE(test::run_until(
      io, [&] { return scripts == scripts_before + 3; }, 3000ms));  // + the release's batch
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
  EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
  EXPECT_EQ(server.command({"ZCARD", backend->key_name(name, "conc")}), ":0\r\n");
  test::run_for(io, 300ms);
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
}

// A node where every write fails while the script still runs (not refused up front for a
// no-shebang EVAL): a read-only replica (the configured address reached a replica after a
// failover), writes stopped after a failed background save (MISCONF), fewer replicas than
// min-replicas-to-write (NOREPLICAS). The settlements' write errors must not be swallowed as
// one bad settlement's would be: the script answers the error, nothing of it ran, and the
// settlements are kept as for a refusal until the node takes writes again. Both ways a
// settlement goes: in a batch call of its own, and carried by an admission.
struct writes_refused_case {
  const char* name;
  const char* error;  // what the script answers
  std::function<void(test::redis_server&)> refuse, allow;
};

TEST_F(RedisRefused, SettlementsMeetingANodeRefusingWritesAreKeptUntilItTakesWritesAgain) {
  const writes_refused_case causes[] = {
      // A replica of a master that is not there: it keeps its data and serves reads (stale data
      // allowed, the default), and refuses writes.
      {"readonly", "-READONLY",
       [](test::redis_server& s) {
         ASSERT_EQ(s.command({"REPLICAOF", "127.0.0.1", "1"}), "+OK\r\n");
       },
       [](test::redis_server& s) {
         ASSERT_EQ(s.command({"REPLICAOF", "NO", "ONE"}), "+OK\r\n");
       }},
      {"noreplicas", "-NOREPLICAS",
       [](test::redis_server& s) {
         ASSERT_EQ(s.command({"CONFIG", "SET", "min-replicas-to-write", "1"}), "+OK\r\n");
       },
       [](test::redis_server& s) {
         ASSERT_EQ(s.command({"CONFIG", "SET", "min-replicas-to-write", "0"}), "+OK\r\n");
       }},
      // A background save that fails (its directory is gone) with saving configured and
      // stop-writes-on-bgsave-error (the default); last, as the directory stays gone.
      {"misconf", "-MISCONF",
       [](test::redis_server& s) {
         // *2 $3 dir $n <path>; once removed (an earlier case), Redis cannot name it.
         const std::string dir = s.command({"CONFIG", "GET", "dir"});
         const auto at = dir.rfind("\r\n", dir.size() - 3);
         ASSERT_NE(at, std::string::npos);
         const std::string path = dir.substr(at + 2, dir.size() - at - 4);
         if (path.starts_with("/tmp/ob-redis-")) std::filesystem::remove_all(path);
         ASSERT_EQ(s.command({"CONFIG", "SET", "save", "900 1"}), "+OK\r\n");
         s.command({"BGSAVE"});
         for (int i = 0; i < 200; ++i) {
           if (s.command({"INFO", "persistence"}).find("rdb_last_bgsave_status:err") !=
               std::string::npos)
             return;
           std::this_thread::sleep_for(10ms);
         }
         FAIL() << "the background save did not fail";
       },
       [](test::redis_server& s) {
         ASSERT_EQ(s.command({"CONFIG", "SET", "save", ""}), "+OK\r\n");
       }},
  };
  for (const auto& cause : causes) {
    for (const bool carried : {false, true}) {
      SCOPED_TRACE(std::string(cause.name) +
                   (carried ? ", carried by an admission" : ", batch call"));
      TearDown();
      backend.reset();
      client.reset();
      node.reset();
      name = std::string("refused-writes-") + cause.name + (carried ? "-carried" : "-batch");
      connect_through_node({});
      const limits::key_demand k = budget_key();
      const limits::demand d = demand_of(k);
      limits::verdict running;
      if (carried) running = admit(d);  // keeps the worker busy: the settlement waits
      auto ended = admit(d);
      ASSERT_NE(ended.res.lease, 0u);
      sync();
      cause.refuse(server);
      if (HasFatalFailure()) return;
      const int scripts_before = scripts;
      backend->settle(ended.res, limits::usage{3, 4});
      if (carried) {
        ASSERT_EQ(backend->batch().size(), 1u);
        auto on_replica = admit(d);
        EXPECT_EQ(on_replica.res.lease, 0u);  // the fallback decided
      }
      ASSERT_TRUE(test::run_until(
          io, [&] { return backend->stats().refused_retries >= 1; }, 2000ms));  // refused again
      EXPECT_GE(scripts, scripts_before + 2);
      EXPECT_EQ(backend->queued(), 1u);
      EXPECT_EQ(backend->stats().refused_settlements, 1u);
      EXPECT_EQ(budget_field(ended, "used"), "$-1\r\n");
      EXPECT_TRUE(script_error.starts_with(std::string(cause.error) + " ")) << script_error;
      EXPECT_EQ(backend->stats().lost_settlements, 0u);
      cause.allow(server);
      if (HasFatalFailure()) return;
      const int refused_retries = backend->stats().refused_retries;
      ASSERT_TRUE(test::run_until(
          io,
          [&] { return backend->queued() == 0 && !budget_field(ended, "used").starts_with("$-1"); },
          3000ms));
      sync();
      EXPECT_EQ(backend->stats().refused_retries, refused_retries);
      EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
      EXPECT_EQ(budget_field(ended, "reserved"), carried ? "$2\r\n20\r\n" : "$1\r\n0\r\n");
      if (carried) backend->release(running.res);
      sync();
      test::run_for(io, 200ms);
      sync();
      EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
      EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
      EXPECT_EQ(server.command({"ZCARD", backend->key_name(name, "conc")}), ":0\r\n");
    }
  }
}

// Redis refused an admission that carried no settlements (nothing was kept), then recovered;
// meanwhile the fallback counted budget usage locally. Every later admission is refused for a
// limit (a hot key at its rpm): such a reply shows Redis runs scripts again, so the usage
// counted locally reaches Redis, once, without waiting for an admission to be admitted.
TEST_F(RedisRefused, UsageCountedLocallyReachesRedisWhileAdmissionsAreRefusedForALimit) {
  name = "refused-then-limited";
  error = refusals[0].reply;  // BUSY
  connect_through_node({});
  limits::key_demand k{
      0, name, {.rpm = 1}, {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  const limits::demand d = demand_of(k);
  auto first = admit(d);  // takes the key's one request of the minute
  ASSERT_EQ(first.kind, limits::refusal::none);
  ASSERT_NE(first.res.lease, 0u);
  backend->settle(first.res, limits::usage{1, 2});  // the worker is idle: sent at once
  sync();
  ASSERT_EQ(budget_field(first, "used"), "$1\r\n3\r\n");
  ASSERT_EQ(backend->batch().size(), 0u);
  refuse = 1;  // an admission carrying nothing
  local.period_start = first.res.budget_period_start;
  auto fell_back = admit(d);
  ASSERT_EQ(refused, 1);
  ASSERT_EQ(fell_back.kind, limits::refusal::none);
  ASSERT_EQ(fell_back.res.lease, 0u);                   // the fallback decided
  EXPECT_EQ(backend->queued(), 0u);                     // nothing to keep
  backend->settle(fell_back.res, limits::usage{3, 4});  // counted locally: 7 to add to Redis
  // Redis runs scripts again; the key stays at its limit.
  for (int i = 0; i < 3; ++i) {
    auto limited = admit(d);
    EXPECT_EQ(limited.kind, limits::refusal::rpm);
    sync();
  }
  test::run_for(io, 200ms);
  sync();
  EXPECT_EQ(budget_field(first, "used"), "$2\r\n10\r\n");  // 3 + 7, once
  EXPECT_EQ(backend->stats().reconciled, 1u);
  EXPECT_EQ(backend->queued(), 0u);
}

// The same with no admission after Redis recovers: the next lease renewal ends the refusal
// and sends the usage counted locally, once.
TEST_F(RedisRefused, UsageCountedLocallyReachesRedisWithTheNextRenewalAfterARefusal) {
  name = "refused-then-idle";
  error = refusals[1].reply;  // LOADING
  redis_backend_options o;
  o.renew_every = 100ms;
  connect_through_node(o);
  limits::key_demand k{
      0, name, {.rpm = 10}, {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  const limits::demand d = demand_of(k);
  auto first = admit(d);
  ASSERT_EQ(first.kind, limits::refusal::none);
  backend->settle(first.res, limits::usage{1, 2});
  sync();
  ASSERT_EQ(budget_field(first, "used"), "$1\r\n3\r\n");
  refuse = 1;  // an admission carrying nothing
  local.period_start = first.res.budget_period_start;
  auto fell_back = admit(d);
  ASSERT_EQ(refused, 1);
  ASSERT_EQ(fell_back.res.lease, 0u);  // the fallback decided
  backend->settle(fell_back.res, limits::usage{3, 4});
  const int scripts_before = scripts;
  ASSERT_TRUE(test::run_until(
      io, [&] { return scripts > scripts_before; }, 2000ms));  // the reconcile call
  sync();
  EXPECT_EQ(budget_field(first, "used"), "$2\r\n10\r\n");  // 3 + 7
  test::run_for(io, 300ms);                                // more renewals
  sync();
  EXPECT_EQ(budget_field(first, "used"), "$2\r\n10\r\n");  // once
  EXPECT_EQ(backend->stats().reconciled, 1u);
}

// A reload after such a refusal: the backend that replaces the refused one gets the usage
// counted locally, and, Redis being back and nothing kept, sends it at once instead of taking
// over a refusal that nothing held for it can end.
TEST_F(RedisRefused, AReloadAfterARefusalWithNothingKeptSendsTheUsageCountedLocally) {
  name = "refused-then-reload";
  error = refusals[0].reply;  // BUSY
  share_batch = true;
  connect_through_node({});
  limits::key_demand k{
      0, name, {.rpm = 10}, {limits::budget_unit::tokens, limits::budget_period::day, 1000}};
  const limits::demand d = demand_of(k);
  auto first = admit(d);
  ASSERT_EQ(first.kind, limits::refusal::none);
  backend->settle(first.res, limits::usage{1, 2});
  sync();
  refuse = 1;  // an admission carrying nothing
  local.period_start = first.res.budget_period_start;
  auto fell_back = admit(d);
  ASSERT_EQ(refused, 1);
  ASSERT_EQ(fell_back.res.lease, 0u);
  backend->settle(fell_back.res, limits::usage{3, 4});
  auto next = std::make_shared<redis_backend>(client, &local, options);
  next->start();
  std::shared_ptr<redis_backend> old = std::move(backend);
  backend = next;
  old->hand_over(*next);
  old->stop();
  old.reset();
  sync();
  EXPECT_EQ(budget_field(first, "used"), "$2\r\n10\r\n");  // 3 + 7, sent by the hand-over
  EXPECT_EQ(next->stats().reconciled, 1u);
}

// A reload starts a new backend while a re-send waits for its reply: refused again, the call
// goes to the new backend (the one in use, which the first admission Redis runs flushes), not
// back to the retired one's queue.
TEST_F(RedisRefused, AReSendRefusedAgainDuringAReloadGoesToTheNewBackend) {
  name = "refused-resend-reload";
  error = refusals[0].reply;  // BUSY
  share_batch = true;
  connect_through_node({});
  const limits::key_demand k = budget_key();
  const limits::demand d = demand_of(k);
  auto ended = admit(d);
  ASSERT_NE(ended.res.lease, 0u);
  sync();
  refuse = 2;  // the batch call and its first re-send
  refuse_delay = 100ms;
  const int scripts_before = scripts;
  backend->settle(ended.res, limits::usage{3, 4});
  ASSERT_TRUE(test::run_until(
      io, [&] { return scripts == scripts_before + 2; }, 2000ms));  // the re-send is out
  auto next = std::make_shared<redis_backend>(client, &local, options);
  next->start();
  std::shared_ptr<redis_backend> old = backend;
  ASSERT_TRUE(test::run_until(
      io, [&] { return old->stats().refused_retries == 1; }, 2000ms));
  EXPECT_EQ(old->queued(), 0u);
  EXPECT_EQ(next->queued(), 1u);
  backend = next;
  old->stop();
  old.reset();
  ASSERT_TRUE(test::run_until(
      io, [&] { return next->queued() == 0 && scripts == scripts_before + 3; }, 3000ms));
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");
  EXPECT_EQ(budget_field(ended, "reserved"), "$1\r\n0\r\n");
  test::run_for(io, 300ms);
  sync();
  EXPECT_EQ(budget_field(ended, "used"), "$1\r\n7\r\n");  // once
}

}  // namespace
}  // namespace ob::state
