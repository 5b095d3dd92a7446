// The admin listener: routes, token rule, HEAD, methods, reload answers, the event stream.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "admin/admin_server.hpp"

namespace ob::admin {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct fixture : ::testing::Test {
  asio::io_context ioc;
  std::unique_ptr<admin_server> server;
  std::thread thread;
  std::uint16_t port = 0;
  int reloads = 0;
  std::vector<std::string> published;  // the event ring as the handler sees it
  bool ready = true;
  std::atomic<std::int64_t> asked_after = -1;
  std::atomic<std::size_t> asked_tail = 99;

  std::string token = "adm1n";    // the admin token (read and changed on the server's thread)
  bool open_on_loopback = false;  // no token configured: open to loopback, as the gateway's

  void start(bool with_token) {
    admin_handlers h;
    h.metrics = []() -> asio::awaitable<std::string> { co_return "# metrics\nx 1\n"; };
    h.targets = []() -> asio::awaitable<std::string> { co_return R"({"targets":[]})"; };
    h.config = [] { return std::string(R"({"providers":[]})"); };
    h.reload = [this] {
      ++reloads;
      return reload_answer{false, R"({"applied":false,"diagnostics":["x: bad"]})"};
    };
    h.not_ready = [this]() -> std::optional<std::string> {
      if (ready) return std::nullopt;
      return std::string("shutting down");
    };
    h.events = [this](std::uint64_t& cursor, std::size_t tail) {
      asked_tail = tail;
      events_page p;
      for (; cursor < published.size(); ++cursor) p.records.push_back(published[cursor]);
      return p;
    };
    h.timeseries = [this](std::int64_t after) {
      asked_after = after;
      return std::string(R"({"points":{}})");
    };
    h.reloads = [] { return std::string(R"({"reloads":[]})"); };
    // As the gateway's: an empty token means none is configured, open (on loopback).
    if (with_token) h.token_ok = [this](std::string_view t) { return token.empty() || t == token; };
    if (open_on_loopback) h.token_ok = [](std::string_view) { return true; };
    server = std::make_unique<admin_server>(
        ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), std::move(h));
    port = server->local_endpoint().port();
    server->start();
    thread = std::thread([this] { ioc.run(); });
  }

  void TearDown() override {
    if (server) asio::post(ioc, [this] { server->stop(); });
    if (thread.joinable()) thread.join();
  }

  http::response<http::string_body> call(http::verb method, std::string target,
                                         std::string bearer = "", std::string host = "127.0.0.1",
                                         std::string origin = "") {
    asio::io_context c;
    tcp::socket s(c);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, host);
    if (!origin.empty()) req.set(http::field::origin, origin);
    if (!bearer.empty()) req.set(http::field::authorization, "Bearer " + bearer);
    req.prepare_payload();
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> p;
    if (method == http::verb::head) p.skip(true);
    http::read(s, buf, p);
    return p.release();
  }
};

TEST_F(fixture, HealthAndReadinessNeedNoToken) {
  start(true);
  auto h = call(http::verb::get, "/healthz");
  EXPECT_EQ(h.result_int(), 200);
  EXPECT_EQ(h.body(), R"({"status":"ok"})");
  EXPECT_EQ(call(http::verb::get, "/readyz").result_int(), 200);
  ready = false;
  auto r = call(http::verb::get, "/readyz");
  EXPECT_EQ(r.result_int(), 503);
  EXPECT_EQ(r.body(), R"({"status":"not_ready","reason":"shutting down"})");
}

TEST_F(fixture, TokenGuardsEverythingElse) {
  start(true);
  for (auto path : {"/metrics", "/admin/v1/targets", "/admin/v1/config", "/admin/v1/events"}) {
    auto none = call(http::verb::get, path);
    EXPECT_EQ(none.result_int(), 401) << path;
    EXPECT_NE(none.body().find(R"("code":"invalid_api_key")"), std::string::npos);
    EXPECT_EQ(call(http::verb::get, path, "wrong").result_int(), 401) << path;
  }
  auto m = call(http::verb::get, "/metrics", "adm1n");
  EXPECT_EQ(m.result_int(), 200);
  EXPECT_EQ(m[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(m.body(), "# metrics\nx 1\n");
  EXPECT_EQ(call(http::verb::post, "/admin/v1/reload").result_int(), 401);
  EXPECT_EQ(reloads, 0);
}

TEST_F(fixture, WithoutTokenConfiguredEverythingIsOpen) {
  start(false);
  EXPECT_EQ(call(http::verb::get, "/metrics").result_int(), 200);
  EXPECT_EQ(call(http::verb::get, "/admin/v1/targets").body(), R"({"targets":[]})");
  EXPECT_EQ(call(http::verb::get, "/admin/v1/config").body(), R"({"providers":[]})");
}

// Open on loopback (no token): a browser page must not reach it by DNS rebinding (a Host that
// names another domain) or by a cross-site request (another site's Origin, or "null").
TEST_F(fixture, WithoutTokenOnlyRequestsAddressedToThisMachineFromNoOtherSite) {
  open_on_loopback = true;
  start(false);
  for (auto host : {"127.0.0.1", "127.0.0.1:9901", "localhost", "LocalHost:1", "app.localhost",
                    "[::1]:9901", "127.9.9.9", ""})
    EXPECT_EQ(call(http::verb::get, "/admin/v1/config", "", host).result_int(), 200) << host;
  for (auto host : {"attacker.example:9901", "evillocalhost", "localhost.attacker.example",
                    "10.0.0.1", "[::2]", "[::1"}) {
    auto r = call(http::verb::get, "/admin/v1/config", "", host);
    EXPECT_EQ(r.result_int(), 403) << host;
    EXPECT_NE(r.body().find(R"("code":"forbidden")"), std::string::npos) << r.body();
  }
  for (auto origin : {"https://attacker.example", "null", "http://127.0.0.1.attacker.example"})
    EXPECT_EQ(call(http::verb::post, "/admin/v1/reload", "", "127.0.0.1:9901", origin).result_int(),
              403)
        << origin;
  EXPECT_EQ(reloads, 0);
  EXPECT_EQ(
      call(http::verb::post, "/admin/v1/reload", "", "127.0.0.1:9901", "http://127.0.0.1:9901")
          .result_int(),
      422);  // the dashboard's own page: reached (the fixture's reload is refused)
  EXPECT_EQ(reloads, 1);
  // Health checks keep answering whatever the Host (a Kubernetes probe names the pod's IP).
  EXPECT_EQ(call(http::verb::get, "/healthz", "", "10.0.0.1").result_int(), 200);
}

TEST_F(fixture, WithATokenAnyHostWithTheToken) {
  start(true);
  EXPECT_EQ(call(http::verb::get, "/admin/v1/config", "adm1n", "admin.example").result_int(), 200);
  EXPECT_EQ(call(http::verb::get, "/admin/v1/config", "", "127.0.0.1").result_int(), 401);
}

TEST_F(fixture, MethodsHeadAndUnknownRoutes) {
  start(false);
  auto head = call(http::verb::head, "/healthz");
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(head.body(), "");
  EXPECT_EQ(head[http::field::content_length], "15");
  auto post = call(http::verb::post, "/metrics");
  EXPECT_EQ(post.result_int(), 405);
  EXPECT_EQ(post[http::field::allow], "GET, HEAD");
  auto get_reload = call(http::verb::get, "/admin/v1/reload");
  EXPECT_EQ(get_reload.result_int(), 405);
  EXPECT_EQ(get_reload[http::field::allow], "POST");
  auto nf = call(http::verb::get, "/v1/chat/completions");
  EXPECT_EQ(nf.result_int(), 404);  // nothing of the proxy here
  EXPECT_NE(nf.body().find(R"("code":"not_found")"), std::string::npos);
}

TEST_F(fixture, RefusedReloadAnswers422WithItsErrors) {
  start(false);
  auto r = call(http::verb::post, "/admin/v1/reload");
  EXPECT_EQ(r.result_int(), 422);
  EXPECT_EQ(r.body(), R"({"applied":false,"diagnostics":["x: bad"]})");
  EXPECT_EQ(reloads, 1);
}

TEST_F(fixture, EventStreamSendsKeptAndNewRecords) {
  published = {R"({"type":"reload","n":1})"};
  start(true);
  asio::io_context c;
  tcp::socket s(c);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::string req =
      "GET /admin/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer adm1n\r\n\r\n";
  asio::write(s, asio::buffer(req));
  asio::post(ioc, [this] { published.push_back(R"({"type":"access","n":2})"); });
  std::string got;
  char buf[4096];
  for (int i = 0; i < 100 && got.find(R"("n":2)") == std::string::npos; ++i) {
    boost::system::error_code ec;
    auto n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    got.append(buf, n);
  }
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")) << got;
  auto first = got.find("data: {\"type\":\"reload\",\"n\":1}\n\n");
  auto second = got.find("data: {\"type\":\"access\",\"n\":2}\n\n");
  EXPECT_NE(first, std::string::npos) << got;
  EXPECT_NE(second, std::string::npos) << got;
  EXPECT_LT(first, second);
  EXPECT_EQ(asked_tail, 0u);
}

// Opens an event stream with `headers`, then has the server's token become `next`: true when
// the server ends the stream (read to its end for at most 3 s; a stream that goes on fails).
bool stream_ends_when_token_becomes(fixture& f, std::string_view headers, std::string next) {
  asio::io_context c;
  tcp::socket s(c);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.port));
  std::string req = "GET /admin/v1/events HTTP/1.1\r\n" + std::string(headers) + "\r\n";
  asio::write(s, asio::buffer(req));
  char buf[4096];
  boost::system::error_code ec;
  auto n = s.read_some(asio::buffer(buf), ec);
  if (ec || !std::string_view(buf, n).starts_with("HTTP/1.1 200 OK")) {
    ADD_FAILURE() << "not opened: " << std::string(buf, ec ? 0 : n);
    return false;
  }
  asio::post(f.ioc, [&f, next] { f.token = next; });
  std::function<void()> read_on = [&] {
    s.async_read_some(asio::buffer(buf), [&](boost::system::error_code e, std::size_t) {
      ec = e;
      if (!e) read_on();
    });
  };
  read_on();
  c.run_for(std::chrono::seconds(3));
  return ec == asio::error::eof;
}

// A token rotated by a reload ends the event streams opened with the old one.
TEST_F(fixture, EventStreamEndsWhenItsTokenIsRotated) {
  start(true);
  EXPECT_TRUE(
      stream_ends_when_token_becomes(*this, "Host: x\r\nAuthorization: Bearer adm1n\r\n", "n3w"));
}

// A token removed by a reload opens the listener to loopback without one; a stream opened with
// the old token ends all the same (its Host would not be let in without a token).
TEST_F(fixture, EventStreamEndsWhenItsTokenIsRemoved) {
  start(true);
  EXPECT_TRUE(
      stream_ends_when_token_becomes(*this, "Host: x\r\nAuthorization: Bearer adm1n\r\n", ""));
}

// A stream opened without a token (none configured) ends when a reload sets one.
TEST_F(fixture, EventStreamOpenedWithoutATokenEndsWhenOneIsSet) {
  token.clear();
  start(true);
  EXPECT_TRUE(stream_ends_when_token_becomes(*this, "Host: localhost\r\n", "adm1n"));
}

// The same token after a reload: the stream goes on.
TEST_F(fixture, EventStreamGoesOnWhenItsTokenStays) {
  start(true);
  EXPECT_FALSE(
      stream_ends_when_token_becomes(*this, "Host: x\r\nAuthorization: Bearer adm1n\r\n", "adm1n"));
}

TEST_F(fixture, EventStreamPassesTheTailLimit) {
  start(false);
  asio::io_context c;
  tcp::socket s(c);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::string req = "GET /admin/v1/events?tail=20 HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(s, asio::buffer(req));
  char buf[512];
  s.read_some(asio::buffer(buf));
  for (int i = 0; i < 100 && asked_tail != 20u; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(asked_tail, 20u);
}

// A viewer that stops reading is dropped once a write stalls for 5 s; meanwhile the listener
// answers everyone else at once (the stream's writes never block the event loop).
TEST_F(fixture, AStalledEventReaderIsDroppedAndHoldsUpNoOne) {
  for (int i = 0; i < 200; ++i) published.push_back(std::string(64 * 1024, 'x'));  // 12.8 MB
  start(false);
  asio::io_context c;
  tcp::socket s(c);
  s.open(tcp::v4());
  s.set_option(asio::socket_base::receive_buffer_size(4096));
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::string req = "GET /admin/v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(s, asio::buffer(req));
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // A loop blocked on the stalled write would answer only after dropping the reader (5 s); half
  // of that is the bound, not a speed target (a sanitizer build on a busy machine took 0.7 s).
  for (int i = 0; i < 5; ++i) {
    auto a = std::chrono::steady_clock::now();
    EXPECT_EQ(call(http::verb::get, "/healthz").result_int(), 200);
    EXPECT_LT(std::chrono::steady_clock::now() - a, std::chrono::milliseconds(2500));
  }
  // Now read: what was buffered, then the end of the stream, well before all 12.8 MB.
  std::this_thread::sleep_for(std::chrono::milliseconds(5500));
  std::size_t got = 0;
  boost::system::error_code ec;
  char buf[65536];
  while (!ec) got += s.read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_LT(got, 200u * 64 * 1024);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

TEST_F(fixture, DashboardFilesNeedNoTokenAndCarryAStrictPolicy) {
  start(true);
  for (auto path : {"/", "/ui", "/ui/", "/ui/index.html"}) {
    auto r = call(http::verb::get, path);
    EXPECT_EQ(r.result_int(), 200) << path;
    EXPECT_EQ(r[http::field::content_type], "text/html; charset=utf-8") << path;
    auto csp = std::string(r["Content-Security-Policy"]);
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(r["X-Content-Type-Options"], "nosniff");
    EXPECT_NE(r.body().find("<!doctype html>"), std::string::npos);
  }
  auto js = call(http::verb::get, "/ui/app.js");
  EXPECT_EQ(js.result_int(), 200);
  EXPECT_EQ(js[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(call(http::verb::get, "/ui/style.css")[http::field::content_type],
            "text/css; charset=utf-8");
  EXPECT_EQ(call(http::verb::get, "/ui/nope.js").result_int(), 404);
  EXPECT_EQ(call(http::verb::get, "/ui/../admin/v1/config").result_int(), 404);
  EXPECT_EQ(call(http::verb::post, "/ui/").result_int(), 405);
}

TEST_F(fixture, SessionTellsWhetherATokenIsNeededWithoutFailing) {
  start(true);
  auto none = call(http::verb::get, "/admin/v1/session");
  EXPECT_EQ(none.result_int(), 200);
  EXPECT_EQ(none.body(), R"({"token_required":true,"authorized":false})");
  EXPECT_EQ(call(http::verb::get, "/admin/v1/session", "wrong").body(),
            R"({"token_required":true,"authorized":false})");
  EXPECT_EQ(call(http::verb::get, "/admin/v1/session", "adm1n").body(),
            R"({"token_required":true,"authorized":true})");
}

TEST_F(fixture, SessionWithoutTokenConfigured) {
  start(false);
  EXPECT_EQ(call(http::verb::get, "/admin/v1/session").body(),
            R"({"token_required":false,"authorized":true})");
}

TEST_F(fixture, TimeseriesAndReloadsNeedTheTokenAndReadAfter) {
  start(true);
  EXPECT_EQ(call(http::verb::get, "/admin/v1/timeseries").result_int(), 401);
  EXPECT_EQ(call(http::verb::get, "/admin/v1/reloads").result_int(), 401);
  EXPECT_EQ(asked_after, -1);
  auto r = call(http::verb::get, "/admin/v1/timeseries?x=1&after=1790000000", "adm1n");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(asked_after, 1790000000);
  call(http::verb::get, "/admin/v1/timeseries?after=12abc", "adm1n");
  EXPECT_EQ(asked_after, 0);  // not a number: everything kept
  EXPECT_EQ(call(http::verb::get, "/admin/v1/reloads", "adm1n").body(), R"({"reloads":[]})");
}

TEST_F(fixture, TakenAddressThrows) {
  start(false);
  asio::io_context other;
  EXPECT_THROW(admin_server(other, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), {}),
               boost::system::system_error);
}

}  // namespace
}  // namespace ob::admin
