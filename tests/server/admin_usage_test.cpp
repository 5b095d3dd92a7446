// GET /admin/v1/usage answers: grouping, periods and refusals of bad parameters.
#include "server/admin_usage.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace ob::server {
namespace {

constexpr state::epoch_ms monday = 1796007600000;  // 2026-11-30T03:00Z

class AdminUsage : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ob-usage-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ledger_ = state::ledger::open(dir_ + "/s.db", nullptr);
    ASSERT_TRUE(ledger_);
    auto& w = ledger_->add_stage();
    w.record({"alice", "fast", "fast/a@h", 1, 10, 20, 30}, monday);
    w.record({"alice", "cheap", "cheap/b@h", 1, 1, 2, 3}, monday);
    w.record({"bob\"x", "fast", "fast/a@h", 1, 100, 200, 300}, monday - 86'400'000);
    ASSERT_TRUE(ledger_->flush());
  }
  void TearDown() override {
    ledger_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::unique_ptr<state::ledger> ledger_;
};

TEST_F(AdminUsage, ByKeyForTheDayIsTheDefault) {
  auto [status, body] = usage_answer(*ledger_, "", monday);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(
      body,
      R"({"period":"day","start":"2026-11-30","end":"2026-12-01","by":["key"],"rows":[)"
      R"({"key":"alice","requests":2,"input_tokens":11,"output_tokens":22,"usd_micros":33}]})");
}

TEST_F(AdminUsage, ByKeyGroupTargetForTheMonth) {
  auto [status, body] = usage_answer(*ledger_, "by=key,group,target&period=month", monday);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(
      body,
      R"({"period":"month","start":"2026-11-01","end":"2026-12-01","by":["key","group","target"],"rows":[)"
      R"({"key":"alice","group":"cheap","target":"cheap/b@h","requests":1,"input_tokens":1,"output_tokens":2,"usd_micros":3},)"
      R"({"key":"alice","group":"fast","target":"fast/a@h","requests":1,"input_tokens":10,"output_tokens":20,"usd_micros":30},)"
      R"({"key":"bob\"x","group":"fast","target":"fast/a@h","requests":1,"input_tokens":100,"output_tokens":200,"usd_micros":300}]})");
}

TEST_F(AdminUsage, ByGroupForTheWeekWithAnEncodedComma) {
  auto [status, body] = usage_answer(*ledger_, "period=week&by=group%2Ctarget", monday);
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find(R"("by":["group","target"])"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("start":"2026-11-30","end":"2026-12-07")"), std::string::npos) << body;
  EXPECT_EQ(body.find("bob"), std::string::npos) << body;  // Sunday: last week
}

TEST_F(AdminUsage, BadParameters) {
  struct row {
    const char* query;
    const char* param;
  };
  for (row r : {row{"period=year", "period"}, row{"by=model", "by"}, row{"by=", "by"},
                row{"by=key,,group", "by"}, row{"limit=3", "limit"}}) {
    auto [status, body] = usage_answer(*ledger_, r.query, monday);
    EXPECT_EQ(status, 400) << r.query;
    EXPECT_NE(body.find(std::string(R"("param":")") + r.param + "\""), std::string::npos)
        << r.query << " " << body;
    EXPECT_NE(body.find(R"("type":"invalid_request_error")"), std::string::npos) << body;
  }
}

}  // namespace
}  // namespace ob::server
