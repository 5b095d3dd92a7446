// What the admin API keeps for the dashboard: the reload history.
#include "server/admin_api.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace ob::server {
namespace {

proxy::snapshot_store::reload_outcome refused() {
  proxy::snapshot_store::reload_outcome o;
  o.diagnostics.push_back(
      {config::diagnostic::level::error, "providers[1].base", "\"htp://x\" is not an http(s) URL"});
  o.diagnostics.push_back({config::diagnostic::level::warning, "tiemout", "unknown key"});
  return o;
}

TEST(ReloadHistory, NewestFirstWithEveryDiagnostic) {
  reload_history h;
  proxy::snapshot_store::reload_outcome ok;
  ok.applied = true;
  h.record("start", ok, 1);
  h.record("file", refused(), 1);
  auto j = boost::json::parse(h.json()).as_object();
  auto& list = j.at("reloads").as_array();
  ASSERT_EQ(list.size(), 2u);
  auto& last = list[0].as_object();
  EXPECT_EQ(last.at("trigger").as_string(), "file");
  EXPECT_FALSE(last.at("applied").as_bool());
  EXPECT_EQ(last.at("generation").to_number<int>(), 1);
  EXPECT_EQ(last.at("time").as_string().size(), 20u);  // 2026-11-30T03:00:00Z
  auto& d = last.at("diagnostics").as_array();
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].at("level").as_string(), "error");
  EXPECT_EQ(d[0].at("path").as_string(), "providers[1].base");
  EXPECT_EQ(d[0].at("message").as_string(), "\"htp://x\" is not an http(s) URL");
  EXPECT_EQ(d[1].at("level").as_string(), "warning");
  EXPECT_EQ(list[1].at("trigger").as_string(), "start");
  EXPECT_TRUE(list[1].at("applied").as_bool());
}

TEST(ReloadHistory, KeepsTheLatestTwenty) {
  reload_history h;
  for (int i = 0; i < 30; ++i) h.record("signal", refused(), static_cast<std::uint64_t>(i));
  auto j = boost::json::parse(h.json()).as_object();
  auto& list = j.at("reloads").as_array();
  ASSERT_EQ(list.size(), reload_history::kept);
  EXPECT_EQ(list[0].at("generation").to_number<int>(), 29);
  EXPECT_EQ(list.back().at("generation").to_number<int>(), 10);
}

}  // namespace
}  // namespace ob::server
