// inotify watches the DIRECTORY, not the file: an editor or `mv new config.json` replaces the
// inode, and a watch on the old inode would go silent. The stat() poll catches what inotify
// cannot see (network/bind mounts, Kubernetes ConfigMap symlink swaps, no inotify at all).
#include "config/watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace ob::config {
namespace {

using clock = std::chrono::steady_clock;

// No IN_MODIFY: it fires on every write(2) to any file of the directory (a log file beside the
// config would wake this thread per request). A rewrite in place ends with IN_CLOSE_WRITE; a
// writer that never closes the file is still seen by the stat() poll.
constexpr std::uint32_t watch_mask =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_ONLYDIR;

// Kubernetes updates a mounted ConfigMap by renaming a new "..data" symlink into place; the
// file's own name sees no event, so this name counts as a change of our file too.
constexpr std::string_view configmap_link = "..data";

void split_path(const std::string& path, std::string* dir, std::string* base) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) {
    *dir = ".";
    *base = path;
  } else {
    *dir = slash == 0 ? "/" : path.substr(0, slash);
    *base = path.substr(slash + 1);
  }
}

int wait_ms(clock::time_point now, clock::time_point until) {
  if (until <= now) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
  return static_cast<int>(std::min<long long>(ms, 60'000));
}

}  // namespace

file_watcher::file_watcher(std::string path, std::function<void()> on_change,
                           std::chrono::milliseconds poll_interval,
                           std::chrono::milliseconds settle, watch_mode mode)
    : path_(std::move(path)),
      on_change_(std::move(on_change)),
      poll_interval_(std::max(poll_interval, std::chrono::milliseconds(1))),
      settle_(std::max(settle, std::chrono::milliseconds(0))),
      mode_(mode) {
  split_path(path_, &dir_, &basename_);
}

file_watcher::~file_watcher() {
  stop();
}

void file_watcher::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  if (mode_ == watch_mode::inotify_and_poll) {
    // Failure (ENOSYS, EMFILE, inotify limits) is not fatal: the stat() poll still works.
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ >= 0) add_watch();
  }
  // Taken here, not on the thread, so a change made right after start() returns is seen.
  last_ = stat_file();
  thread_ = std::thread([this] { run(); });
}

void file_watcher::stop() {
  stop_ = true;
  if (wake_fd_ >= 0) {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  for (int* fd : {&wake_fd_, &inotify_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  watch_ = -1;
}

void file_watcher::add_watch() {
  // May fail while the directory does not exist yet; run() retries on every poll tick.
  watch_ = ::inotify_add_watch(inotify_fd_, dir_.c_str(), watch_mask);
}

bool file_watcher::drain_inotify() {
  bool relevant = false;
  alignas(inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->mask & IN_IGNORED) {  // directory removed or unmounted: the watch is gone
        watch_ = -1;
        relevant = true;
      } else if (ev->mask & IN_Q_OVERFLOW) {  // events were lost: assume ours was among them
        relevant = true;
      } else if (ev->len > 0) {
        std::string_view name(ev->name);  // NUL-padded to ev->len
        relevant |= name == basename_ || name == configmap_link;
      }
    }
  }
  return relevant;
}

file_watcher::file_state file_watcher::stat_file() const {
  file_state s;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return s;  // follows symlinks on purpose
  s.exists = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_sec = st.st_mtim.tv_sec;
  s.mtime_nsec = st.st_mtim.tv_nsec;
  return s;
}

void file_watcher::run() {
  auto next_poll = clock::now() + poll_interval_;
  bool pending = false;                    // a change was seen and not yet reported
  clock::time_point fire_at, first_event;  // meaningful only while pending
  // A file that keeps changing (a slow writer) must still be reported eventually.
  const auto max_delay = std::max(settle_ * 10, std::chrono::milliseconds(1000));
  while (!stop_) {
    auto now = clock::now();
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    nfds_t nfds = inotify_fd_ >= 0 ? 2 : 1;
    int r = ::poll(fds, nfds, wait_ms(now, pending ? std::min(fire_at, next_poll) : next_poll));
    if (stop_) break;
    if (r < 0 && errno != EINTR)  // ENOMEM and the like: back off instead of spinning
      std::this_thread::sleep_for(std::min(poll_interval_, std::chrono::milliseconds(100)));
    now = clock::now();
    bool changed = r > 0 && nfds == 2 && (fds[1].revents & POLLIN) && drain_inotify();
    if (now >= next_poll) {
      next_poll = now + poll_interval_;
      if (inotify_fd_ >= 0 && watch_ < 0) add_watch();
      if (auto s = stat_file(); s != last_) {
        last_ = s;
        changed = true;
      }
    }
    if (changed) {  // debounce: every new event pushes the call back, up to max_delay
      if (!pending) first_event = now;
      pending = true;
      fire_at = std::min(now + settle_, first_event + max_delay);
    }
    if (pending && now >= fire_at) {
      pending = false;
      last_ = stat_file();  // the state being reported, so the poll does not report it again
      try {
        on_change_();
      } catch (...) {
        // The callback owns its error reporting; an escaping exception must not end watching.
      }
    }
  }
}

}  // namespace ob::config
