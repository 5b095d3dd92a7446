// The redis::client's redirect machinery (client.hpp, "Redis Cluster"): MOVED/ASK replies
// parsed and their commands re-sent on the named node, TRYAGAIN retries after a wait, and the
// EVALSHA-to-EVAL rewrite of a command answered NOSCRIPT.
#include <algorithm>
#include <charconv>

#include <hiredis/hiredis.h>

#include "observe/log.hpp"
#include "state/redis/client.hpp"

// See client.cpp.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ob::state::redis {
namespace {

using clock = std::chrono::steady_clock;
constexpr std::string_view asking_command = "*1\r\n$6\r\nASKING\r\n";

}  // namespace

std::optional<redirect> parse_redirect(std::string_view text) {
  redirect r;
  if (text.starts_with("MOVED "))
    text.remove_prefix(6);
  else if (text.starts_with("ASK "))
    r.ask = true, text.remove_prefix(4);
  else
    return std::nullopt;
  const auto sp = text.find(' ');
  if (sp == std::string_view::npos || sp == 0) return std::nullopt;
  auto [p, ec] = std::from_chars(text.data(), text.data() + sp, r.slot);
  if (ec != std::errc{} || p != text.data() + sp || r.slot < 0 || r.slot > 16383)
    return std::nullopt;
  std::string_view addr = text.substr(sp + 1);
  while (!addr.empty() && (addr.back() == ' ' || addr.back() == '\r' || addr.back() == '\n'))
    addr.remove_suffix(1);
  const auto colon = addr.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = addr.substr(0, colon), port = addr.substr(colon + 1);
  unsigned n = 0;
  auto [q, ec2] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (ec2 != std::errc{} || q != port.data() + port.size() || n == 0 || n > 65535)
    return std::nullopt;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.find_first_of(" []") != std::string_view::npos) return std::nullopt;
  r.host = std::string(host);
  r.port = static_cast<std::uint16_t>(n);
  return r;
}

std::string evalsha_to_eval(std::string_view cmd, std::string_view body) {
  // "*<n>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n<the other arguments>"
  if (!cmd.starts_with('*')) return {};
  const auto eol = cmd.find("\r\n");
  if (eol == std::string_view::npos) return {};
  std::string_view head = cmd.substr(0, eol + 2), rest = cmd.substr(eol + 2);
  constexpr std::string_view name = "$7\r\nEVALSHA\r\n";
  if (!rest.starts_with(name)) return {};
  rest.remove_prefix(name.size());
  if (!rest.starts_with("$40\r\n") || rest.size() < 5 + 40 + 2 || rest.substr(45, 2) != "\r\n")
    return {};
  rest.remove_prefix(47);
  std::string out;
  out.reserve(head.size() + body.size() + rest.size() + 32);
  out += head;
  out += "$4\r\nEVAL\r\n$";
  out += std::to_string(body.size());
  out += "\r\n";
  out += body;
  out += "\r\n";
  out += rest;
  return out;
}

// At stop(): of the commands waiting to be sent again, only the fire-and-forget ones still go;
// a waiter hears of the stop, a late handler ends (the command did not run).
void client::keep_detached(std::vector<entry>& v) {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    entry& e = v[i];
    if (e.detached) {
      if (kept != i) v[kept] = std::move(e);
      ++kept;
      continue;
    }
    if (e.fn) {
      callback fn = e.fn;
      e.fn = nullptr;
      e.late = {};  // never engaged: its context is the waiter's
      fn(e.ctx, errc::stopped, nullptr);
    } else if (e.late.fn) {
      end_late(e, errc::stopped, nullptr);
    }
  }
  v.resize(kept);
}

// A command answered MOVED/ASK, on the connection to the node the reply named.
void client::resend(entry& old) {
  if (old.asking) {
    const std::size_t at = out_.size();
    out_ += asking_command;
    push_sent(at, nullptr, nullptr, true, nullptr);
  }
  out_ += old.bytes;
  entry& e = inflight_.push();
  e.fn = old.fn;
  e.ctx = old.ctx;
  e.deadline = old.fn ? old.deadline : std::min(clock::now() + opt_.timeout, deadline_cap_);
  e.detached = old.detached;
  e.evalsha = old.evalsha;
  e.redirects = old.redirects;
  e.tryagains = old.tryagains;
  e.asking = old.asking;  // sent after ASKING (a TRYAGAIN retry goes the same way)
  e.bytes.swap(old.bytes);
  e.late = old.late;
  old.late = {};
}

// Every command sent on the old connection has its reply: move to the node a MOVED/ASK named
// (run() reconnects at once; connect_once re-sends the redirected commands).
void client::maybe_switch_node() {
  if (!redirecting_ || !inflight_.empty()) return;
  drop_connection(errc::connection_lost);  // nothing in flight: fails nothing
  reconnect_now_ = true;
}

millis client::tryagain_delay(unsigned tryagains) {
  return std::min<millis>(tryagain_max_delay, tryagain_min_delay * (1u << std::min(tryagains, 4u)));
}

void client::arm_retry() {
  clock::time_point next = clock::time_point::max();
  for (const entry& e : retry_) next = std::min(next, e.retry_at);
  if (next == clock::time_point::max() || next >= retry_at_) return;
  retry_at_ = next;
  retry_timer_.expires_at(next);
  retry_timer_.async_wait([this, self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;  // re-armed earlier or stopped
    retry_at_ = clock::time_point::max();
    on_retry();
  });
}

// Commands answered TRYAGAIN whose wait is over go again, in order: on the connection if it is
// up, else with those waiting for the next one (a move to another node, or a reconnection).
void client::on_retry() {
  const auto now = clock::now();
  std::vector<entry> due;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < retry_.size(); ++i) {
    entry& e = retry_[i];
    if (e.retry_at <= now) {
      due.push_back(std::move(e));
    } else {
      if (kept != i) retry_[kept] = std::move(e);
      ++kept;
    }
  }
  retry_.resize(kept);
  bool sent = false;
  for (entry& e : due) {
    if (!e.fn && !e.detached && !e.late.fn) continue;  // nobody wants its reply any more
    if (ready_ && socket_.is_open()) {
      resend(e);
      sent = true;
    } else {
      redirected_.push_back(std::move(e));
    }
  }
  if (sent) start_write();
  arm_timer();
  arm_retry();
}

}  // namespace ob::state::redis
