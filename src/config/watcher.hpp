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

// How changes are noticed. poll_only exists for tests and for filesystems where inotify
// is known not to work; the default uses both (the poll also covers symlink swaps).
enum class watch_mode { inotify_and_poll, poll_only };

class file_watcher {
 public:
  // on_change runs on the watcher thread, at most once per settle period, after the file at
  // `path` was written, truncated, replaced by rename, created or deleted and recreated.
  // Events closer together than `settle` are merged into one call (debounce).
  file_watcher(std::string path, std::function<void()> on_change,
               std::chrono::milliseconds poll_interval = std::chrono::milliseconds(1000),
               std::chrono::milliseconds settle = std::chrono::milliseconds(100),
               watch_mode mode = watch_mode::inotify_and_poll);
  ~file_watcher();  // stops and joins
  file_watcher(const file_watcher&) = delete;
  file_watcher& operator=(const file_watcher&) = delete;

  // Begins watching before it returns: a change made after start() is reported. Once only.
  // Throws std::system_error if the thread or the eventfd cannot be created.
  void start();
  // Idempotent; returns after the thread has exited (promptly, the wait is interruptible).
  // Must not be called from on_change.
  void stop();
  // True when inotify is in use (false: poll only, by choice or because it failed).
  bool using_inotify() const { return inotify_fd_ >= 0; }

 private:
  // What stat() says about the file; any difference means "changed".
  struct file_state {
    bool exists = false;
    unsigned long long dev = 0, ino = 0;
    long long size = 0, mtime_sec = 0, mtime_nsec = 0;
    bool operator==(const file_state&) const = default;
  };

  void run();
  void add_watch();
  bool drain_inotify();  // true if an event concerned our file
  file_state stat_file() const;

  std::string path_;
  std::string dir_;       // directory watched with inotify
  std::string basename_;  // events are filtered to this name
  std::function<void()> on_change_;
  std::chrono::milliseconds poll_interval_;
  std::chrono::milliseconds settle_;
  watch_mode mode_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;     // eventfd used to interrupt the wait on stop()
  int inotify_fd_ = -1;  // -1 when polling only
  int watch_ = -1;       // inotify watch descriptor of dir_, -1 until (re)established
  file_state last_;
  std::thread thread_;
};

}  // namespace ob::config
