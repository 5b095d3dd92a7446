// The event ring: bounded, ordered by sequence, gap-free reads while threads publish, and the
// access/health/reload producers that feed it.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "observe/clock.hpp"
#include "observe/events.hpp"
#include "observe/health.hpp"
#include "observe/log.hpp"

namespace ob::observe {
namespace {

std::string line_of(int writer, int i) {
  return R"({"type":"access","w":)" + std::to_string(writer) + R"(,"i":)" + std::to_string(i) + "}";
}

TEST(EventRing, DisabledPublishesNothing) {
  event_ring ring(10);
  ring.publish(line_of(0, 0));
  EXPECT_EQ(ring.last_sequence(), 0u);
  EXPECT_TRUE(ring.read_after(0).events.empty());
}

TEST(EventRing, ReadRecentThinsOneTypeToTheNewestAndKeepsTheRest) {
  event_ring ring(100);
  ring.set_enabled(true);
  for (int i = 0; i < 30; ++i) {
    if (i == 3) ring.publish(R"({"time":"x","type":"health","event":"ejected"})");
    ring.publish(line_of(0, i));
  }
  // 31 events after 0: the health record (seq 4) and the newest 5 records are kept.
  auto b = ring.read_recent(0, 5, "access");
  ASSERT_EQ(b.events.size(), 6u);
  EXPECT_EQ(b.events[0].seq, 4u);
  EXPECT_NE(b.events[0].line.find("health"), std::string::npos);
  EXPECT_EQ(b.events[1].seq, 27u);
  EXPECT_EQ(b.events[5].line, line_of(0, 29));
  EXPECT_EQ(b.next, 31u);
  EXPECT_EQ(b.dropped, 25u);
  // Fewer new events than the limit: every one of them.
  ring.publish(line_of(0, 30));
  auto c = ring.read_recent(b.next, 5, "access");
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_TRUE(ring.read_recent(c.next, 5, "access").events.empty());
  // A type that only starts like the thinned one is not thinned.
  ring.publish(R"({"time":"x","type":"accessory"})");
  for (int i = 0; i < 10; ++i) ring.publish(line_of(0, 100 + i));
  auto d = ring.read_recent(c.next, 2, "access");
  ASSERT_EQ(d.events.size(), 3u);
  EXPECT_NE(d.events[0].line.find("accessory"), std::string::npos);
}

TEST(EventRing, ReadAfterReturnsLaterEventsOldestFirst) {
  event_ring ring(10);
  ring.set_enabled(true);
  for (int i = 0; i < 5; ++i) ring.publish(line_of(0, i));
  auto b = ring.read_after(2);
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].seq, 3u);
  EXPECT_EQ(b.events[0].line, line_of(0, 2));
  EXPECT_EQ(b.events[2].seq, 5u);
  EXPECT_EQ(b.next, 5u);
  EXPECT_EQ(b.dropped, 0u);
  EXPECT_TRUE(ring.read_after(5).events.empty());
  EXPECT_EQ(ring.read_after(5).next, 5u);
  // `max` keeps the oldest; `next` continues right after them.
  auto two = ring.read_after(0, 2);
  ASSERT_EQ(two.events.size(), 2u);
  EXPECT_EQ(two.next, 2u);
  EXPECT_EQ(ring.read_after(two.next).events.front().seq, 3u);
}

TEST(EventRing, KeepsTheLastCapacityAndCountsWhatWasOverwritten) {
  event_ring ring(4);
  ring.set_enabled(true);
  for (int i = 0; i < 10; ++i) ring.publish(line_of(0, i));
  auto b = ring.read_after(0);
  ASSERT_EQ(b.events.size(), 4u);
  EXPECT_EQ(b.events.front().seq, 7u);
  EXPECT_EQ(b.events.back().seq, 10u);
  EXPECT_EQ(b.dropped, 6u);
  EXPECT_EQ(ring.read_after(8).dropped, 0u);
}

TEST(EventRing, EachThreadKeepsCapacitySoTheNewestOverallSurvive) {
  event_ring ring(3);
  ring.set_enabled(true);
  std::thread([&] {
    for (int i = 0; i < 3; ++i) ring.publish(line_of(1, i));
  }).join();
  for (int i = 0; i < 50; ++i) ring.publish(line_of(0, i));  // a busy thread
  auto b = ring.read_after(0);
  // The quiet thread's 3 are not pushed out by the busy one.
  ASSERT_EQ(b.events.size(), 6u);
  EXPECT_EQ(b.events[0].line, line_of(1, 0));
  EXPECT_EQ(b.events.back().line, line_of(0, 49));
}

// Writers publish while a reader follows with read_after(next): every batch is ascending,
// continues after the last one, and every event is either read or counted as dropped.
TEST(EventRing, ConcurrentReaderSeesEveryEventOnceInOrder) {
  constexpr int writers = 4, per_writer = 20000;
  event_ring ring(1000);
  ring.set_enabled(true);
  std::atomic<int> running{writers};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) ring.publish(line_of(w, i));
      running.fetch_sub(1);
    });
  std::uint64_t after = 0, read = 0, dropped = 0;
  std::map<int, int> last_i;  // per writer, events must come in that writer's order
  auto consume = [&](const event_batch& b) {
    std::uint64_t prev = after;
    for (const auto& e : b.events) {
      ASSERT_GT(e.seq, prev);
      prev = e.seq;
      auto v = boost::json::parse(e.line).as_object();
      int w = static_cast<int>(v.at("w").as_int64()), i = static_cast<int>(v.at("i").as_int64());
      auto it = last_i.find(w);
      if (it != last_i.end()) {
        ASSERT_GT(i, it->second);
      }
      last_i[w] = i;
    }
    read += b.events.size();
    dropped += b.dropped;
    ASSERT_GE(b.next, after);
    after = b.next;
  };
  for (int rounds = 0; running.load() > 0 && rounds < 1'000'000; ++rounds) {
    consume(ring.read_after(after));
    if (HasFatalFailure()) break;
  }
  for (auto& t : threads) t.join();
  consume(ring.read_after(after));
  EXPECT_EQ(after, static_cast<std::uint64_t>(writers * per_writer));
  EXPECT_EQ(read + dropped, static_cast<std::uint64_t>(writers * per_writer));
  EXPECT_GT(read, 1000u);  // the reader kept up with part of it, at least the final batch
}

struct global_ring_on {
  global_ring_on() { events().set_enabled(true); }
  ~global_ring_on() { events().set_enabled(false); }
};

// Nobody reading: a thread keeps at most idle_per_tick access records per tick of the coarse
// clock. Once the ring has been read, every one for reader_window.
TEST(EventRing, AccessRecordsAreSampledPerTickUntilTheRingIsRead) {
  event_ring ring(100);
  ring.set_enabled(true);
  using tp = std::chrono::steady_clock::time_point;
  const tp t0{std::chrono::hours(1)};
  auto kept = [&](tp now, int n) {
    int k = 0;
    for (int i = 0; i < n; ++i) k += ring.keeps_access(now) ? 1 : 0;
    return k;
  };
  EXPECT_EQ(kept(t0, 20), event_ring::idle_per_tick);
  EXPECT_EQ(kept(t0, 5), 0);
  EXPECT_EQ(kept(t0 + std::chrono::milliseconds(4), 20), event_ring::idle_per_tick);  // next tick
  // Each thread has its own count.
  int other = 0;
  std::thread([&] { other = kept(t0 + std::chrono::milliseconds(4), 20); }).join();
  EXPECT_EQ(other, event_ring::idle_per_tick);
  // A read (a viewer's poll): every record while it is recent, sampled again after.
  ring.read_after(0);
  const tp now = coarse_now();
  EXPECT_EQ(kept(now, 50), 50);
  EXPECT_EQ(kept(now + event_ring::reader_window / 2, 50), 50);
  EXPECT_EQ(kept(now + event_ring::reader_window + std::chrono::milliseconds(100), 50),
            event_ring::idle_per_tick);
  ring.read_recent(0, 5, "access");  // the live view's read counts too
  EXPECT_EQ(kept(coarse_now(), 50), 50);
}

// What access_log puts in the global ring: sampled before anyone reads, every one after.
TEST(EventRing, AccessLogAsksBeforeCopyingItsLineIntoTheRing) {
  global_ring_on on;
  flush_access_log();
  // An earlier test may have read the global ring: wait until that is past.
  for (int i = 0; i < 100 && events().read_recently(coarse_now()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(events().read_recently(coarse_now()));
  const auto start = events().last_sequence();
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  const auto from = coarse_now();
  for (int i = 0; i < 40; ++i) access_log(r);
  const auto to = coarse_now();
  flush_access_log();
  const auto sampled = events().last_sequence() - start;
  // At most idle_per_tick in each tick the loop saw (a slow build may see many).
  const auto ticks = static_cast<std::uint64_t>((to - from) / coarse_resolution()) + 1;
  EXPECT_GE(sampled, static_cast<std::uint64_t>(event_ring::idle_per_tick));
  EXPECT_LE(sampled, std::min<std::uint64_t>(40, ticks * event_ring::idle_per_tick)) << ticks;
  events().read_after(events().last_sequence());  // a viewer arrives
  const auto before = events().last_sequence();
  for (int i = 0; i < 40; ++i) access_log(r);
  flush_access_log();
  EXPECT_EQ(events().last_sequence() - before, 40u);
}

TEST(EventRing, AccessHealthAndReloadEventsCarryTheirType) {
  global_ring_on on;
  const auto start = events().last_sequence();
  request_record r;
  r.method = "POST";
  r.path = "/v1/chat/completions";
  r.request_id = "abc";
  access_log(r);  // default text format: the ring still gets JSON
  health_record h;
  h.event = "recovered";
  h.group = "fast";
  h.target = "m";
  health_event(h);
  reload_record rl;
  rl.ok = false;
  rl.generation = 3;
  rl.trigger = "signal";
  rl.errors = 1;
  rl.detail = "providers[0].base: bad";
  reload_event(rl);
  flush_access_log();
  auto b = events().read_after(start);
  ASSERT_EQ(b.events.size(), 3u);
  auto a = boost::json::parse(b.events[0].line).as_object();
  EXPECT_EQ(a.at("type"), "access");
  EXPECT_EQ(a.at("request_id"), "abc");
  auto he = boost::json::parse(b.events[1].line).as_object();
  EXPECT_EQ(he.at("type"), "health");
  EXPECT_EQ(he.at("event"), "recovered");
  auto re = boost::json::parse(b.events[2].line).as_object();
  EXPECT_EQ(re.at("type"), "reload");
  EXPECT_EQ(re.at("ok"), false);
  EXPECT_EQ(re.at("generation"), 3);
  EXPECT_EQ(re.at("detail"), "providers[0].base: bad");
}

}  // namespace
}  // namespace ob::observe
