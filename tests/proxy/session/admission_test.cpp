// proxy::admission: the three phases around a request, with the in-memory backend and with a
// backend that needs a round trip (admit_now -> nullopt, then co_await admit).
#include "proxy/admission.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "config/parse.hpp"
#include "proxy/snapshot.hpp"

namespace ob::proxy {
namespace {

std::shared_ptr<const snapshot> make_snapshot(snapshot_store& store, const std::string& keys) {
  auto r = config::parse(
      R"({"providers":[{"group":"g","name":"m","base":"http://127.0.0.1:1","limits":{"concurrency":1}}],
          "keys":)" +
      keys + "}");
  EXPECT_TRUE(r.ok());
  store.install(std::move(*r.cfg));
  return store.load();
}

observe::request_record answered(std::int64_t in, std::int64_t out) {
  observe::request_record rec;
  rec.status = 200;
  rec.ttfb_ms = 1;
  rec.prompt_tokens = in;
  rec.completion_tokens = out;
  return rec;
}

admission::result admit(admission& a, const std::shared_ptr<const snapshot>& snap,
                        const limits::key_entry& key, std::size_t body, std::int64_t cap) {
  a.estimate(body, cap, key.default_output_tokens);
  return a.admit_key(snap, key);
}

TEST(Admission, UnlimitedKeyIsAdmittedWithoutState) {
  snapshot_store store;
  auto snap = make_snapshot(store, R"([{"name":"free","token":"t"}])");
  admission a;
  EXPECT_EQ(a.admit_key(snap, snap->keys.keys[0]), admission::result::admitted);
  EXPECT_TRUE(a.success_headers().empty());
  EXPECT_FALSE(snap->keys.keys[0].limited);
}

TEST(Admission, RefusalCarriesTheAnswerAndChargesNothing) {
  snapshot_store store;
  auto snap = make_snapshot(store, R"([{"name":"k","token":"t","limits":{"rpm":1}}])");
  const auto& key = snap->keys.keys[0];
  admission a;
  ASSERT_EQ(admit(a, snap, key, 100, 10), admission::result::admitted);
  EXPECT_NE(a.success_headers().find("x-ratelimit-limit-requests: 1\r\n"), std::string_view::npos);
  EXPECT_NE(a.success_headers().find("x-ratelimit-remaining-requests: 0\r\n"),
            std::string_view::npos);
  a.finish(answered(5, 5));
  EXPECT_EQ(admit(a, snap, key, 100, 10), admission::result::refused);
  EXPECT_EQ(a.kind(), http::error_kind::rate_limit_requests);
  EXPECT_EQ(a.refused_limit(), "rpm");
  EXPECT_NE(a.message().find("key 'k': limit 1"), std::string_view::npos);
  EXPECT_NE(a.headers().find("Retry-After: 60\r\n"), std::string_view::npos);
}

TEST(Admission, ConcurrencyIsGivenBackOnEveryEnd) {
  snapshot_store store;
  auto snap = make_snapshot(store, R"([{"name":"k","token":"t","limits":{"concurrency":1}}])");
  const auto& key = snap->keys.keys[0];
  {
    admission a;  // a connection that goes away mid-request
    ASSERT_EQ(admit(a, snap, key, 10, 10), admission::result::admitted);
    admission b;
    EXPECT_EQ(admit(b, snap, key, 10, 10), admission::result::refused);
  }
  admission c;
  ASSERT_EQ(admit(c, snap, key, 10, 10), admission::result::admitted);
  observe::request_record failed;  // no answer: released
  c.finish(failed);
  ASSERT_EQ(admit(c, snap, key, 10, 10), admission::result::admitted);
  c.finish(answered(1, 1));
}

TEST(Admission, TargetAtItsLimitIsRefusedThenFreedBySettlement) {
  snapshot_store store;
  auto snap = make_snapshot(store, R"([{"name":"free","token":"t"}])");
  const auto& t = snap->keys.targets[0];
  admission a, b;
  ASSERT_EQ(a.admit_target(snap, t), admission::result::admitted);
  EXPECT_EQ(b.admit_target(snap, t), admission::result::refused);
  a.finish(answered(1, 1));
  EXPECT_EQ(b.admit_target(snap, t), admission::result::admitted);
  b.finish(answered(1, 1));
}

// Two entries with one base, model and key, set apart by a header (two projects of one account):
// two targets with their own limits and counters, in memory and in Redis' key names.
TEST(Admission, EntriesSetApartByHeadersHaveTheirOwnLimits) {
  snapshot_store store;
  auto r = config::parse(
      R"({"providers":[
            {"group":"g","name":"m","base":"http://127.0.0.1:1","key":"k",
             "headers":{"OpenAI-Project":"proj_a"},"limits":{"concurrency":1}},
            {"group":"g","name":"m","base":"http://127.0.0.1:1","key":"k",
             "headers":{"OpenAI-Project":"proj_b"},"limits":{"concurrency":1}},
            {"group":"g","name":"m","base":"http://127.0.0.1:1","key":"k","limits":{"concurrency":1}}],
          "keys":[{"name":"free","token":"t"}]})");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : r.diagnostics[0].to_string());
  store.install(std::move(*r.cfg));
  auto snap = store.load();
  const auto& ts = snap->keys.targets;
  ASSERT_EQ(ts.size(), 3u);
  EXPECT_NE(ts[0].id, ts[1].id);
  EXPECT_NE(ts[0].id, ts[2].id);
  // An entry with nothing set apart keeps the id it always had (the Redis key names of
  // running deployments: base and key hashed as before).
  EXPECT_EQ(ts[2].id, "g/m@127.0.0.1:1#dbc018cb9f46");
  EXPECT_EQ(ts[2].id.substr(ts[2].id.rfind('#')).size(), 13u) << ts[2].id;
  EXPECT_EQ(ts[0].id.substr(0, ts[0].id.rfind('.')), ts[2].id) << ts[0].id;
  admission a, b, c;
  ASSERT_EQ(a.admit_target(snap, ts[0]), admission::result::admitted);
  EXPECT_EQ(b.admit_target(snap, ts[1]), admission::result::admitted);
  EXPECT_EQ(c.admit_target(snap, ts[2]), admission::result::admitted);
  a.finish(answered(1, 1));
  b.finish(answered(1, 1));
  c.finish(answered(1, 1));
}

// A failover from a limited target to one without limits gives the first one's reservation
// back at once: it was held (and then charged the other target's usage) until the request
// ended, so the target stayed "full" while another one served the request.
TEST(Admission, FailoverToAnUnlimitedTargetReleasesThePreviousOne) {
  snapshot_store store;
  auto r = config::parse(
      R"({"providers":[
            {"group":"g","name":"a","base":"http://127.0.0.1:1","limits":{"concurrency":1,"tpm":100}},
            {"group":"g","name":"b","base":"http://127.0.0.1:2"}],
          "keys":[{"name":"free","token":"t"}]})");
  ASSERT_TRUE(r.ok());
  store.install(std::move(*r.cfg));
  auto snap = store.load();
  ASSERT_EQ(snap->keys.targets.size(), 2u);
  const auto& limited = snap->keys.targets[0];
  const auto& unlimited = snap->keys.targets[1];
  ASSERT_TRUE(limited.limits.any());
  ASSERT_FALSE(unlimited.limits.any());
  admission a, b;
  a.estimate(40, 40, 0);
  ASSERT_EQ(a.admit_target(snap, limited), admission::result::admitted);
  ASSERT_EQ(a.admit_target(snap, unlimited), admission::result::admitted);  // failover
  // The limited target is free while `a` is served by the other one...
  b.estimate(10, 10, 0);
  ASSERT_EQ(b.admit_target(snap, limited), admission::result::admitted);
  b.finish_release();
  // ...and is not charged what the other one served: its 100 tokens are all there.
  a.finish(answered(60, 40));
  admission c;
  c.estimate(200, 100, 0);  // 50 + 100 tokens: more than the bucket, passes only when it is full
  EXPECT_EQ(c.admit_target(snap, limited), admission::result::admitted);
  c.finish_release();
}

// A backend that always needs a round trip, deciding with the in-memory one.
class remote_backend final : public limits::backend {
 public:
  explicit remote_backend(limits::backend& inner) : inner_(inner) {}
  std::optional<limits::verdict> admit_now(const limits::demand&) override { return std::nullopt; }
  boost::asio::awaitable<limits::verdict> admit(const limits::demand& d) override {
    ++round_trips;
    co_return *inner_.admit_now(d);
  }
  void settle(const limits::reservation& r, const limits::usage& u) override {
    inner_.settle(r, u);
  }
  void release(const limits::reservation& r) override { inner_.release(r); }
  int round_trips = 0;

 private:
  limits::backend& inner_;
};

TEST(Admission, PendingDecisionIsAwaited) {
  snapshot_store store;
  auto snap = make_snapshot(store, R"([{"name":"k","token":"t","limits":{"rpm":1}}])");
  remote_backend remote(*snap->keys.memory);
  const_cast<limits::key_table&>(snap->keys).active = &remote;
  const auto& key = snap->keys.keys[0];
  admission a;
  boost::asio::io_context io;
  std::vector<bool> outcomes;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
          EXPECT_EQ(admit(a, snap, key, 10, 10), admission::result::pending);
          outcomes.push_back(co_await a.wait());
          a.finish(answered(1, 1));
        }
      },
      boost::asio::detached);
  io.run();
  EXPECT_EQ(outcomes, (std::vector<bool>{true, false}));
  EXPECT_EQ(remote.round_trips, 2);
  EXPECT_EQ(a.kind(), http::error_kind::rate_limit_requests);
}

// A backend whose decisions are given in advance (admitted with no charge when none is left).
class scripted_backend final : public limits::backend {
 public:
  std::optional<limits::verdict> admit_now(const limits::demand&) override {
    if (next.empty()) return limits::verdict{};
    auto v = next.front();
    next.erase(next.begin());
    return v;
  }
  boost::asio::awaitable<limits::verdict> admit(const limits::demand& d) override {
    co_return *admit_now(d);
  }
  void settle(const limits::reservation&, const limits::usage&) override {}
  void release(const limits::reservation&) override {}
  std::vector<limits::verdict> next;
};

limits::verdict refused(limits::refusal kind, std::int64_t retry_ms) {
  limits::verdict v;
  v.kind = kind;
  v.retry_after_ms = retry_ms;
  return v;
}

// One connection, two requests: the first is served by its second target after the state
// backend could not be asked for the first; the second finds both targets at their rate limit.
// That is a 429 with the second request's own wait, not the first request's 503.
TEST(Admission, ARefusedTargetDoesNotColourTheNextRequestsAnswer) {
  snapshot_store store;
  auto snap = make_snapshot(store, R"([{"name":"free","token":"t"}])");
  scripted_backend scripted;
  const_cast<limits::key_table&>(snap->keys).active = &scripted;
  const auto& t = snap->keys.targets[0];
  admission a;
  scripted.next = {refused(limits::refusal::unavailable, 0), refused(limits::refusal::rpm, 250)};
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  ASSERT_EQ(a.admit_target(snap, t), admission::result::admitted);
  a.finish(answered(1, 1));

  scripted.next = {refused(limits::refusal::rpm, 7000), refused(limits::refusal::tpm, 9000)};
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  a.refuse_targets_full("g");
  EXPECT_EQ(a.kind(), http::error_kind::rate_limit_requests);
  EXPECT_EQ(a.refused_limit(), "provider");
  EXPECT_NE(a.headers().find("Retry-After: 7\r\n"), std::string_view::npos) << a.headers();

  // The same after a request that ended without a record (finish_release).
  scripted.next = {refused(limits::refusal::unavailable, 0)};
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  ASSERT_EQ(a.admit_target(snap, t), admission::result::admitted);
  a.finish_release();
  scripted.next = {refused(limits::refusal::concurrency, 3000)};
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  a.refuse_targets_full("g");
  EXPECT_EQ(a.kind(), http::error_kind::rate_limit_requests);
  EXPECT_NE(a.headers().find("Retry-After: 3\r\n"), std::string_view::npos) << a.headers();

  // Within one request, a target the backend could not be asked about: 503 (it might have had
  // room), as before.
  scripted.next = {refused(limits::refusal::unavailable, 0), refused(limits::refusal::rpm, 1000)};
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  EXPECT_EQ(a.admit_target(snap, t), admission::result::refused);
  a.refuse_targets_full("g");
  EXPECT_EQ(a.kind(), http::error_kind::state_unavailable);
}

}  // namespace
}  // namespace ob::proxy
