#include "server/health_checker.hpp"

#include <boost/asio/co_spawn.hpp>

#include "dialect/path.hpp"
#include "observe/log.hpp"
#include "proxy/parsers.hpp"

namespace ob::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using clock_type = std::chrono::steady_clock;
using upstream::use_tuple;

namespace {

constexpr auto tick = std::chrono::milliseconds(250);

// Shared by a check and its timeout handler, so whichever runs last is safe.
struct check_guard {
  upstream::connection* conn = nullptr;
  bool done = false;
  bool timed_out = false;
};

}  // namespace

std::optional<std::chrono::milliseconds> check_retry_after(
    std::string_view retry_after_ms, std::string_view retry_after,
    std::chrono::system_clock::time_point now) {
  if (!retry_after_ms.empty())
    if (auto v = routing::parse_retry_after_ms(retry_after_ms)) return v;
  if (!retry_after.empty()) return routing::parse_retry_after(retry_after, now);
  return std::nullopt;
}

routing::outcome check_outcome(int status) {
  if (status >= 200 && status < 300) return routing::outcome::success;
  if (status == 429) return routing::outcome::rate_limited;
  if (status == 503) return routing::outcome::overloaded;
  return routing::outcome::failure;
}

health_checker::health_checker(asio::io_context& ioc, proxy::snapshot_store& store,
                               std::shared_ptr<asio::ssl::context> tls)
    : ioc_(ioc), store_(store), connector_(ioc.get_executor(), std::move(tls)), tick_(ioc) {}

namespace {

void log_exception(const std::string& what, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    observe::log(observe::level::error, what + " failed: " + ex.what());
  } catch (...) {
    observe::log(observe::level::error, what + " failed");
  }
}

}  // namespace

void health_checker::start() {
  asio::co_spawn(ioc_, loop(), [](std::exception_ptr e) {
    if (e) log_exception("health check loop", e);
  });
}

void health_checker::stop() {
  stopped_ = true;
  tick_.cancel();
}

asio::awaitable<void> health_checker::loop() {
  while (!stopped_) {
    auto snap = store_.load();
    auto now = clock_type::now();
    ++pass_;
    for (const auto* g : snap->routes.groups()) {
      for (const auto& t : g->targets) {
        const auto& hc = t.provider->health_check;
        if (!hc.enabled) continue;
        auto& st = states_[t.id];
        st.seen = pass_;
        if (st.running || (st.last && now < *st.last + hc.interval)) continue;
        st.running = true;
        st.last = now;
        // Whatever a check throws, it ends: logged, and the target is checked again later.
        asio::co_spawn(ioc_, check(snap, &t), [this, id = t.id](std::exception_ptr e) {
          if (e) log_exception("health check of " + id, e);
          if (auto it = states_.find(id); it != states_.end()) it->second.running = false;
        });
      }
    }
    // Targets a reload removed (or whose check was turned off) are forgotten.
    std::erase_if(states_,
                  [&](const auto& kv) { return kv.second.seen != pass_ && !kv.second.running; });
    tick_.expires_after(tick);
    co_await tick_.async_wait(use_tuple);
  }
}

asio::awaitable<void> health_checker::check(std::shared_ptr<const proxy::snapshot> snap,
                                            const routing::target* t) {
  const auto& p = *t->provider;
  const auto& hc = p.health_check;
  int status = 0;
  std::optional<std::chrono::milliseconds> retry_after;
  std::string why;
  std::string target = hc.path;  // the mapped request target, for the log

  auto res = co_await connector_.connect(p.url, hc.timeout);
  if (res.conn) {
    auto& conn = *res.conn;
    auto guard = std::make_shared<check_guard>();
    guard->conn = &conn;
    asio::steady_timer timer(ioc_);
    timer.expires_after(hc.timeout);
    timer.async_wait([guard](boost::system::error_code ec) {
      if (ec || guard->done) return;
      guard->timed_out = true;
      guard->conn->close();
    });
    target = dialect::map_check_path(p, t->route, hc.path);
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + p.url.host_header + "\r\n" +
                      t->fixed_headers + "Accept: application/json\r\nConnection: close\r\n\r\n";
    auto [wec, wn] = co_await conn.write(asio::buffer(req));
    proxy::http::header_list headers;
    proxy::response_parser parser(
        headers, [](void*, std::string_view) {}, nullptr);
    parser.header_limit(64 * 1024);
    while (!wec && !parser.is_header_done()) {
      auto [rec, n] = co_await conn.read_some(conn.buffer.prepare(16 * 1024), upstream::use_tuple,
                                              upstream::connection::may_drain::no);
      conn.buffer.commit(n);
      if (rec) {
        why = guard->timed_out ? "timed out" : rec.message();
        break;
      }
      beast::error_code pec;
      auto used = parser.put(conn.buffer.data(), pec);
      conn.buffer.consume(used);
      if (pec && pec != beast::http::error::need_more) {
        why = "malformed answer";
        break;
      }
    }
    if (wec) why = wec.message();
    if (parser.is_header_done()) {
      status = parser.status();
      retry_after = check_retry_after(headers.get(proxy::http::header_id::retry_after_ms),
                                      headers.get(proxy::http::header_id::retry_after),
                                      std::chrono::system_clock::now());
    }
    guard->done = true;
    timer.cancel();
    conn.close();
  } else {
    why = res.detail;
  }

  auto outcome = status ? check_outcome(status) : routing::outcome::failure;
  // A success brings an ejected target back at once (docs/CONFIGURATION.md, health_check).
  t->health->report_check(outcome, clock_type::now(), retry_after);
  if (outcome != routing::outcome::success)
    observe::log(observe::level::warn,
                 "health check of " + p.name + " at " + (p.url.tls ? "https://" : "http://") +
                     p.url.host_header + target +
                     " failed: " + (status ? "status " + std::to_string(status) : why));
}

}  // namespace ob::server
