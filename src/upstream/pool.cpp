#include "upstream/pool.hpp"

#include "observe/clock.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace ob::upstream {

void pool::expire(std::deque<std::unique_ptr<connection>>& q,
                  std::chrono::steady_clock::time_point now) {
  // Oldest first: front holds the connections released longest ago.
  while (!q.empty() && now - q.front()->idle_since > opts_.max_idle) {
    q.front()->close();
    q.pop_front();
  }
}

namespace {

// A connection idle for a while may have been closed by the provider's keep-alive timer
// (Node's default is 5 s). One non-blocking peek tells: 0 = closed, data = a protocol error,
// EAGAIN = alive. Recently used connections skip it, so a busy gateway pays nothing.
bool still_open(connection& c) {
  char b;
  auto n = ::recv(c.lowest().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<connection> pool::lease(std::string_view origin) {
  auto it = idle_.find(origin);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto& q = it->second;
  auto now = observe::coarse_now();
  expire(q, now);
  while (!q.empty()) {
    auto c = std::move(q.back());
    q.pop_back();
    if (now - c->idle_since < opts_.check_after || still_open(*c)) return c;
    c->close();
  }
  return nullptr;
}

void pool::release(std::string_view origin, std::unique_ptr<connection> c) {
  auto it = idle_.find(origin);
  if (it == idle_.end())
    it = idle_.emplace(std::string(origin), std::deque<std::unique_ptr<connection>>{}).first;
  auto& q = it->second;
  auto now = observe::coarse_now();
  expire(q, now);
  if (q.size() >= opts_.max_idle_per_origin) {
    q.front()->close();
    q.pop_front();
  }
  c->idle_since = now;
  q.push_back(std::move(c));
}

std::size_t pool::idle_count() const {
  std::size_t n = 0;
  for (auto& [k, q] : idle_) n += q.size();
  return n;
}

void pool::clear() {
  for (auto& [k, q] : idle_)
    for (auto& c : q) c->close();
  idle_.clear();
}

}  // namespace ob::upstream
