#include "proxy/snapshot.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "routing/policies/round_robin.hpp"

namespace ob::proxy {
namespace {

namespace fs = std::filesystem;

class SnapshotStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ob-snapshot-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    path_ = (dir_ / "config.json").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  static std::string config_with(const std::string& groups_json) {
    return R"({"providers":[)" + groups_json + R"(],"security":["tok"]})";
  }
  static std::string provider(const std::string& group, const std::string& name) {
    return R"({"group":")" + group + R"(","name":")" + name +
           R"(","base":"http://127.0.0.1:1","key":"k"})";
  }

  fs::path dir_;
  std::string path_;
  snapshot_store store_;
};

TEST_F(SnapshotStore, LoadsBuildsRoutesTokensAndModelsBody) {
  write(config_with(provider("fast", "a") + "," + provider("fast", "b") + "," +
                    provider("smart", "c")));
  auto out = store_.reload(path_);
  ASSERT_TRUE(out.applied);
  auto s = store_.load();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->routes.groups().size(), 2u);
  EXPECT_TRUE(s->tokens.contains("tok"));
  EXPECT_FALSE(s->tokens.contains("nope"));
  EXPECT_EQ(
      s->models_body,
      R"({"object":"list","data":[{"id":"fast","object":"model","created":0,"owned_by":"openbridge"},)"
      R"({"id":"smart","object":"model","created":0,"owned_by":"openbridge"}]})");
}

TEST_F(SnapshotStore, InvalidFileIsRefusedAndOldSnapshotKeepsServing) {
  write(config_with(provider("fast", "a")));
  ASSERT_TRUE(store_.reload(path_).applied);
  auto before = store_.load();
  auto gen = store_.generation();
  write("{broken");
  auto out = store_.reload(path_);
  EXPECT_FALSE(out.applied);
  EXPECT_FALSE(out.diagnostics.empty());
  EXPECT_EQ(store_.load(), before);
  EXPECT_EQ(store_.generation(), gen);
}

TEST_F(SnapshotStore, UnchangedBytesAreNotReappliedUnlessForced) {
  write(config_with(provider("fast", "a")));
  ASSERT_TRUE(store_.reload(path_).applied);
  auto gen = store_.generation();
  EXPECT_TRUE(store_.reload(path_).unchanged);
  EXPECT_EQ(store_.generation(), gen);
  EXPECT_TRUE(store_.reload(path_, /*force=*/true).applied);
  EXPECT_EQ(store_.generation(), gen + 1);
}

TEST_F(SnapshotStore, InFlightRequestsKeepTheirSnapshotAcrossASwap) {
  write(config_with(provider("fast", "a")));
  ASSERT_TRUE(store_.reload(path_).applied);
  auto held = store_.load();  // a request in flight
  write(config_with(provider("other", "b")));
  ASSERT_TRUE(store_.reload(path_).applied);
  ASSERT_NE(held->routes.find("fast"), nullptr);  // still intact for its holder
  EXPECT_EQ(held->routes.find("fast")->targets[0].provider->name, "a");
  EXPECT_EQ(store_.load()->routes.find("fast"), nullptr);
  EXPECT_NE(store_.load()->routes.find("other"), nullptr);
}

TEST_F(SnapshotStore, ReloadKeepsRoundRobinAndHealthOfKeptTargets) {
  write(config_with(provider("fast", "a") + "," + provider("fast", "b")));
  ASSERT_TRUE(store_.reload(path_).applied);
  auto s1 = store_.load();
  routing::pick_round_robin(*s1->routes.find("fast"));
  auto health_a = s1->routes.find("fast")->targets[0].health;
  write(config_with(provider("fast", "a") + "," + provider("fast", "b") + "," +
                    provider("new", "c")));
  ASSERT_TRUE(store_.reload(path_).applied);
  auto s2 = store_.load();
  EXPECT_EQ(s2->routes.find("fast")->state, s1->routes.find("fast")->state);
  EXPECT_EQ(s2->routes.find("fast")->targets[0].health, health_a);
}

}  // namespace
}  // namespace ob::proxy
