// The Redis client against a real redis-server (started by the test on a free port).
#include "state/redis/client.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <string>
#include <vector>

#include "state/redis/fake_node.hpp"
#include "state/redis_server.hpp"
#include "state/run_util.hpp"

namespace ob::state::redis {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

class RedisClient : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::redis_server::available()) GTEST_SKIP() << "redis-server not installed";
  }
  std::shared_ptr<client> make(const std::string& url_text, millis timeout = 50ms) {
    client_options o;
    o.address = *config::parse_redis_url(url_text, nullptr);
    o.timeout = timeout;
    auto c = std::make_shared<client>(io.get_executor(), o);
    return c;
  }
  std::shared_ptr<client> make_cluster(unsigned short port, millis timeout) {
    client_options o;
    o.address =
        *config::parse_redis_url("redis://127.0.0.1:" + std::to_string(port) + "/0", nullptr);
    o.timeout = timeout;
    o.cluster = true;
    return std::make_shared<client>(io.get_executor(), o);
  }
  bool wait_connected(client& c, millis bound = 5000ms) {
    return test::run_until(
        io, [&] { return c.connected(); }, bound);
  }
  result cmd(client& c, std::vector<std::string_view> argv) {
    auto r = test::await(io, c.call(argv));
    return r ? std::move(*r) : result{errc::stopped, nullptr};
  }
  static std::string str(const result& r) {
    return r.reply ? std::string(r.reply->str ? r.reply->str : "", r.reply->len) : "";
  }
  asio::io_context io;
  test::redis_server server;
};

TEST_F(RedisClient, PipelinedRepliesComeBackInOrder) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url());
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  struct slot {
    int want;
    std::string got;
    errc e = errc::stopped;
    std::vector<int>* order;
  };
  constexpr int n = 500;
  std::vector<slot> slots(n);
  std::vector<int> order;
  std::vector<std::string> texts(n);
  for (int i = 0; i < n; ++i) {
    slots[i] = slot{i, "", errc::stopped, &order};
    texts[i] = "v" + std::to_string(i);
    std::array<std::string_view, 2> a{"ECHO", texts[i]};
    ASSERT_TRUE(c->send(
        a,
        [](void* ctx, errc e, reply_ptr r) {
          auto* s = static_cast<slot*>(ctx);
          s->e = e;
          if (r) s->got.assign(r->str, r->len);
          s->order->push_back(s->want);
        },
        &slots[i]));
  }
  // All 500 were sent before any reply was read: they are in flight together.
  ASSERT_TRUE(test::run_until(io, [&] { return order.size() == n; }));
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(order[i], i);
    EXPECT_EQ(slots[i].e, errc::ok);
    EXPECT_EQ(slots[i].got, texts[i]);
  }
  c->stop();
}

// What a worker awaits before it accepts clients (server/worker.cpp): once it completes, a
// reachable server is connected (commands go out), an unreachable one has been tried.
asio::awaitable<bool> connected_after_first_attempt(std::shared_ptr<client> c) {
  co_await c->first_attempt();
  co_return c->connected();
}

TEST_F(RedisClient, FirstAttemptEndsWithTheConnectionMade) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url());
  c->start();
  EXPECT_FALSE(c->connected());  // nothing has run yet
  auto seen = test::await(io, connected_after_first_attempt(c));
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(*seen);
  EXPECT_EQ(c->connections_made(), 1u);
  EXPECT_EQ(str(cmd(*c, {"ECHO", "first"})), "first");
  c->stop();
}

TEST_F(RedisClient, FirstAttemptEndsWhenTheServerRefuses) {
  // A port nobody listens on (the server is never started): refused at once.
  auto c = make(server.url());
  c->start();
  auto seen = test::await(io, connected_after_first_attempt(c));
  ASSERT_TRUE(seen.has_value());
  EXPECT_FALSE(*seen);
  EXPECT_EQ(c->connect_attempts(), 1u);  // resumed by the attempt, not by the backoff's retry
  EXPECT_EQ(cmd(*c, {"PING"}).error, errc::not_connected);
  // Later waiters do not wait for the retries.
  auto again = test::await(io, connected_after_first_attempt(c));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(c->connect_attempts(), 1u);
  c->stop();
}

TEST_F(RedisClient, FirstAttemptIsNothingToWaitForBeforeStartOrAfterStop) {
  auto idle = make(server.url());
  auto before = test::await(io, connected_after_first_attempt(idle));
  ASSERT_TRUE(before.has_value());
  EXPECT_FALSE(*before);
  ASSERT_TRUE(server.start());
  auto c = make(server.url());
  c->start();
  c->stop();  // before its first attempt has even begun
  auto after = test::await(io, connected_after_first_attempt(c));
  ASSERT_TRUE(after.has_value());
  EXPECT_FALSE(*after);
}

TEST_F(RedisClient, TimeoutFailsAtOnceAndTheNextCommandGetsItsOwnReply) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 50ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  auto t0 = std::chrono::steady_clock::now();
  auto r = cmd(*c, {"DEBUG", "SLEEP", "0.2"});
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.error, errc::timeout);
  EXPECT_GE(took, 45ms);
  EXPECT_LT(took, 150ms);  // not the 200 ms the server sleeps
  EXPECT_EQ(c->timeouts(), 1u);
  test::run_for(io, 250ms);  // the late "+OK" arrives meanwhile and must be discarded
  auto e = cmd(*c, {"ECHO", "after"});
  ASSERT_EQ(e.error, errc::ok);
  EXPECT_EQ(str(e), "after");
  EXPECT_EQ(c->connections_made(), 1u);  // the same connection, still in step
  c->stop();
}

TEST_F(RedisClient, CommandsQueuedBehindALateOneStayInStep) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 50ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  // A slow command, then two more sent while the server sleeps: all three time out; their
  // late replies are discarded in order and the fourth gets "four".
  std::array<errc, 3> errs{errc::ok, errc::ok, errc::ok};
  auto cb = [](void* ctx, errc e, reply_ptr) { *static_cast<errc*>(ctx) = e; };
  std::array<std::string_view, 3> sleep{"DEBUG", "SLEEP", "0.15"};
  std::array<std::string_view, 2> one{"ECHO", "one"}, two{"ECHO", "two"};
  ASSERT_TRUE(c->send(sleep, cb, &errs[0]));
  ASSERT_TRUE(c->send(one, cb, &errs[1]));
  ASSERT_TRUE(c->send(two, cb, &errs[2]));
  test::run_for(io, 300ms);
  for (errc e : errs) EXPECT_EQ(e, errc::timeout);
  auto r = cmd(*c, {"ECHO", "four"});
  ASSERT_EQ(r.error, errc::ok);
  EXPECT_EQ(str(r), "four");
  c->stop();
}

TEST_F(RedisClient, AStuckServerIsReconnected) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 50ms);  // stuck after 1 s without a reply to a timed-out command
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  server.pause();
  auto r = cmd(*c, {"PING"});
  EXPECT_EQ(r.error, errc::timeout);
  // The kernel still accepts connections to a stopped process: the new connection is made
  // at once; what matters is that the old one was given up.
  ASSERT_TRUE(test::run_until(
      io, [&] { return c->connections_made() >= 2; }, 3000ms));
  server.resume();
  ASSERT_TRUE(wait_connected(*c, 8000ms));
  auto p = cmd(*c, {"ECHO", "back"});
  EXPECT_EQ(str(p), "back");
  EXPECT_GE(c->connections_made(), 2u);
  c->stop();
}

TEST_F(RedisClient, ReconnectsAfterTheServerRestarts) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 200ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  ASSERT_EQ(cmd(*c, {"SET", "k", "1"}).error, errc::ok);
  server.stop();
  ASSERT_TRUE(test::run_until(io, [&] { return !c->connected(); }));
  auto down = cmd(*c, {"PING"});
  EXPECT_EQ(down.error, errc::not_connected);  // failed without waiting
  // Attempts back off: after the drop's 100 ms, at +0, +100, +300, +700, +1500 ms ... (a fixed
  // 100 ms retry would make ~16 attempts in 1.6 s).
  const auto before = c->connect_attempts();
  test::run_for(io, 1600ms);
  const auto tried = c->connect_attempts() - before;
  EXPECT_GE(tried, 3u);
  EXPECT_LE(tried, 6u);
  ASSERT_TRUE(server.start());
  ASSERT_TRUE(wait_connected(*c, 8000ms));
  auto r = cmd(*c, {"ECHO", "again"});
  ASSERT_EQ(r.error, errc::ok);
  EXPECT_EQ(str(r), "again");
  EXPECT_EQ(c->connections_made(), 2u);
  c->stop();
}

TEST_F(RedisClient, EvalShaReloadsAScriptTheServerForgot) {
  ASSERT_TRUE(server.start());
  script s("t", "return ARGV[1] .. KEYS[1]");
  auto c = make(server.url());
  c->add_script(&s);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  std::array<std::string_view, 2> ka{"k", "a"};
  auto r1 = test::await(io, c->eval(s, 1, ka));
  ASSERT_TRUE(r1 && r1->ok());
  EXPECT_EQ(str(*r1), "ak");
  server.command({"SCRIPT", "FLUSH"});
  auto r2 = test::await(io, c->eval(s, 1, ka));
  ASSERT_TRUE(r2 && r2->ok()) << (r2 ? r2->error_text() : "none");
  EXPECT_EQ(str(*r2), "ak");
  // EVALSHA twice (the second said NOSCRIPT), EVAL once; the script is cached again.
  std::string stats = server.command({"INFO", "commandstats"});
  EXPECT_NE(stats.find("cmdstat_eval:calls=1,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=2,"), std::string::npos) << stats;
  auto r3 = test::await(io, c->eval(s, 1, ka));
  ASSERT_TRUE(r3 && r3->ok());
  c->stop();
}

TEST_F(RedisClient, AuthAndSelectFromTheUrl) {
  ASSERT_TRUE(server.start({"--requirepass", "s3cret"}));
  auto c = make(server.url("s3cret", 3));
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  ASSERT_EQ(cmd(*c, {"SET", "where", "db3"}).error, errc::ok);
  std::string got = server.command(
      {"EVAL", "redis.call('SELECT', 3) return redis.call('GET', 'where')", "0"}, "s3cret");
  EXPECT_EQ(got, "$3\r\ndb3\r\n");
  std::string db0 = server.command({"GET", "where"}, "s3cret");
  EXPECT_EQ(db0, "$-1\r\n");
  c->stop();
}

TEST_F(RedisClient, AuthWithAnAclUser) {
  ASSERT_TRUE(server.start({"--user", "gw", "on", ">pw", "~*", "&*", "+@all"}));
  auto c = make("redis://gw:pw@127.0.0.1:" + std::to_string(server.port()) + "/0");
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  auto r = cmd(*c, {"ACL", "WHOAMI"});
  ASSERT_EQ(r.error, errc::ok);
  EXPECT_EQ(str(r), "gw");
  c->stop();
}

TEST_F(RedisClient, AWrongPasswordNeverServesCommands) {
  ASSERT_TRUE(server.start({"--requirepass", "s3cret"}));
  auto c = make(server.url("wrong"));
  c->start();
  ASSERT_TRUE(wait_connected(*c));  // connected: AUTH is pipelined, its refusal closes
  auto r = cmd(*c, {"GET", "x"});
  EXPECT_TRUE(r.error != errc::ok || r.is_error_reply());
  ASSERT_TRUE(test::run_until(io, [&] { return !c->connected(); }));
  c->stop();
}

TEST(RedisRedirect, ParsesMovedAndAsk) {
  struct row {
    const char* text;
    bool ok, ask;
    int slot;
    const char* host;
    int port;
  };
  const row rows[] = {
      {"MOVED 3999 127.0.0.1:6381", true, false, 3999, "127.0.0.1", 6381},
      {"ASK 16383 10.0.0.7:7000", true, true, 16383, "10.0.0.7", 7000},
      {"MOVED 0 redis-2.internal:6379", true, false, 0, "redis-2.internal", 6379},
      {"MOVED 12 ::1:7001", true, false, 12, "::1", 7001},
      {"MOVED 12 [::1]:7001", true, false, 12, "::1", 7001},
      {"MOVED 12 :7001", true, false, 12, "", 7001},  // the node does not know its address
      {"MOVED 16384 127.0.0.1:6381", false, false, 0, "", 0},
      {"MOVED -1 127.0.0.1:6381", false, false, 0, "", 0},
      {"MOVED 12 127.0.0.1", false, false, 0, "", 0},
      {"MOVED 12 127.0.0.1:0", false, false, 0, "", 0},
      {"MOVED 12 127.0.0.1:65536", false, false, 0, "", 0},
      {"MOVED 12 127.0.0.1:63x", false, false, 0, "", 0},
      {"MOVED  127.0.0.1:6381", false, false, 0, "", 0},
      {"MOVED", false, false, 0, "", 0},
      {"MOVEDX 1 a:1", false, false, 0, "", 0},
      {"NOSCRIPT No matching script", false, false, 0, "", 0},
      {"CROSSSLOT Keys in request don't hash to the same slot", false, false, 0, "", 0},
      {"TRYAGAIN Multiple keys request during rehashing of slot", false, false, 0, "", 0},
  };
  for (const row& r : rows) {
    auto got = parse_redirect(r.text);
    ASSERT_EQ(got.has_value(), r.ok) << r.text;
    if (!got) continue;
    EXPECT_EQ(got->ask, r.ask) << r.text;
    EXPECT_EQ(got->slot, r.slot) << r.text;
    EXPECT_EQ(got->host, r.host) << r.text;
    EXPECT_EQ(got->port, r.port) << r.text;
  }
}

TEST(RedisRedirect, EvalShaBytesRewrittenAsEval) {
  char* cmd = nullptr;
  const char* argv[] = {"EVALSHA", "0123456789abcdef0123456789abcdef01234567", "1", "k", "a\r\nb"};
  std::size_t len[] = {7, 40, 1, 1, 4};
  int n = redisFormatCommandArgv(&cmd, 5, argv, len);
  ASSERT_GT(n, 0);
  std::string evalsha(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  const char* eargv[] = {"EVAL", "return 1", "1", "k", "a\r\nb"};
  std::size_t elen[] = {4, 8, 1, 1, 4};
  n = redisFormatCommandArgv(&cmd, 5, eargv, elen);
  std::string expected(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  EXPECT_EQ(evalsha_to_eval(evalsha, "return 1"), expected);
  EXPECT_EQ(evalsha_to_eval("*1\r\n$4\r\nPING\r\n", "x"), "");
  EXPECT_EQ(evalsha_to_eval(evalsha.substr(0, 30), "x"), "");
  EXPECT_EQ(evalsha_to_eval("", "x"), "");
}

// The bytes the client wrote, read back into arguments (a refused fire-and-forget call is kept
// from them); anything else reads as nothing.
TEST(RedisCommand, ParsedBackIntoItsArguments) {
  char* cmd = nullptr;
  const char* argv[] = {"EVALSHA", "0123456789abcdef0123456789abcdef01234567", "1", "k", "a\r\nb",
                        ""};
  std::size_t len[] = {7, 40, 1, 1, 4, 0};
  int n = redisFormatCommandArgv(&cmd, 6, argv, len);
  ASSERT_GT(n, 0);
  std::string bytes(cmd, static_cast<std::size_t>(n));
  redisFreeCommand(cmd);
  auto got = parse_command(bytes);
  ASSERT_EQ(got.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(got[i], std::string_view(argv[i], len[i]));
  const struct {
    const char* name;
    std::string input;
  } bad[] = {
      {"empty", ""},
      {"cut", bytes.substr(0, bytes.size() - 1)},
      {"trailing", bytes + "x"},
      {"not an array", "+OK\r\n"},
      {"length past the end", "*1\r\n$9\r\nPING\r\n"},
      {"no terminator", "*1\r\n$4\r\nPINGxx"},
      {"bad count", "*x\r\n"},
      // Lengths and counts that would wrap or ask for more than the bytes can hold.
      {"length wraps", "*1\r\n$18446744073709551615\r\nPING\r\n"},
      {"length one short of wrapping", "*1\r\n$18446744073709551614\r\nPING\r\n"},
      {"length past 64 bits", "*1\r\n$18446744073709551616\r\nPING\r\n"},
      {"huge count", "*18446744073709551615\r\n$4\r\nPING\r\n"},
      {"count past the bytes", "*1000000000\r\n$4\r\nPING\r\n"},
      {"negative length", "*1\r\n$-1\r\n"},
  };
  for (const auto& b : bad) EXPECT_TRUE(parse_command(b.input).empty()) << b.name;
}

// A fire-and-forget EVALSHA answered NOSCRIPT (the server lost its scripts) is sent again as
// EVAL: applied once, not lost.
TEST_F(RedisClient, ADetachedEvalShaAnsweredNoScriptIsSentAgainAsEval) {
  ASSERT_TRUE(server.start());
  script s("incr", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  auto c = make(server.url());
  c->add_script(&s);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  std::array<std::string_view, 2> ka{"n", "5"};
  ASSERT_TRUE(c->eval_detached(s, 1, ka));
  ASSERT_TRUE(test::run_until(io, [&] { return server.command({"GET", "n"}) == "$1\r\n5\r\n"; }));
  server.command({"SCRIPT", "FLUSH"});
  ASSERT_TRUE(c->eval_detached(s, 1, ka));
  ASSERT_TRUE(test::run_until(io, [&] { return c->resent_as_eval() == 1; }));
  ASSERT_TRUE(test::run_until(io, [&] {
    return server.command({"GET", "n"}) == "$2\r\n10\r\n";
  })) << server.command({"GET", "n"});
  // Once: nothing more arrives.
  test::run_for(io, 50ms);
  EXPECT_EQ(server.command({"GET", "n"}), "$2\r\n10\r\n");
  c->stop();
}

// stop() right after many fire-and-forget commands (the end of the last requests at shutdown):
// every one is written and applied before the connection closes, and `closed` runs after.
TEST_F(RedisClient, StopSendsWhatIsQueuedBeforeClosing) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 2000ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  constexpr int n = 2000;
  for (int i = 0; i < n; ++i) {
    std::array<std::string_view, 2> a{"INCR", "stopped"};
    ASSERT_TRUE(c->send_detached(a));
  }
  bool closed = false;
  c->stop([&] { closed = true; });
  EXPECT_FALSE(c->connected());
  std::array<std::string_view, 2> late{"INCR", "stopped"};
  EXPECT_FALSE(c->send_detached(late));  // nothing new after stop()
  ASSERT_TRUE(test::run_until(io, [&] { return closed; }));
  EXPECT_EQ(server.command({"GET", "stopped"}), "$4\r\n2000\r\n");
}

// A late_reply handler's calls, and the waiter's, in order.
struct late_log {
  std::vector<std::string> calls;
  static void* late(void* ctx, errc e, reply_ptr r) {
    auto* l = static_cast<late_log*>(ctx);
    l->calls.push_back(std::string("late:") + to_string(e) +
                       (r ? ":" + std::string(r->str ? r->str : "", r->len) : ""));
    return e == errc::timeout ? ctx : nullptr;
  }
  static void waiter(void* ctx, errc e, reply_ptr r) {
    auto* l = static_cast<late_log*>(ctx);
    l->calls.push_back(std::string("waiter:") + to_string(e) +
                       (r ? ":" + std::string(r->str ? r->str : "", r->len) : ""));
  }
};

TEST_F(RedisClient, ALateReplyGoesToTheLateHandlerOnce) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 50ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  late_log slow, fast;
  std::array<std::string_view, 3> sleep{"DEBUG", "SLEEP", "0.15"};
  std::array<std::string_view, 2> echo{"ECHO", "late"};
  ASSERT_TRUE(c->send(sleep, &late_log::waiter, &slow, {&late_log::late, &slow}));
  ASSERT_TRUE(c->send(echo, &late_log::waiter, &fast, {&late_log::late, &fast}));
  ASSERT_TRUE(test::run_until(io, [&] { return c->timeouts() == 2; }));
  // The late handler takes over before the waiter hears of the timeout.
  EXPECT_EQ(slow.calls, (std::vector<std::string>{"late:timeout", "waiter:timeout"}));
  ASSERT_TRUE(test::run_until(io, [&] { return c->late_replies() == 2; }));
  EXPECT_EQ(slow.calls, (std::vector<std::string>{"late:timeout", "waiter:timeout", "late:ok:OK"}));
  EXPECT_EQ(fast.calls,
            (std::vector<std::string>{"late:timeout", "waiter:timeout", "late:ok:late"}));
  // Answered in time: the late handler is never called.
  late_log on_time;
  ASSERT_TRUE(c->send(echo, &late_log::waiter, &on_time, {&late_log::late, &on_time}));
  ASSERT_TRUE(test::run_until(io, [&] { return !on_time.calls.empty(); }));
  test::run_for(io, 100ms);
  EXPECT_EQ(on_time.calls, (std::vector<std::string>{"waiter:ok:late"}));
  EXPECT_EQ(c->late_replies(), 2u);
  EXPECT_EQ(c->connections_made(), 1u);
  c->stop();
}

TEST_F(RedisClient, ALateHandlerWhoseReplyNeverComesEndsWithTheConnection) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 50ms);  // stuck after 1 s: the connection is given up
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  server.pause();
  late_log l;
  std::array<std::string_view, 1> ping{"PING"};
  ASSERT_TRUE(c->send(ping, &late_log::waiter, &l, {&late_log::late, &l}));
  ASSERT_TRUE(test::run_until(
      io, [&] { return l.calls.size() == 3; }, 3000ms));
  server.resume();
  EXPECT_EQ(l.calls,
            (std::vector<std::string>{"late:timeout", "waiter:timeout", "late:connection_lost"}));
  EXPECT_EQ(c->late_replies(), 0u);
  c->stop();
}

TEST_F(RedisClient, ALateHandlerEndsOnceWhenTheClientStops) {
  ASSERT_TRUE(server.start());
  auto c = make(server.url(), 50ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  late_log timed_out, waiting;
  std::array<std::string_view, 3> sleep{"DEBUG", "SLEEP", "0.2"};
  ASSERT_TRUE(c->send(sleep, &late_log::waiter, &timed_out, {&late_log::late, &timed_out}));
  ASSERT_TRUE(test::run_until(io, [&] { return c->timeouts() == 1; }));
  std::array<std::string_view, 2> echo{"ECHO", "x"};
  ASSERT_TRUE(c->send(echo, &late_log::waiter, &waiting, {&late_log::late, &waiting}));
  bool closed = false;
  c->stop([&] { closed = true; });
  ASSERT_TRUE(test::run_until(io, [&] { return closed; }));
  test::run_for(io, 50ms);
  // The timed-out one: its reply (read while closing) or the stop, once. The one still waiting
  // hears of the stop; its late handler was never engaged.
  ASSERT_EQ(timed_out.calls.size(), 3u);
  EXPECT_EQ(timed_out.calls[2].substr(0, 5), "late:");
  EXPECT_EQ(waiting.calls, (std::vector<std::string>{"waiter:stopped"}));
}

// Redis Cluster: a command answered MOVED after its waiter timed out is re-sent to the node
// named; the late handler gets that one's reply, once. Node A is a stand-in that answers MOVED
// (late) to the real server.
TEST_F(RedisClient, ALateReplyAfterMovedGoesToTheLateHandlerOnce) {
  ASSERT_TRUE(server.start());
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket peer(io);
  asio::steady_timer delay(io);
  std::array<char, 1024> buf;
  const std::string moved = "-MOVED 0 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  acceptor.async_accept(peer, [&](boost::system::error_code ec) {
    if (ec) return;
    peer.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec2, std::size_t) {
      if (ec2) return;
      delay.expires_after(150ms);  // after the client's 50 ms
      delay.async_wait([&](boost::system::error_code ec3) {
        if (!ec3) asio::async_write(peer, asio::buffer(moved), [](auto, auto) {});
      });
    });
  });
  client_options o;
  o.address = *config::parse_redis_url(
      "redis://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + "/0", nullptr);
  o.timeout = 50ms;
  o.cluster = true;
  auto c = std::make_shared<client>(io.get_executor(), o);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  late_log l;
  std::array<std::string_view, 2> echo{"ECHO", "moved"};
  ASSERT_TRUE(c->send(echo, &late_log::waiter, &l, {&late_log::late, &l}));
  ASSERT_TRUE(test::run_until(io, [&] { return l.calls.size() == 3; }));
  test::run_for(io, 100ms);
  EXPECT_EQ(l.calls, (std::vector<std::string>{"late:timeout", "waiter:timeout", "late:ok:moved"}));
  EXPECT_EQ(c->redirected(), 1u);
  EXPECT_EQ(c->late_replies(), 1u);
  EXPECT_EQ(c->node(), "127.0.0.1:" + std::to_string(server.port()));
  c->stop();
  test::run_for(io, 20ms);
}

// Redis Cluster: settlements answered MOVED, waiting to be re-sent to the node named, when the
// client stops (worker shutdown): they are written there before the connection closes, the one
// answered MOVED after stop() too. Node A is a stand-in that answers MOVED to the real server,
// the second reply late, so stop() comes while the first waits to be re-sent.
TEST_F(RedisClient, StopDeliversWhatWaitsToBeRedirected) {
  ASSERT_TRUE(server.start());
  const std::string moved = "-MOVED 0 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  test::fake_node a(io, [&](const std::vector<std::string>&, std::size_t n) {
    return test::fake_node::answer_t{moved, n == 0 ? 0ms : 150ms};
  });
  auto c = make_cluster(a.port(), 1000ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  std::array<std::string_view, 2> incr{"INCR", "redirected"};
  ASSERT_TRUE(c->send_detached(incr));
  ASSERT_TRUE(c->send_detached(incr));
  ASSERT_TRUE(test::run_until(io, [&] { return c->redirected() == 1; }));
  bool closed = false;
  c->stop([&] { closed = true; });
  ASSERT_TRUE(test::run_until(
      io, [&] { return closed; }, 3000ms));
  EXPECT_EQ(a.count("INCR"), 2u);
  EXPECT_EQ(server.command({"GET", "redirected"}), "$1\r\n2\r\n");
}

// Stopped with a settlement waiting for the node a MOVED named and no connection there yet.
TEST_F(RedisClient, StopDeliversARedirectedSettlementWhileMoving) {
  ASSERT_TRUE(server.start());
  const std::string moved = "-MOVED 0 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  test::fake_node a(io, [&](const std::vector<std::string>&, std::size_t) {
    return test::fake_node::answer_t{moved, 0ms};
  });
  auto c = make_cluster(a.port(), 1000ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  std::array<std::string_view, 2> incr{"INCR", "moving"};
  ASSERT_TRUE(c->send_detached(incr));
  // The MOVED reply read, the switch to the named node not yet made: stop() now.
  ASSERT_TRUE(test::run_until(io, [&] { return c->redirected() == 1; }));
  bool closed = false;
  c->stop([&] { closed = true; });
  ASSERT_TRUE(test::run_until(
      io, [&] { return closed; }, 3000ms));
  EXPECT_EQ(server.command({"GET", "moving"}), "$1\r\n1\r\n");
}

// Redis Cluster TRYAGAIN (a multi-key command while its slot's keys are split between two nodes
// during a migration) is transient: the command is sent again after a short wait, within the
// waiter's timeout, and its waiter gets the answer that finally comes.
TEST_F(RedisClient, TryAgainIsRetriedWithinTheTimeout) {
  const std::string tryagain = "-TRYAGAIN Multiple keys request during rehashing of slot\r\n";
  test::fake_node a(io, [&](const std::vector<std::string>& argv, std::size_t n) {
    if (argv[0] == "ECHO") return test::fake_node::answer_t{n < 2 ? tryagain : "$2\r\nok\r\n"};
    return test::fake_node::answer_t{"+OK\r\n"};
  });
  auto c = make_cluster(a.port(), 500ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = cmd(*c, {"ECHO", "ok"});
  EXPECT_EQ(r.error, errc::ok);
  EXPECT_FALSE(r.is_error_reply()) << r.error_text();
  EXPECT_EQ(str(r), "ok");
  EXPECT_EQ(a.count("ECHO"), 3u);
  EXPECT_EQ(c->tryagain_retries(), 2u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  c->stop();
  test::run_for(io, 20ms);
}

// A waiter never waits past its timeout for a retry: a slot that keeps answering TRYAGAIN
// gives it the error (or the timeout) within it, as before.
TEST_F(RedisClient, TryAgainNeverKeepsAWaiterPastItsTimeout) {
  const std::string tryagain = "-TRYAGAIN Multiple keys request during rehashing of slot\r\n";
  test::fake_node a(io, [&](const std::vector<std::string>&, std::size_t) {
    return test::fake_node::answer_t{tryagain};
  });
  auto c = make_cluster(a.port(), 50ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = cmd(*c, {"ECHO", "x"});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(r.error == errc::timeout || r.error_text().starts_with("TRYAGAIN")) << r.error_text();
  EXPECT_LT(took, 100ms);  // 50 ms, give or take a loaded machine's timer
  test::run_for(io, 1000ms);
  EXPECT_LE(a.count("ECHO"), 1 + client::max_tryagain);  // bounded
  c->stop();
  test::run_for(io, 20ms);
}

// A settlement (fire and forget) answered TRYAGAIN is sent again the same way, never dropped
// silently; a slot that never stops answering TRYAGAIN gets a bounded number of attempts.
TEST_F(RedisClient, ADetachedCommandAnsweredTryAgainIsSentAgain) {
  const std::string tryagain = "-TRYAGAIN Multiple keys request during rehashing of slot\r\n";
  int seen = 0;
  test::fake_node a(io, [&](const std::vector<std::string>& argv, std::size_t) {
    if (argv[0] == "INCR" && argv[1] == "once") {
      return test::fake_node::answer_t{++seen <= 2 ? tryagain : ":1\r\n"};
    }
    if (argv[0] == "INCR") return test::fake_node::answer_t{tryagain};
    return test::fake_node::answer_t{"+OK\r\n"};
  });
  auto c = make_cluster(a.port(), 50ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  std::array<std::string_view, 2> once{"INCR", "once"};
  ASSERT_TRUE(c->send_detached(once));
  ASSERT_TRUE(test::run_until(
      io, [&] { return a.count("INCR") == 3; }, 2000ms));
  test::run_for(io, 300ms);
  EXPECT_EQ(a.count("INCR"), 3u);  // answered at the third: not sent again
  std::array<std::string_view, 2> never{"INCR", "never"};
  ASSERT_TRUE(c->send_detached(never));
  test::run_for(io, 1500ms);
  const auto n = a.count("INCR") - 3;
  EXPECT_EQ(n, 1 + client::max_tryagain);
  c->stop();
  test::run_for(io, 20ms);
}

// A settlement waiting to be sent again after TRYAGAIN when the client stops still goes.
TEST_F(RedisClient, StopDeliversASettlementWaitingAfterTryAgain) {
  const std::string tryagain = "-TRYAGAIN Multiple keys request during rehashing of slot\r\n";
  test::fake_node a(io, [&](const std::vector<std::string>&, std::size_t n) {
    return test::fake_node::answer_t{n == 0 ? tryagain : ":1\r\n"};
  });
  auto c = make_cluster(a.port(), 500ms);
  c->start();
  ASSERT_TRUE(wait_connected(*c));
  std::array<std::string_view, 2> incr{"INCR", "n"};
  ASSERT_TRUE(c->send_detached(incr));
  ASSERT_TRUE(test::run_until(io, [&] { return a.count("INCR") == 1; }));
  bool closed = false;
  c->stop([&] { closed = true; });
  ASSERT_TRUE(test::run_until(
      io, [&] { return closed; }, 2000ms));
  EXPECT_EQ(a.count("INCR"), 2u);
}

}  // namespace
}  // namespace ob::state::redis
