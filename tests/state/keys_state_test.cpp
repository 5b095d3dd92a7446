// keys_state: the reply parser (pure), and the shared counters it reads against the in-memory
// backend's peek (the figures /admin/v1/keys shows without Redis) after the same sequence of
// admissions and settlements; a stopped Redis gives an error within the bound, never a hang.
#include "state/keys_state.hpp"

#include <gtest/gtest.h>

#include <hiredis/hiredis.h>

#include "limits/memory_backend.hpp"
#include "state/backend_fixture.hpp"

namespace ob::state {
namespace {

// A reply as hiredis reads it from `resp`.
redis::reply_ptr reply_of(std::string_view resp) {
  redisReader* r = redisReaderCreate();
  redisReaderFeed(r, resp.data(), resp.size());
  void* out = nullptr;
  EXPECT_EQ(redisReaderGetReply(r, &out), REDIS_OK);
  redisReaderFree(r);
  return redis::reply_ptr(static_cast<redisReply*>(out));
}

// RESP of an array of integers and bulk strings (a string element starts with '$').
std::string resp_array(std::initializer_list<std::string_view> items) {
  std::string out = "*" + std::to_string(items.size()) + "\r\n";
  for (auto i : items) {
    if (!i.empty() && i[0] == '$') {
      auto s = i.substr(1);
      out += "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
    } else {
      out += ":" + std::string(i) + "\r\n";
    }
  }
  return out;
}

TEST(KeysStateParse, AReplyGivesEveryFigure) {
  auto r = reply_of(resp_array({"1796007600123", "7", "-1", "537", "-1", "2", "$63",
                                "$18446744073709551615", "1795996800000", "1796083200000"}));
  auto p = parse_keys_state(r.get());
  ASSERT_TRUE(p);
  EXPECT_EQ(p->now, 1796007600123);
  EXPECT_EQ(p->usage.rpm_remaining, 7);
  EXPECT_EQ(p->usage.rpd_remaining, -1);
  EXPECT_EQ(p->usage.tpm_remaining, 537);
  EXPECT_EQ(p->usage.tpd_remaining, -1);
  EXPECT_EQ(p->usage.inflight, 2u);
  EXPECT_EQ(p->usage.budget_used, 63u);
  // Stored amounts come as text: exact beyond 2^53.
  EXPECT_EQ(p->usage.budget_reserved, 18446744073709551615ull);
  EXPECT_EQ(p->usage.budget_period_start, 1795996800000);
  EXPECT_EQ(p->usage.budget_period_end, 1796083200000);
}

TEST(KeysStateParse, WrongShapesAreRefused) {
  const std::string bad[] = {
      "-ERR something\r\n",
      ":5\r\n",
      "*0\r\n",
      resp_array({"1", "2", "3", "4", "5", "6", "$7", "$8", "9"}),  // 9 elements
      resp_array({"1", "2", "3", "4", "5", "6", "$7", "$8", "9", "10", "11"}),
      resp_array({"1", "2", "3", "4", "5", "-6", "$7", "$8", "9", "10"}),  // negative count
      resp_array({"1", "2", "3", "4", "5", "6", "$x7", "$8", "9", "10"}),  // not a number
      resp_array({"1", "2", "3", "4", "5", "6", "$", "$8", "9", "10"}),    // empty
      resp_array({"1", "2", "3", "4", "5", "6", "$-3", "$8", "9", "10"}),  // negative amount
      resp_array({"1", "2", "3", "4", "5", "6", "$7 ", "$8", "9", "10"}),  // trailing byte
      resp_array({"1", "2", "3", "4", "5", "6", "$99999999999999999999", "$8", "9", "10"}),
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b);
    auto r = reply_of(b);
    EXPECT_FALSE(parse_keys_state(r.get()));
  }
  EXPECT_FALSE(parse_keys_state(nullptr));
}

class KeysStateRedis : public test::BackendFixture {
 protected:
  keys_state_read read(std::span<const limits::key_demand* const> keys,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(1000)) {
    auto r = test::await(io, read_keys_state(client, "ob:", false, keys, limit, now));
    EXPECT_TRUE(r.has_value());
    return r ? std::move(*r) : keys_state_read{};
  }
};

TEST_F(KeysStateRedis, AgreesWithTheInMemoryPeekAfterTheSameSequence) {
  connect();
  using limits::budget_period;
  using limits::budget_unit;
  const limits::key_demand keys[] = {
      {0,
       "s1",
       {.rpm = 5, .tpm = 2000, .concurrency = 3, .burst = 2},
       {budget_unit::tokens, budget_period::day, 20'000}},
      {1, "s2", {.rpd = 50, .tpd = 30'000}, {budget_unit::usd, budget_period::month, 3000}},
      {2, "s3", {.rpm = 30, .rpd = 100, .tpm = 5000, .tpd = 50'000, .concurrency = 2}, {}},
      {3, "s4", {}, {budget_unit::tokens, budget_period::week, 6000}},
  };
  const limits::key_demand* all[] = {&keys[0], &keys[1], &keys[2], &keys[3]};
  const limits::target_demand target[] = {{0, "g/m@h", {}, {1'000'000, 4'000'000}}};
  std::vector<std::shared_ptr<limits::key_state>> ks;
  for (int i = 0; i < 4; ++i) ks.push_back(std::make_shared<limits::key_state>());
  limits::memory_backend memory(ks, {std::make_shared<limits::target_state>()});

  // Nothing counted yet: full windows, no budget used (the script reads keys that do not exist).
  auto first = read(all);
  ASSERT_EQ(first.error, "");
  ASSERT_EQ(first.usage.size(), 4u);
  EXPECT_EQ(first.now, now);
  EXPECT_EQ(first.usage[0].rpm_remaining, 2);  // burst 2
  EXPECT_EQ(first.usage[2].rpd_remaining, 100);
  EXPECT_EQ(first.usage[1].tpd_remaining, 30'000);
  EXPECT_EQ(first.usage[3].budget_used, 0u);

  std::uint64_t seed = 4242;
  auto rnd = [&](std::uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  struct held {
    limits::reservation redis, mem;
    limits::epoch_ms at;
  };
  std::vector<held> outstanding;
  auto finish = [&](std::size_t i) {
    held h = outstanding[i];
    outstanding.erase(outstanding.begin() + static_cast<long>(i));
    if (rnd(3) == 0) {
      backend->release(h.redis);
      memory.release_at(h.mem, now);
      return;
    }
    limits::usage u{static_cast<std::int64_t>(rnd(900)), static_cast<std::int64_t>(rnd(2000))};
    backend->settle(h.redis, u);
    memory.settle_at(h.mem, u, now);
  };
  int compared = 0, busy = 0;
  for (int step = 0; step < 300; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    if (rnd(100) < 70) {
      limits::demand d;
      d.key = &keys[rnd(4)];
      if (rnd(2)) d.targets = target;
      d.input_tokens = rnd(800);
      d.output_tokens = rnd(1500);
      d.now = now;
      auto v = admit(d);
      auto m = memory.decide(d);
      ASSERT_EQ(static_cast<int>(v.kind), static_cast<int>(m.kind));
      if (v.ok()) outstanding.push_back({v.res, m.res, now});
    } else if (!outstanding.empty()) {
      finish(rnd(outstanding.size()));
    }
    limits::epoch_ms dt = rnd(10) < 8 ? static_cast<limits::epoch_ms>(rnd(3000))
                                      : static_cast<limits::epoch_ms>(rnd(200'000));
    for (std::size_t i = 0; i < outstanding.size();) {  // every lease ends within 25 s
      if (now + dt - outstanding[i].at >= 25'000)
        finish(i);
      else
        ++i;
    }
    now += dt;
    sync();
    auto got = read(all);
    ASSERT_EQ(got.error, "");
    ASSERT_EQ(got.usage.size(), 4u);
    EXPECT_EQ(got.now, now);
    for (std::size_t i = 0; i < 4; ++i) {
      SCOPED_TRACE(std::string(keys[i].name));
      auto want = memory.peek(keys[i], now);
      const auto& u = got.usage[i];
      EXPECT_EQ(u.rpm_remaining, want.rpm_remaining);
      EXPECT_EQ(u.rpd_remaining, want.rpd_remaining);
      EXPECT_NEAR(u.tpm_remaining, want.tpm_remaining, 1);
      EXPECT_NEAR(u.tpd_remaining, want.tpd_remaining, 1);
      if (keys[i].limits.concurrency) {
        EXPECT_EQ(u.inflight, want.inflight);
      }
      EXPECT_EQ(u.budget_used, want.budget_used);
      EXPECT_EQ(u.budget_reserved, want.budget_reserved);
      EXPECT_EQ(u.budget_period_start, want.budget_period_start);
      EXPECT_EQ(u.budget_period_end, want.budget_period_end);
      if (u.inflight || u.budget_reserved) ++busy;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 1200);
  EXPECT_GT(busy, 100);  // reservations in flight were compared too, not only settled ones
}

TEST_F(KeysStateRedis, NothingIsWritten) {
  connect();
  const limits::key_demand k{
      0, "ro", {.rpm = 5, .tpm = 100, .concurrency = 2}, {limits::budget_unit::tokens}};
  const limits::key_demand* one[] = {&k};
  ASSERT_EQ(read(one).error, "");
  EXPECT_EQ(server.command({"DBSIZE"}), ":0\r\n");  // keys it read do not come to exist
  // A lease past its expiry is not counted, and not removed either (admit.lua removes it).
  limits::demand d;
  d.key = &k;
  d.now = now;
  ASSERT_TRUE(admit(d).ok());
  now += 31'000;
  auto got = read(one);
  ASSERT_EQ(got.error, "");
  EXPECT_EQ(got.usage[0].inflight, 0u);
  EXPECT_EQ(server.command({"ZCARD", "ob:{k:ro}:conc"}), ":1\r\n");
}

TEST_F(KeysStateRedis, AStoppedRedisFailsTheReadWithinTheTimeout) {
  connect({}, nullptr, std::chrono::milliseconds(100));
  const limits::key_demand k{0, "slow", {.rpm = 5}, {}};
  const limits::key_demand* keys[] = {&k, &k, &k};
  server.pause();
  auto t0 = std::chrono::steady_clock::now();
  auto got = read(keys);
  auto took = std::chrono::steady_clock::now() - t0;
  server.resume();
  EXPECT_EQ(got.error, "timeout");
  EXPECT_TRUE(got.usage.empty());
  EXPECT_LT(took, std::chrono::milliseconds(400));
  EXPECT_GE(took, std::chrono::milliseconds(90));
}

TEST_F(KeysStateRedis, NoConnectionFailsAtOnce) {
  connect();
  client->stop();
  const limits::key_demand k{0, "gone", {.rpm = 5}, {}};
  const limits::key_demand* one[] = {&k};
  EXPECT_EQ(read(one).error, "not_connected");
}

}  // namespace
}  // namespace ob::state
