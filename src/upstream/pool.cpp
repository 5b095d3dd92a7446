#include "upstream/pool.hpp"

#include <algorithm>

#include <boost/asio/buffer.hpp>

#include "observe/clock.hpp"

namespace ob::upstream {

std::chrono::milliseconds keep_alive_limit(std::string_view value) {
  using std::chrono::milliseconds;
  // Parameters "name=value" separated by commas (RFC 2068 section 19.7.1.1): "timeout=5, max=100".
  while (!value.empty()) {
    auto comma = value.find(',');
    auto param = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    while (!param.empty() && (param.front() == ' ' || param.front() == '\t'))
      param.remove_prefix(1);
    constexpr std::string_view name = "timeout=";
    if (param.size() <= name.size() ||
        !std::equal(name.begin(), name.end(), param.begin(),
                    [](char a, char b) { return a == b || (a >= 'a' && a == (b | 0x20)); }))
      continue;
    param.remove_prefix(name.size());
    if (param.size() >= 2 && param.front() == '"' && param.back() == '"')
      param = param.substr(1, param.size() - 2);
    while (!param.empty() && (param.back() == ' ' || param.back() == '\t')) param.remove_suffix(1);
    std::int64_t seconds = 0;
    if (param.empty()) return milliseconds::max();
    for (char ch : param) {
      if (ch < '0' || ch > '9') return milliseconds::max();
      if (seconds < 1'000'000) seconds = seconds * 10 + (ch - '0');  // past 11 days: the same
    }
    auto full = milliseconds(seconds * 1000);
    return full >= milliseconds(2000) ? full - milliseconds(1000) : full / 2;
  }
  return milliseconds::max();
}

void pool::expire(queue& q, std::chrono::steady_clock::time_point now) {
  // Oldest first: front holds the connections released longest ago. (A newer one that the
  // provider allows less time can expire first: lease() checks the one it takes.)
  while (!q.empty() && expired(*q.front(), now)) {
    q.front()->close();
    q.pop_front();
  }
}

// A one-byte read on the socket itself (under TLS too: an idle TLS connection that receives
// anything, even a session ticket or close_notify, is closed rather than decoded). A read, not
// async_wait: async_wait always costs an epoll_ctl (EPOLL_CTL_MOD). On a plain connection whose
// answer's last read drained the socket (connection::read_some: no byte and no FIN behind it,
// the kernel said), Asio queues the read without trying it: no syscall, and a later FIN, RST or
// stray byte raises the edge that completes it. Otherwise (a TLS connection, a FIN that came
// with the answer) Asio tries it first: one recv, which sees a FIN already there, or finds
// nothing (EAGAIN) and waits. What neither sees: a RST that came with the answer's last bytes
// on a drained plain connection. The request written on it when it is leased then fails at
// once (the socket holds the reset), before any byte goes out, and is sent again on a fresh
// connection (exchange::attempt: a reused connection's failed write is retryable). The
// handler touches the connection only if it still exists.
void pool::watch(connection& c) {
  c.lowest().async_read_some(asio::buffer(&c.probe, 1),
                             [alive = c.alive()](boost::system::error_code ec, std::size_t n) {
                               if (ec == asio::error::operation_aborted)
                                 return;  // leased, closed or destroyed
                               if (auto self = alive.lock()) on_readable(**self, ec || n == 0);
                             });
}

// Data, EOF or an error on an idle connection: close it and drop it from its queue. If it was
// leased after the read completed but before this handler ran, closing it makes the request
// on it fail (and be retried or answered with an error) instead of reading these bytes.
void pool::on_readable(connection& c, bool closed_by_peer) {
  c.close();
  auto* q = c.idle_in;
  if (!q) {  // leased meanwhile: a provider that had closed it never saw the request sent on it
    c.closed_by_watch = closed_by_peer;
    return;
  }
  c.idle_in = nullptr;
  auto it = std::find_if(q->begin(), q->end(), [&](const auto& p) { return p.get() == &c; });
  if (it != q->end()) q->erase(it);  // destroys c
}

std::unique_ptr<connection> pool::lease(origin o, std::chrono::milliseconds limit) {
  auto it = idle_.find(o);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto& q = it->second;
  auto now = observe::coarse_now();
  expire(q, now);
  while (!q.empty() && expired(*q.back(), now, limit)) {
    q.back()->close();
    q.pop_back();
  }
  if (q.empty()) return nullptr;
  auto c = std::move(q.back());
  q.pop_back();
  c->idle_in = nullptr;
  boost::system::error_code ec;
  c->lowest().cancel(ec);  // the idle watch completes with operation_aborted
  return c;
}

void pool::release(origin o, std::unique_ptr<connection> c) {
  if (c->has_unread_input() || c->keep_limit <= std::chrono::milliseconds::zero()) {
    c->close();
    return;
  }
  auto it = idle_.find(o);
  if (it == idle_.end()) it = idle_.emplace(std::string(o.name), queue{}).first;
  auto& q = it->second;
  auto now = observe::coarse_now();
  expire(q, now);
  if (q.size() >= opts_.max_idle_per_origin) {
    q.front()->close();
    q.pop_front();
  }
  c->idle_since = now;
  c->idle_in = &q;
  watch(*c);
  q.push_back(std::move(c));
}

void pool::sweep(std::chrono::steady_clock::time_point now) {
  for (auto& [origin, q] : idle_) expire(q, now);
}

void pool::retain(const std::function<bool(std::string_view)>& keep) {
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (keep(it->first)) {
      ++it;
      continue;
    }
    for (auto& c : it->second) c->close();
    it = idle_.erase(it);
  }
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
