// File watcher in a temp dir: each way a config file gets replaced must produce a callback
// that sees the new content. Waits are generous (5 s) and counts have slack, so a loaded
// 2-core machine does not make these flaky; the long poll interval in the inotify tests makes
// sure inotify (not the poll) did the work.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

#include "config/watcher.hpp"

namespace ob::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto expect_within = 5s;
constexpr auto never = 60s;  // a poll interval that cannot fire during a test

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The way most editors and `echo > file` write: same inode, truncated, rewritten.
void write_in_place(const std::string& path, std::string_view text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

// The way config management writes: a new file renamed over the old one (new inode).
void write_by_rename(const std::string& path, std::string_view text) {
  std::string tmp = path + ".tmp";
  write_in_place(tmp, text);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

// Records what the file held each time the callback ran.
class recorder {
 public:
  explicit recorder(std::string path) : path_(std::move(path)) {}

  std::function<void()> callback() {
    return [this] {
      auto content = read_file(path_);
      std::lock_guard lock(mu_);
      seen_.push_back(content);
      cv_.notify_all();
    };
  }
  bool wait_for_content(std::optional<std::string> want) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, expect_within,
                        [&] { return !seen_.empty() && seen_.back() == want; });
  }
  bool wait_for_calls(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, expect_within, [&] { return seen_.size() >= n; });
  }
  std::size_t calls() {
    std::lock_guard lock(mu_);
    return seen_.size();
  }

 private:
  std::string path_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::optional<std::string>> seen_;
};

class FileWatcher : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "ob-watch-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/config.json";
    write_in_place(path_, "v1");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string dir_, path_;
};

TEST_F(FileWatcher, InPlaceRewriteTriggers) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), never, 50ms);
  w.start();
  ASSERT_TRUE(w.using_inotify());
  auto t0 = std::chrono::steady_clock::now();
  write_in_place(path_, "v2 longer");
  EXPECT_TRUE(rec.wait_for_content("v2 longer"));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, expect_within);
}

TEST_F(FileWatcher, RenameOverTriggers) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), never, 50ms);
  w.start();
  write_by_rename(path_, "v2");
  EXPECT_TRUE(rec.wait_for_content("v2"));
}

TEST_F(FileWatcher, DeleteThenRecreateTriggers) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), never, 50ms);
  w.start();
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  EXPECT_TRUE(rec.wait_for_content(std::nullopt));  // reported gone (a reload would refuse it)
  write_in_place(path_, "v3");
  EXPECT_TRUE(rec.wait_for_content("v3"));
}

TEST_F(FileWatcher, BurstOfWritesIsDebounced) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), never, 400ms);
  w.start();
  for (int i = 0; i < 10; ++i) write_in_place(path_, "burst " + std::to_string(i));
  EXPECT_TRUE(rec.wait_for_content("burst 9"));
  std::this_thread::sleep_for(800ms);  // any late duplicate would show up by now
  EXPECT_GE(rec.calls(), 1u);
  EXPECT_LE(rec.calls(), 3u);  // once normally; slack for a descheduled writer
}

TEST_F(FileWatcher, OtherFilesInTheDirectoryAreIgnored) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), never, 20ms);
  w.start();
  write_in_place(dir_ + "/other.json", "x");
  write_by_rename(dir_ + "/config.json.bak", "y");  // name shares a prefix only
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(rec.calls(), 0u);
  write_in_place(path_, "now");  // still watching
  EXPECT_TRUE(rec.wait_for_content("now"));
}

TEST_F(FileWatcher, NoCallbackWithoutChange) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), 20ms, 20ms);
  w.start();
  std::this_thread::sleep_for(300ms);  // many poll ticks, nothing changed
  EXPECT_EQ(rec.calls(), 0u);
}

TEST_F(FileWatcher, StopIsPromptAndIdempotent) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), never, 50ms);
  w.start();
  std::this_thread::sleep_for(50ms);  // let the thread block in poll()
  auto t0 = std::chrono::steady_clock::now();
  w.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  w.stop();
  file_watcher never_started(path_, [] {});
  never_started.stop();
}

TEST_F(FileWatcher, PollingFallbackWithoutInotify) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), 50ms, 20ms, watch_mode::poll_only);
  w.start();
  EXPECT_FALSE(w.using_inotify());
  write_in_place(path_, "polled v2");  // size differs, so even coarse mtimes cannot hide it
  EXPECT_TRUE(rec.wait_for_content("polled v2"));
  write_by_rename(path_, "v3");  // new inode
  EXPECT_TRUE(rec.wait_for_content("v3"));
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  EXPECT_TRUE(rec.wait_for_content(std::nullopt));
  write_in_place(path_, "back");
  EXPECT_TRUE(rec.wait_for_content("back"));
}

// Kubernetes ConfigMap layout: config.json -> ..data/config.json, ..data -> a timestamped
// directory; an update renames a new ..data symlink into place.
class ConfigMapSwap : public FileWatcher {
 protected:
  void SetUp() override {
    FileWatcher::SetUp();
    ::unlink(path_.c_str());
    for (auto v : {"v1", "v2"}) {
      fs::create_directory(dir_ + "/.." + v);
      write_in_place(dir_ + "/.." + v + "/config.json", std::string("content ") + v);
    }
    fs::create_directory_symlink(".." + std::string("v1"), dir_ + "/..data");
    fs::create_symlink("..data/config.json", path_);
  }
  void swap_to_v2() {
    fs::create_directory_symlink("..v2", dir_ + "/..data_tmp");
    fs::rename(dir_ + "/..data_tmp", dir_ + "/..data");
  }
};

TEST_F(ConfigMapSwap, SeenByInotify) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), never, 50ms);
  w.start();
  swap_to_v2();
  EXPECT_TRUE(rec.wait_for_content("content v2"));
}

TEST_F(ConfigMapSwap, SeenByPolling) {
  recorder rec(path_);
  file_watcher w(path_, rec.callback(), 50ms, 20ms, watch_mode::poll_only);
  w.start();
  swap_to_v2();
  EXPECT_TRUE(rec.wait_for_content("content v2"));
}

TEST_F(FileWatcher, ThrowingCallbackDoesNotStopWatching) {
  std::atomic<int> calls{0};
  file_watcher w(
      path_,
      [&] {
        ++calls;
        throw std::runtime_error("reload failed");
      },
      never, 20ms);
  w.start();
  write_in_place(path_, "a");
  for (int i = 0; i < 500 && calls < 1; ++i) std::this_thread::sleep_for(10ms);
  write_in_place(path_, "bb");
  for (int i = 0; i < 500 && calls < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GE(calls.load(), 2);
}

}  // namespace
}  // namespace ob::config
