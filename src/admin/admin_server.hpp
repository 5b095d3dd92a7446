// The admin listener: a small HTTP/1.1 server, separate from the proxy listener, for
// operators and their tools (Prometheus, load balancers, the dashboard). It runs on the main
// thread's event loop, off the proxy's hot path; what it shows comes from `admin_handlers`,
// so this file knows HTTP and access rules, not the gateway's internals.
//
// Routes (GET unless said; HEAD answers like GET without a body):
//   /healthz                      200 while the process runs                (never needs a token)
//   /readyz                       200 ready / 503 with the reason           (never needs a token)
//   /metrics                      Prometheus text format 0.0.4
//   /admin/v1/targets             per-target state, JSON
//   /admin/v1/config              the effective config, secrets redacted, JSON
//   POST /admin/v1/reload         reload the config file; 200 applied / 422 refused + errors
//   /admin/v1/events[?tail=N]     Server-Sent Events: live access, health and reload records;
//                                 with tail=N at most the newest N access records per 200 ms
//   /admin/v1/timeseries?after=T  the last 15 minutes of traffic, one point per second, JSON
//   /admin/v1/reloads             the latest reloads with every diagnostic, JSON
//   /admin/v1/session             whether a token is needed and whether the one sent opens the
//                                 API: {"token_required":..,"authorized":..} (never needs one)
//   /admin/v1/usage?by=key,group,target&period=day|week|month
//                                 usage sums from the ledger ("state" config), JSON
//   / and /ui/...                 the dashboard's page and files (never need a token: they hold
//                                 no data; the page asks for it with the token)
// With a token configured, every other route needs `Authorization: Bearer <token>`; a wrong or
// missing one gets 401.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace ob::admin {

struct reload_answer {
  bool applied = false;
  std::string body;  // JSON: {"applied":..,"diagnostics":[...]}
};

// Records published after `cursor` (a sequence number), as JSON texts; `cursor` is moved past
// them. A reader that fell too far behind gets what is still kept (`missed` says how many
// records it lost).
struct events_page {
  std::vector<std::string> records;
  std::uint64_t missed = 0;
};

struct admin_handlers {
  std::function<boost::asio::awaitable<std::string>()> metrics;
  std::function<boost::asio::awaitable<std::string>()> targets;
  std::function<std::string()> config;
  std::function<boost::asio::awaitable<std::string>()> keys;  // GET /admin/v1/keys
  std::function<reload_answer()> reload;
  std::function<std::optional<std::string>()> not_ready;  // the reason, or nullopt when ready
  // `tail` > 0: of the access records, at most the newest `tail` per read (a live view);
  // 0: every record.
  std::function<events_page(std::uint64_t& cursor, std::size_t tail)> events;
  // Points with t > after (unix seconds); see observe::metrics::timeseries::json.
  std::function<std::string(std::int64_t after)> timeseries;
  std::function<std::string()> reloads;
  // /admin/v1/usage: the query string (after '?') -> status and JSON body. Absent: the ledger
  // is off (404).
  std::function<std::pair<int, std::string>(std::string_view query)> usage;
  // Whether `token` (from a Bearer header) opens the admin API; absent = no token configured.
  std::function<bool(std::string_view token)> token_ok;
};

class admin_server {
 public:
  // Binds and listens now (throws boost::system::system_error when the address is taken).
  admin_server(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& ep,
               admin_handlers handlers);
  ~admin_server();
  void start();
  // Closes the listener and every admin connection (event streams included).
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace ob::admin
