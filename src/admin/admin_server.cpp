#include "admin/admin_server.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/ui_assets.hpp"
#include "auth/token_check.hpp"
#include "observe/log.hpp"
#include "proxy/json/model.hpp"

namespace ob::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

bool iends_with(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  s.remove_prefix(s.size() - suffix.size());
  return std::equal(s.begin(), s.end(), suffix.begin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
}

// A Host or an Origin's authority that names this machine: localhost (or a name under it),
// 127.0.0.0/8 or [::1], any port.
bool loopback_authority(std::string_view a) {
  if (a.starts_with('[')) return a.substr(0, a.find(']') + 1) == "[::1]";
  a = a.substr(0, a.rfind(':'));
  if (iends_with(a, "localhost") && (a.size() == 9 || a[a.size() - 10] == '.')) return true;
  boost::system::error_code ec;
  auto v4 = asio::ip::make_address_v4(std::string(a), ec);
  return !ec && v4.is_loopback();
}

// Without an admin token the API is open on loopback, so a web page the operator visits must
// not reach it: by DNS rebinding (its Host names the attacker's domain) or by a cross-site
// request (its Origin is another site's, or "null"). Clients that are not browsers send
// neither a foreign Host nor an Origin.
bool from_this_machine(const http::request<http::string_body>& req) {
  auto host = req[http::field::host];
  if (!host.empty() && !loopback_authority(std::string_view(host.data(), host.size())))
    return false;
  auto origin = std::string_view(req[http::field::origin].data(), req[http::field::origin].size());
  if (origin.empty()) return true;
  auto scheme = origin.find("://");
  if (scheme == std::string_view::npos) return false;  // "null", or not an origin
  origin.remove_prefix(scheme + 3);
  return loopback_authority(origin.substr(0, origin.find('/')));
}

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string error_body(std::string_view message, std::string_view type, std::string_view code) {
  std::string out = R"({"error":{"message":)";
  proxy::json::append_json_string(out, message);
  out += R"(,"type":)";
  proxy::json::append_json_string(out, type);
  out += R"(,"param":null,"code":)";
  proxy::json::append_json_string(out, code);
  out += "}}";
  return out;
}

}  // namespace

struct admin_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& ioc, const tcp::endpoint& ep, admin_handlers h)
      : ioc(ioc), acceptor(ioc), handlers(std::move(h)) {
    acceptor.open(ep.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(128);
  }

  asio::io_context& ioc;
  tcp::acceptor acceptor;
  admin_handlers handlers;
  std::set<std::shared_ptr<beast::tcp_stream>> live;
  bool stopped = false;

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    asio::steady_timer backoff(ioc);
    while (!stopped) {
      auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
      if (ec) {
        if (stopped || ec == asio::error::operation_aborted) break;
        observe::log(observe::level::warn, "admin: accept failed: " + ec.message());
        backoff.expires_after(100ms);
        co_await backoff.async_wait(use_tuple);
        continue;
      }
      auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
      live.insert(stream);
      asio::co_spawn(ioc, serve(stream), [self, stream](std::exception_ptr e) {
        self->live.erase(stream);
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          observe::log(observe::level::error,
                       std::string("admin: connection failed: ") + ex.what());
        }
      });
    }
  }

  bool authorized(const http::request<http::string_body>& req) const {
    if (!handlers.token_ok) return true;
    auto token = auth::bearer_token(req[http::field::authorization]);
    return handlers.token_ok(token ? *token : std::string_view());
  }

  // Open without a token (a loopback listener with no admin.token): then only to requests
  // addressed to this machine and not sent from another site's page.
  bool open_without_token() const { return handlers.token_ok && handlers.token_ok({}); }

  static http::response<http::string_body> answer(const http::request<http::string_body>& req,
                                                  http::status status, std::string body,
                                                  std::string_view content_type) {
    http::response<http::string_body> res{status, 11};
    res.set(http::field::content_type, content_type);
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    if (req.method() == http::verb::head) {
      res.content_length(body.size());
    } else {
      res.body() = std::move(body);
      res.prepare_payload();
    }
    return res;
  }

  // A dashboard file, with the headers that keep the page to itself.
  static http::response<http::string_body> ui_file(const http::request<http::string_body>& req,
                                                   const ui_asset& a) {
    auto res = answer(req, http::status::ok, std::string(a.body), a.content_type);
    res.set("Content-Security-Policy", ui_content_security_policy);
    res.set("X-Content-Type-Options", "nosniff");
    res.set(http::field::x_frame_options, "DENY");
    res.set("Referrer-Policy", "no-referrer");
    return res;
  }

  // The number of a query parameter (`name=123`), or `fallback`.
  static std::int64_t query_int(std::string_view query, std::string_view name,
                                std::int64_t fallback) {
    while (!query.empty()) {
      auto amp = query.find('&');
      auto part = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (part.size() > name.size() && part.starts_with(name) && part[name.size()] == '=') {
        auto v = part.substr(name.size() + 1);
        std::int64_t n = 0;
        auto r = std::from_chars(v.data(), v.data() + v.size(), n);
        if (r.ec == std::errc() && r.ptr == v.data() + v.size()) return n;
      }
    }
    return fallback;
  }

  static http::response<http::string_body> json(const http::request<http::string_body>& req,
                                                http::status status, std::string body) {
    return answer(req, status, std::move(body), "application/json");
  }

  static http::response<http::string_body> error(const http::request<http::string_body>& req,
                                                 http::status status, std::string_view message,
                                                 std::string_view type, std::string_view code) {
    return json(req, status, error_body(message, type, code));
  }

  asio::awaitable<http::response<http::string_body>> route(
      const http::request<http::string_body>& req, bool& events) {
    std::string_view target(req.target().data(), req.target().size());
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    auto method = req.method();
    bool get = method == http::verb::get || method == http::verb::head;
    auto only_get = [&](std::string_view p) -> std::optional<http::response<http::string_body>> {
      if (get) return std::nullopt;
      auto r = error(req, http::status::method_not_allowed, "Use GET for " + std::string(p) + ".",
                     "invalid_request_error", "method_not_allowed");
      r.set(http::field::allow, "GET, HEAD");
      return r;
    };

    if (path == "/healthz") {
      if (auto r = only_get(path)) co_return *r;
      co_return json(req, http::status::ok, R"({"status":"ok"})");
    }
    if (path == "/readyz") {
      if (auto r = only_get(path)) co_return *r;
      auto reason = handlers.not_ready ? handlers.not_ready() : std::nullopt;
      if (!reason) co_return json(req, http::status::ok, R"({"status":"ready"})");
      std::string body = R"({"status":"not_ready","reason":)";
      proxy::json::append_json_string(body, *reason);
      body += '}';
      co_return json(req, http::status::service_unavailable, std::move(body));
    }
    if (path == "/" || path == "/ui" || path.starts_with("/ui/")) {
      if (auto r = only_get(path)) co_return *r;
      if (const auto* a = find_ui_asset(path)) co_return ui_file(req, *a);
      co_return error(req, http::status::not_found,
                      "Unknown dashboard file " + std::string(path) + ".", "invalid_request_error",
                      "not_found");
    }
    if (path == "/admin/v1/session") {
      // Lets the page know, before any call that could fail, whether to ask for a token.
      if (auto r = only_get(path)) co_return *r;
      bool required = handlers.token_ok && !handlers.token_ok(std::string_view());
      std::string body = R"({"token_required":)";
      body += required ? "true" : "false";
      body += R"(,"authorized":)";
      body += authorized(req) ? "true" : "false";
      body += '}';
      co_return json(req, http::status::ok, std::move(body));
    }
    bool known = path == "/metrics" || path == "/admin/v1/targets" || path == "/admin/v1/config" ||
                 path == "/admin/v1/reload" || path == "/admin/v1/events" ||
                 path == "/admin/v1/timeseries" || path == "/admin/v1/reloads" ||
                 path == "/admin/v1/usage" || (path == "/admin/v1/keys" && handlers.keys);
    if (!known)
      co_return error(req, http::status::not_found,
                      "Unknown admin route " + std::string(path) + ".", "invalid_request_error",
                      "not_found");
    if (open_without_token() && !from_this_machine(req))
      co_return error(req, http::status::forbidden,
                      "Without an admin token the admin API answers only requests addressed to "
                      "this machine (Host localhost, 127.0.0.1 or [::1]) and not sent from another "
                      "site's page; set admin.token to reach it by another name.",
                      "invalid_request_error", "forbidden");
    if (!authorized(req)) {
      auto r = error(req, http::status::unauthorized,
                     "This admin route needs Authorization: Bearer <admin token>.",
                     "invalid_request_error", "invalid_api_key");
      r.set(http::field::www_authenticate, "Bearer");
      co_return r;
    }
    if (path == "/admin/v1/reload") {
      if (method != http::verb::post) {
        auto r = error(req, http::status::method_not_allowed, "Use POST for /admin/v1/reload.",
                       "invalid_request_error", "method_not_allowed");
        r.set(http::field::allow, "POST");
        co_return r;
      }
      auto out = handlers.reload();
      co_return json(req, out.applied ? http::status::ok : http::status::unprocessable_entity,
                     std::move(out.body));
    }
    if (auto r = only_get(path)) co_return *r;
    if (path == "/metrics") {
      std::string text = co_await handlers.metrics();
      co_return answer(req, http::status::ok, std::move(text),
                       "text/plain; version=0.0.4; charset=utf-8");
    }
    if (path == "/admin/v1/targets") {
      std::string body = co_await handlers.targets();
      co_return json(req, http::status::ok, std::move(body));
    }
    if (path == "/admin/v1/config") co_return json(req, http::status::ok, handlers.config());
    if (path == "/admin/v1/timeseries") {
      auto query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
      auto after = query_int(query, "after", 0);
      co_return json(req, http::status::ok,
                     handlers.timeseries ? handlers.timeseries(after) : std::string("{}"));
    }
    if (path == "/admin/v1/reloads")
      co_return json(req, http::status::ok,
                     handlers.reloads ? handlers.reloads() : std::string(R"({"reloads":[]})"));
    if (path == "/admin/v1/keys") {
      std::string body = co_await handlers.keys();
      co_return json(req, http::status::ok, std::move(body));
    }
    if (path == "/admin/v1/usage") {
      if (!handlers.usage)
        co_return error(req, http::status::not_found,
                        "The usage ledger is off: set \"state\": {\"path\": ...} in the config.",
                        "invalid_request_error", "not_found");
      auto [status, body] =
          handlers.usage(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
      co_return json(req, static_cast<http::status>(status), std::move(body));
    }
    events = true;  // /admin/v1/events: the caller turns the connection into a stream
    co_return http::response<http::string_body>{};
  }

  asio::awaitable<void> serve(std::shared_ptr<beast::tcp_stream> stream) {
    auto self = shared_from_this();
    beast::flat_buffer buf(64 * 1024);
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(64 * 1024);
      stream->expires_after(30s);
      auto [ec, n] = co_await http::async_read(*stream, buf, parser, use_tuple);
      if (ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::operation_aborted || ec == beast::error::timeout || stopped)
          co_return;
        http::request<http::string_body> dummy;
        dummy.keep_alive(false);
        auto res = error(dummy, http::status::bad_request, "The request is not valid HTTP/1.1.",
                         "invalid_request_error", "bad_request");
        res.keep_alive(false);
        stream->expires_after(5s);
        co_await http::async_write(*stream, res, use_tuple);
        co_return;
      }
      auto req = parser.release();
      bool events = false;
      auto res = co_await route(req, events);
      if (events) {
        std::string_view t(req.target().data(), req.target().size());
        auto q = t.find('?');
        auto tail = query_int(q == std::string_view::npos ? std::string_view() : t.substr(q + 1),
                              "tail", 0);
        co_await stream_events(*stream, req, req.method() == http::verb::head,
                               static_cast<std::size_t>(std::clamp<std::int64_t>(tail, 0, 1000)));
        co_return;
      }
      stream->expires_after(30s);
      auto [wec, wn] = co_await http::async_write(*stream, res, use_tuple);
      if (wec || !res.keep_alive() || stopped) co_return;
    }
  }

  // Server-Sent Events: records as they are published, polled from the ring every 200 ms.
  // A client that does not read is dropped when a write stalls for 5 s; it never holds up
  // anyone else, since the ring is bounded and readers only copy out of it. The rule that let
  // the stream open is checked again at each poll: a reload that sets, changes or removes
  // admin.token ends the streams opened under the old rule (removing it opens the listener
  // to loopback without a token, which a stream opened with the old token must not ride on).
  asio::awaitable<void> stream_events(beast::tcp_stream& stream,
                                      const http::request<http::string_body>& req, bool head_only,
                                      std::size_t tail) {
    std::string out =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n";
    stream.expires_after(5s);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), use_tuple);
    if (ec || head_only) co_return;
    std::uint64_t cursor = 0;
    asio::steady_timer tick(ioc);
    auto last_write = std::chrono::steady_clock::now();
    const bool opened_open = open_without_token();
    auto still_allowed = [&] {
      bool open = open_without_token();
      if (open != opened_open) return false;
      return open ? from_this_machine(req) : authorized(req);
    };
    // Start with what is kept, so a new viewer sees the recent past at once.
    while (!stopped && still_allowed()) {
      out.clear();
      auto page = handlers.events ? handlers.events(cursor, tail) : events_page{};
      if (page.missed > 0)
        out += "event: missed\ndata: {\"missed\":" + std::to_string(page.missed) + "}\n\n";
      for (const auto& r : page.records) {
        out += "data: ";
        out += r;
        out += "\n\n";
      }
      auto now = std::chrono::steady_clock::now();
      if (out.empty() && now - last_write > 15s) out = ": keep-alive\n\n";
      if (!out.empty()) {
        stream.expires_after(5s);
        auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(out), use_tuple);
        if (wec) co_return;
        last_write = now;
      }
      tick.expires_after(200ms);
      co_await tick.async_wait(use_tuple);
    }
  }
};

admin_server::admin_server(asio::io_context& ioc, const tcp::endpoint& ep, admin_handlers h)
    : impl_(std::make_shared<impl>(ioc, ep, std::move(h))) {}

admin_server::~admin_server() {
  stop();
}

void admin_server::start() {
  asio::co_spawn(impl_->ioc, impl_->accept_loop(), asio::detached);
}

void admin_server::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  for (const auto& s : impl_->live) s->socket().close(ec);
}

tcp::endpoint admin_server::local_endpoint() const {
  return impl_->acceptor.local_endpoint();
}

}  // namespace ob::admin
