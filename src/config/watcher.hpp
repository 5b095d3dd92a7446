// Watches one config file and reports changes: inotify on the file's directory (so both an
// in-place rewrite and an atomic rename-over are seen), with a stat() poll as a fallback for
// filesystems where inotify says nothing. Runs its own thread; the callback runs there.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace ob::config {

class file_watcher {
 public:
  // on_change runs on the watcher thread, at most once per settle period, after the file at
  // `path` was written, truncated, replaced by rename, created or deleted and recreated.
  file_watcher(std::string path, std::function<void()> on_change,
               std::chrono::milliseconds poll_interval = std::chrono::milliseconds(1000),
               std::chrono::milliseconds settle = std::chrono::milliseconds(100));
  ~file_watcher();  // stops and joins
  file_watcher(const file_watcher&) = delete;
  file_watcher& operator=(const file_watcher&) = delete;

  void start();
  void stop();

 private:
  void run();

  std::string path_;
  std::function<void()> on_change_;
  std::chrono::milliseconds poll_interval_;
  std::chrono::milliseconds settle_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;  // eventfd used to interrupt the wait on stop()
  std::thread thread_;
};

}  // namespace ob::config
