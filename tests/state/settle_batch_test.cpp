// settle_batch: settlements carried by the next admission or sent in one batch call
// (src/state/settle_batch.hpp): the argument layout admit.lua / settle.lua read, and, on a real
// redis-server, exactness and the number of script calls with many interleaved requests.
#include "state/settle_batch.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "state/backend_fixture.hpp"

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // see src/state/redis/client.cpp

namespace ob::state {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> all(const redis::arg_buffer& a) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < a.size(); ++i) out.emplace_back(a.at(i));
  return out;
}

settlement sample(std::string_view key, std::uint64_t lease) {
  settlement s;
  s.prefix = "ob:";
  s.has_key = true;
  s.key = key;
  s.has_target = true;
  s.target = "g/a@h";
  s.lease = lease;
  s.period_start = test::test_day;
  s.settle = true;
  s.reserved_tokens = 300;
  s.actual_tokens = 50;
  s.key_tpm = 1000;
  s.key_tpd = 0;
  s.key_lease = true;
  s.budget_reserved = 300;
  s.budget_actual = 50;
  s.target_tpm = 2000;
  s.target_lease = false;
  return s;
}

TEST(SettleEncoding, KeysThenTheFifteenArgumentsSettlementsLuaReads) {
  redis::arg_buffer a;
  EXPECT_EQ(encode(sample("alice", 7), a), 6u);
  std::vector<std::string> want{"ob:{k:alice}:tpm",
                                "ob:{k:alice}:tpd",
                                "ob:{k:alice}:conc",
                                "ob:{k:alice}:budget",
                                "ob:{t:g/a@h}:conc",
                                "ob:{t:g/a@h}:tpm",
                                "0",                             // now: the carrying script's clock
                                "7",                             // lease
                                std::to_string(test::test_day),  // budget period start
                                "1",                             // settle (not release)
                                "300",
                                "50",  // reserved, actual tokens
                                "1",
                                "1000",
                                "0",
                                "1",  // has key, key tpm, tpd, key lease
                                "300",
                                "50",  // budget reserved, actual
                                "1",
                                "2000",
                                "0"};  // has target, target tpm, target lease
  EXPECT_EQ(all(a), want);
  ASSERT_EQ(want.size(), 6 + settlement_args);

  // A release of a reservation holding only a target: 2 keys, key fields zero.
  settlement r;
  r.prefix = "p:";
  r.has_target = true;
  r.target = "t1";
  r.lease = 9;
  r.period_start = 123;  // ignored without a key
  r.reserved_tokens = 5;
  r.target_lease = true;
  redis::arg_buffer b;
  EXPECT_EQ(encode(r, b), 2u);
  std::vector<std::string> want_r{"p:{t:t1}:conc",
                                  "p:{t:t1}:tpm",
                                  "0",
                                  "9",
                                  "0",
                                  "0",
                                  "5",
                                  "-1",
                                  "0",
                                  "0",
                                  "0",
                                  "0",
                                  "0",
                                  "-1",
                                  "1",
                                  "0",
                                  "1"};
  EXPECT_EQ(all(b), want_r);
}

// Without a connection nothing is sent: the queue is only read by carry_*.
class SettleCarry : public ::testing::Test {
 protected:
  std::shared_ptr<settle_batch> make(settle_batch::options o = {}) {
    redis::client_options co;
    co.address = *config::parse_redis_url("redis://127.0.0.1:1/0", nullptr);
    client = std::make_shared<redis::client>(io.get_executor(), co);  // never started
    return std::make_shared<settle_batch>(client, o);
  }
  boost::asio::io_context io;
  std::shared_ptr<redis::client> client;
};

TEST_F(SettleCarry, CarriedKeysFollowTheAdmissionsKeysAndTheirArgumentsItsArguments) {
  auto q = make();
  q->add(sample("a", 1));
  settlement rel;
  rel.prefix = "ob:";
  rel.has_key = true;
  rel.key = "b";
  rel.lease = 2;
  q->add(rel);
  EXPECT_EQ(q->size(), 2u);
  redis::arg_buffer a;
  a.add("K1");  // the admission's own keys...
  a.add("K2");
  auto c = q->carry_keys(a);
  EXPECT_EQ(c.settlements, 2u);
  EXPECT_EQ(c.keys, 6u + 4u);
  a.add("A1");  // ...its own arguments
  q->carry_args(a, c);
  q->admitted(false);
  EXPECT_EQ(q->size(), 0u);
  auto got = all(a);
  ASSERT_EQ(got.size(), 2 + 10 + 1 + 1 + 2 * settlement_args);
  EXPECT_EQ(got[0], "K1");
  EXPECT_EQ(got[1], "K2");
  EXPECT_EQ(got[2], "ob:{k:a}:tpm");
  EXPECT_EQ(got[7], "ob:{t:g/a@h}:tpm");
  EXPECT_EQ(got[8], "ob:{k:b}:tpm");
  EXPECT_EQ(got[11], "ob:{k:b}:budget");
  EXPECT_EQ(got[12], "A1");
  EXPECT_EQ(got[13], "2");                        // how many are carried
  EXPECT_EQ(got[14 + 1], "1");                    // first one's lease
  EXPECT_EQ(got[14 + settlement_args + 1], "2");  // second one's lease
  EXPECT_EQ(got[14 + settlement_args + 3], "0");  // a release
  EXPECT_EQ(got.back(), "0");                     // no target lease
  EXPECT_EQ(q->stats().carried, 2u);

  // Nothing queued: the admission says so.
  redis::arg_buffer e;
  auto none = q->carry_keys(e);
  q->carry_args(e, none);
  q->admitted(false);
  EXPECT_EQ(all(e), std::vector<std::string>{"0"});
}

TEST_F(SettleCarry, AnAdmissionCarriesAtMostMaxCarried) {
  auto q = make({.max_carried = 3});
  for (std::uint64_t i = 1; i <= 5; ++i) q->add(sample("k", i));
  redis::arg_buffer a;
  auto c = q->carry_keys(a);  // (a batch call would go first if connected)
  EXPECT_EQ(c.settlements, 3u);
  q->carry_args(a, c);
  q->admitted(false);
  EXPECT_EQ(q->size(), 2u);
  EXPECT_EQ(all(a)[3 * 6 + 1 + 1], "1");  // the oldest first
  redis::arg_buffer b;
  auto c2 = q->carry_keys(b);
  q->carry_args(b, c2);
  q->admitted(false);
  EXPECT_EQ(c2.settlements, 2u);
  EXPECT_EQ(all(b)[2 * 6 + 1 + 1], "4");
  EXPECT_EQ(q->size(), 0u);
}

// On a real redis-server.
class SettleBatch : public test::BackendFixture {
 protected:
  std::uint64_t script_calls() {
    std::string s = server.command({"INFO", "commandstats"});
    std::uint64_t n = 0;
    for (std::string_view name :
         {"cmdstat_evalsha:calls=", "cmdstat_eval:calls=", "cmdstat_fcall:calls="}) {
      auto at = s.find(name);
      if (at != std::string::npos) n += std::stoull(s.substr(at + name.size()));
    }
    return n;
  }
};

TEST_F(SettleBatch, ManyInterleavedAdmitsAndSettlesAreExactInAboutOneCallEach) {
  connect();  // the real batch delay (1 ms)
  limits::key_demand k{0,
                       "many",
                       {.rpm = 1'000'000, .tpm = 10'000'000, .concurrency = 100},
                       {limits::budget_unit::tokens, limits::budget_period::day, 1'000'000'000}};
  limits::target_demand t[] = {{0, "g/m@h", {.tpm = 10'000'000, .concurrency = 100}, {}}};
  limits::demand d;
  d.key = &k;
  d.targets = t;
  d.input_tokens = 100;
  d.output_tokens = 200;
  server.command({"CONFIG", "RESETSTAT"});
  // 16 requests in flight at once on the one connection, 2,000 in all: each ends (settles,
  // used 50 of its 300) and its client sends the next at once, as under load.
  constexpr int clients = 16, each = 125, n = clients * each;
  int done = 0, refused = 0, released = 0;
  for (int c = 0; c < clients; ++c) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          for (int i = 0; i < each; ++i) {
            auto v = co_await backend->admit(d);
            if (!v.ok()) {
              ++refused;
              continue;
            }
            if (i % 10 == 9) {
              backend->release(v.res);  // some fail before any usage
              ++released;
            } else {
              backend->settle(v.res, limits::usage{20, 30});
            }
          }
          ++done;
        },
        boost::asio::detached);
  }
  ASSERT_TRUE(test::run_until(
      io, [&] { return done == clients; }, 60s));
  EXPECT_EQ(refused, 0);
  sync();
  const std::uint64_t calls = script_calls();
  const auto& st = backend->batch().stats();
  std::printf(
      "%d requests, 16 in flight: %llu script calls (%.3f per request), %llu settlements "
      "carried, %llu in %llu batch calls\n",
      n, static_cast<unsigned long long>(calls), double(calls) / n,
      static_cast<unsigned long long>(st.carried), static_cast<unsigned long long>(st.batched),
      static_cast<unsigned long long>(st.calls));
  EXPECT_EQ(st.carried + st.batched, static_cast<std::uint64_t>(n));
  EXPECT_GE(calls, static_cast<std::uint64_t>(n));
  EXPECT_LE(calls, n + n / 20 + 4);  // the figure: at most ~1 round trip per request
  // Exact: every settlement applied once (the clock stands still: no refill).
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:many}:conc"}), ":0\r\n");
  EXPECT_EQ(server.command({"ZCARD", "ob:{t:g/m@h}:conc"}), ":0\r\n");
  const int settled = n - released;
  std::string budget = "ob:{k:many}:budget:" + std::to_string(test::test_day);
  EXPECT_EQ(server.command({"HGET", budget, "reserved"}), "$1\r\n0\r\n");
  EXPECT_EQ(server.command({"HGET", budget, "used"}),
            "$5\r\n" + std::to_string(settled * 50) + "\r\n");
  auto last = admit(d);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last.headers.remaining_tokens, 10'000'000 - settled * 50 - 300);
  std::string level = server.command({"HGET", "ob:{t:g/m@h}:tpm", "level"});
  EXPECT_EQ(level, "$7\r\n" + std::to_string(10'000'000 - settled * 50 - 300) + "\r\n");
}

TEST_F(SettleBatch, WithoutAdmissionsTheQueueGoesInOneCallAfterTheDelay) {
  redis_backend_options o;
  o.batching.delay = 200ms;
  connect(o);
  limits::key_demand k{0, "idle", {.concurrency = 50}, {}};
  limits::demand d;
  d.key = &k;
  auto running = admit(d);  // still running: the worker is not idle
  std::vector<limits::verdict> vs;
  for (int i = 0; i < 10; ++i) vs.push_back(admit(d));
  server.command({"CONFIG", "RESETSTAT"});
  auto t0 = std::chrono::steady_clock::now();
  for (auto& v : vs) backend->release(v.res);
  EXPECT_EQ(backend->batch().size(), 10u);  // waiting for an admission to carry them
  ASSERT_TRUE(test::run_until(io, [&] { return backend->batch().size() == 0; }));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 190ms);
  sync();
  EXPECT_EQ(script_calls(), 1u);
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:idle}:conc"}), ":1\r\n");
  // The last request ends: nothing else runs, it goes at once.
  backend->release(running.res);
  EXPECT_EQ(backend->batch().size(), 0u);
  sync();
  EXPECT_EQ(script_calls(), 2u);
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:idle}:conc"}), ":0\r\n");
}

TEST_F(SettleBatch, AnIdleWorkerSendsASettlementAtOnce) {
  connect();
  limits::key_demand k{0, "now", {.concurrency = 5}, {}};
  limits::demand d;
  d.key = &k;
  auto v = admit(d);
  ASSERT_TRUE(v.ok());
  backend->release(v.res);  // nothing in flight, nothing else running
  EXPECT_EQ(backend->batch().size(), 0u);
  EXPECT_EQ(backend->batch().stats().calls, 1u);
  sync();
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:now}:conc"}), ":0\r\n");
}

TEST_F(SettleBatch, AFailingSettlementCostsNeitherTheOthersNorTheAdmissionCarryingThem) {
  redis_backend_options o;
  o.batching.delay = 10s;
  connect(o);
  limits::key_demand bad{0, "bad", {.tpm = 1000, .concurrency = 5}, {}};
  limits::key_demand good{0, "good", {.concurrency = 5}, {}};
  limits::demand db, dg;
  db.key = &bad;
  db.input_tokens = 10;
  dg.key = &good;
  auto running = admit(dg);  // the worker is busy: settlements wait for a carrier
  auto b = admit(db), g = admit(dg);
  ASSERT_TRUE(running.ok() && b.ok() && g.ok());
  server.command({"SET", "ob:{k:bad}:tpm", "not a hash"});  // its settlement will fail
  backend->settle(b.res, limits::usage{1, 1});
  backend->release(g.res);
  auto next = admit(dg);  // carries both
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(backend->batch().stats().carried, 2u);
  EXPECT_NE(next.res.lease, 0u);  // decided by Redis, not the fallback
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:good}:conc"}), ":2\r\n");  // g's went
}

}  // namespace
}  // namespace ob::state
