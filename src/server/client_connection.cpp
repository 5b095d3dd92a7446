#include "server/client_connection.hpp"

#include <algorithm>
#include <map>

#include <openssl/crypto.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>

#include "auth/token_check.hpp"
#include "dialect/client.hpp"
#include "net/recv_buffer.hpp"
#include "observe/clock.hpp"
#include "proxy/http/endpoints.hpp"
#include "proxy/http/errors.hpp"
#include "proxy/http/request_check.hpp"
#include "proxy/json/usage.hpp"

namespace ob::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using proxy::http::error_kind;
using upstream::use_tuple;
using clock_type = std::chrono::steady_clock;

namespace {

// Holds a request head (and a small body's start); bodies are read straight into their own
// buffer, so 4 KiB is enough and keeps an idle stream's connection small.
constexpr std::size_t client_read_chunk = 4 * 1024;
// A read buffer grown past this by a very large head is given back after its request.
constexpr std::size_t max_kept_read_buffer = 64 * 1024;

std::string_view path_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

std::string_view model_error(proxy::json::find_status s) {
  using proxy::json::find_status;
  switch (s) {
    case find_status::invalid_json:
      return "The request body is not valid JSON.";
    case find_status::not_object:
      return "The request body must be a JSON object.";
    case find_status::missing:
      return "The request body has no \"model\".";
    case find_status::not_string:
      return "\"model\" must be a string.";
    case find_status::duplicate:
      return "The request body has more than one \"model\" key.";
    case find_status::ok:
      break;
  }
  return "";
}

}  // namespace

namespace {
template <class T>
void remove_from(std::vector<T*>& v, T* c) {
  auto it = std::find(v.begin(), v.end(), c);
  if (it != v.end()) {
    *it = v.back();
    v.pop_back();
  }
}
}  // namespace

void connection_registry::remove(client_connection* c) {
  remove_from(live_, c);
  recount();
}

void connection_registry::remove(multiplexed_connection* c) {
  remove_from(multiplexed_, c);
  recount();
}

void connection_registry::close_idle() {
  auto copy = live_;
  for (auto* c : copy) c->close_if_idle();
  auto multiplexed = multiplexed_;
  for (auto* c : multiplexed) c->drain();
}

void connection_registry::close_all() {
  auto copy = live_;
  for (auto* c : copy) c->close();
  auto multiplexed = multiplexed_;
  for (auto* c : multiplexed) c->close();
}

void connection_registry::cut_all() {
  auto copy = live_;
  for (auto* c : copy) c->cut();
}

client_connection::client_connection(proxy::worker_context& ctx, proxy::client_stream stream,
                                     connection_registry& registry)
    : ctx_(ctx),
      stream_(std::move(stream)),
      registry_(registry),
      deadline_(stream_.get_executor()),
      exchange_(ctx, stream_, deadline_) {
  exchange_.set_client_request(&req_);
  exchange_.set_waker(&registry_.waker());
  admission_.use(ctx_.state);
  registry_.add(this);
  // An HTTP/2 stream is not a connection: its h2_connection counts once for all its streams.
  if (!stream_.pipe()) ++ctx_.metrics.client_connections;
  boost::system::error_code ec;
  auto peer = stream_.lowest().remote_endpoint(ec);
  if (!ec) {
    auto addr = peer.address();
    peer_ = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
    peer_ += ':';
    peer_ += std::to_string(peer.port());
  }
}

client_connection::~client_connection() {
  if (!stream_.pipe()) --ctx_.metrics.client_connections;
  registry_.remove(this);
}

void client_connection::record_metrics(const observe::request_record& rec) {
  observe::metrics::request_sample s;
  s.group = rec.labels.group;
  s.target = rec.labels.target;
  s.provider = rec.labels.provider;
  s.response_model = rec.labels.model;
  s.client = rec.labels.client;
  s.status = rec.status;
  s.stream = rec.stream;
  s.duration_s = rec.duration_ms / 1000;
  if (rec.first_write_ms >= 0) s.ttft_s = rec.first_write_ms / 1000;
  if (rec.upstream_ms >= 0) s.upstream_s = rec.upstream_ms / 1000;
  s.input_tokens = rec.prompt_tokens;
  s.output_tokens = rec.completion_tokens;
  if (s.group != 0) {
    s.operation = observe::metrics::operation_for_path(rec.path);
    if (rec.outcome != "ok" || rec.status >= 400) {
      // error_type: the outcome, or the status code for an upstream error answer; both come
      // from fixed sets. Interned once per value and thread.
      static thread_local std::map<std::string, std::uint32_t, std::less<>> ids;
      std::string_view what = rec.outcome;
      char code[4] = {};
      if (what == "upstream_status" || what == "ok") {
        int st = std::clamp(rec.status, 0, 999);
        code[0] = static_cast<char>('0' + st / 100);
        code[1] = static_cast<char>('0' + st / 10 % 10);
        code[2] = static_cast<char>('0' + st % 10);
        what = std::string_view(code, 3);
      }
      auto it = ids.find(what);
      if (it == ids.end())
        it = ids.emplace(std::string(what), observe::metrics::labels().intern(what)).first;
      s.error_type = it->second;
    }
  }
  ctx_.metrics.record(s);
  if (rec.outcome == "rate_limited") {
    // The limit's name comes from a fixed set; interned once per value and thread.
    static thread_local std::map<std::string, std::uint32_t, std::less<>> limit_ids;
    auto what = admission_.refused_limit();
    auto it = limit_ids.find(what);
    if (it == limit_ids.end())
      it = limit_ids.emplace(std::string(what), observe::metrics::labels().intern(what)).first;
    ctx_.metrics.rate_limited(rec.labels.client, it->second);
  }
}

void client_connection::close() {
  stream_.close_notify();  // TLS: the client sees an orderly end, not a truncation
  stream_.close();
}

void client_connection::close_if_idle() {
  if (idle_) close();
}

bool client_connection::authorized(std::string_view token, const proxy::snapshot& snap) {
  // A keep-alive client sends the same token on every request: hash it (SHA-256, constant
  // time) once per connection and config generation, not per request.
  // Compared in constant time too: requests of several clients may share one connection (a
  // proxy's pool in front), and an early-exit compare would tell how much of a guess matches
  // the cached token.
  if (!authorized_token_.empty() && authorized_generation_ == snap.generation &&
      token.size() == authorized_token_.size() &&
      CRYPTO_memcmp(token.data(), authorized_token_.data(), token.size()) == 0)
    return true;
  int index = snap.tokens.find(token);
  if (index < 0) return false;
  authorized_token_.assign(token);
  authorized_generation_ = snap.generation;
  authorized_index_ = index;
  return true;
}

bool client_connection::body_pending() const {
  if (!parser_ || parser_->is_done()) return false;
  if (parser_->chunked()) return true;
  auto len = parser_->content_length();
  return len && *len > 0;
}

asio::awaitable<void> client_connection::run() {
  auto self = shared_from_this();
  deadline_.set_owner(self);
  exchange_.set_owner(self);
  exchange_.set_client_buffer(&in_);
  in_.reserve(client_read_chunk);
  boost::system::error_code ec;
  stream_.lowest().set_option(asio::ip::tcp::no_delay(true), ec);
  if (!stream_.pipe()) net::enable_drain_hint(stream_.lowest());

  for (;;) {
    auto head = co_await read_head();
    if (head == head_result::closed || head == head_result::shutdown) break;
    // This request's snapshot, whatever reloads happen meanwhile. Taken once the head is in:
    // a connection idle through a reload serves its next request with the new config.
    auto snap = ctx_.current();
    snap_ptr_ = &snap;
    observe::request_record rec;
    auto start = clock_type::now();
    request_id_ =
        proxy::http::request_id::choose(req_.headers.get(proxy::http::header_id::x_request_id));
    answer_id_ = snap->cfg.headers.request_id;
    exchange_.begin(start, request_id_.view(), answer_id_);
    rec.request_id = request_id_.view();
    rec.client = peer_;
    rec.protocol = protocol_;
    bool keep = false;
    // The client's dialect, by path (nullptr: OpenAI): the exchange's front and back step and
    // the shape of every error answer, from the first one on.
    exchange_.set_client_dialect(nullptr);
    if (head == head_result::ok) {
      rec.method = req_.method;
      rec.path = path_of(req_.target);
      exchange_.set_client_dialect(dialect::client_codec_for_path(rec.path));
      keep = co_await handle(*snap, rec);
    } else {
      rec.method = req_.method.empty() ? std::string_view("-") : std::string_view(req_.method);
      rec.path = req_.target.empty() ? std::string_view("-") : path_of(req_.target);
      auto kind = head == head_result::too_large ? error_kind::header_too_large
                  : head == head_result::timeout ? error_kind::request_timeout
                                                 : error_kind::bad_request;
      auto msg = head == head_result::too_large ? "The request head is too large."
                 : head == head_result::timeout ? "The request head did not arrive in time."
                                                : "The request is not valid HTTP/1.1.";
      rec.outcome = head == head_result::timeout ? "client_timeout" : "bad_request";
      exchange_.reset_bytes_out();
      co_await exchange_.write_error(kind, msg, false, rec);
    }
    settle_now(rec);  // every path of the request ends here (if the answer did not already)
    settled_ = false;
    snap_ptr_ = nullptr;
    rec.duration_ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
    rec.bytes_in = streaming_ ? bytes_read : req_.body.size();
    streaming_ = false;
    rec.bytes_out = exchange_.bytes_out();
    if (!stream_.taken_over()) [[likely]] {  // else the HTTP/2 side records its own answer
      observe::access_log(rec);
      record_metrics(rec);
    }
    if (!keep || ctx_.draining || stream_.pipe()) break;  // an HTTP/2 stream: one request
    req_.body.shrink_if_above(1 << 20);
    req_.headers.shrink_if_above(64 * 1024);
    if (in_.capacity() > max_kept_read_buffer) in_.shrink_to_fit();  // after a very large head
    exchange_.trim();
  }
  // Idle past timeouts.keepalive: nothing unread to wait for (TLS: the deadline only cancelled
  // the read, so close() can still send close_notify; the FIN follows it at once, so a client
  // answering with its own close_notify before the close sees an orderly end, not a reset).
  if (!idle_expired_) co_await linger();
  deadline_.stop();
  close();
}

void client_connection::settle_now(const observe::request_record& rec) {
  if (settled_) return;
  settled_ = true;
  if (ctx_.state && snap_ptr_ && *snap_ptr_)  // the ledger: before finish() forgets the key's
    ctx_.state->settled(**snap_ptr_, rec, admission_.settling_key(rec));
  admission_.finish(rec);
}

void client_connection::cut() {
  // Shutdown grace is over. A request with the upstream is ended by the exchange (its upstream
  // connection closes, the client gets a 503 or a stream error event); any other wait on the
  // client (a head, a body, a lingering close) is cancelled.
  if (exchange_.busy()) {
    exchange_.cut();
    if (streaming_) stream_.cancel();  // a read of an upload's rest (socket or pipe)
    return;
  }
  stream_.cancel();
}

void client_connection::abandon() {
  deadline_.stop();
  close();
}

asio::awaitable<void> client_connection::linger() {
  // Closing with unread request bytes makes the kernel send a reset, which can destroy an
  // answer (say a 413) before the client reads it. So: stop sending, then read and discard
  // what the client still sends, for a bounded time, before closing (like nginx's lingering
  // close). Not once the shutdown grace is over: the process is about to exit.
  // Under TLS, close_notify goes first (a client that reads to the end, an HTTP/1.0 stream
  // say, sees an orderly end), then the bytes read are records, discarded undecrypted.
  // An HTTP/2 stream's pipe: nothing to linger for, its close is the end of the answer.
  if (stream_.pipe()) co_return;
  auto& sock = stream_.lowest();
  if (!sock.is_open()) co_return;
  boost::system::error_code ec;
  // A close_notify sent is followed by the FIN already (tls_socket::close_notify).
  auto* tls = stream_.tls();
  if (!(tls && tls->close_notify())) sock.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec || ctx_.stopping) co_return;
  auto until = clock_type::now() + std::chrono::seconds(5);
  // Not in the coroutine frame (that was a 16 KiB allocation per closed connection): the
  // bytes are thrown away, so every lingering connection of this thread reads into one sink.
  static thread_local char sink[16 * 1024];
  while (clock_type::now() < until && !ctx_.stopping) {
    deadline_.arm(std::chrono::milliseconds(1000), &sock);
    auto [rec, n] = co_await sock.async_read_some(asio::buffer(sink), use_tuple);
    deadline_.disarm();
    if (rec) break;
  }
}

asio::awaitable<client_connection::head_result> client_connection::read_head() {
  // Copied from the config in force now; no snapshot is held across the wait (a reload during
  // it must apply to the request that ends it, and may free the snapshot read here).
  const auto& cfg = ctx_.current()->cfg;
  const std::size_t limit = cfg.limits.max_header_bytes;
  const auto keepalive = cfg.timeouts.keepalive;
  const auto header_time = cfg.timeouts.client_header;
  req_.clear();
  parser_.emplace(req_);
  parser_->eager(false);  // stop after the head: auth and routing come before the body
  parser_->header_limit(static_cast<std::uint32_t>(limit));
  // No body limit yet: Beast would fail a declared oversized Content-Length before the head is
  // complete; handle_proxy answers 413 for it after auth, and read_body limits chunked bodies.
  parser_->body_limit(boost::none);
  // The whole head must arrive within client_header of its first byte: the deadline is fixed
  // then, not pushed back by each read, so a head trickled byte by byte is cut. The wait for
  // that first byte is the keep-alive wait. The clock is read when a head needs a second read
  // (most arrive whole in one), right after the first bytes were parsed.
  // An HTTP/2 stream's one request is in its pipe already (its HEADERS came whole): never an
  // idle keep-alive wait, which a drain would close (the stream, accepted before the GOAWAY,
  // would be reset unanswered).
  bool started = in_.size() > 0 || stream_.pipe();
  clock_type::time_point head_until{};
  // Head bytes the parser consumed so far (it takes the request line before the fields are
  // whole): the limit counts them too.
  std::size_t parsed = 0, empty_lines = 0;
  for (;;) {
    if (in_.size() > 0 && parsed == empty_lines && !stream_.pipe()) {
      // Empty lines before a request line are ignored (RFC 9112 section 2.2): a client may
      // end a body with an extra CRLF. Beast would take them for a bad request line. They
      // count towards the head's limit; until a request's first byte the wait is keep-alive.
      std::string_view bytes(static_cast<const char*>(in_.data().data()), in_.size());
      auto n = bytes.find_first_not_of("\r\n");
      if (n == std::string_view::npos) n = bytes.size();
      in_.consume(n);
      parsed += n;
      empty_lines += n;
      if (parsed >= limit) co_return head_result::too_large;
      if (in_.size() == 0) started = false;
    }
    if (in_.size() > 0) {
      beast::error_code ec;
      auto used = parser_->put(in_.data(), ec);
      in_.consume(used);
      parsed += used;
      if (ec == beast::http::error::header_limit) co_return head_result::too_large;
      if (ec && ec != beast::http::error::need_more) co_return head_result::bad;
      if (parser_->is_header_done()) co_return head_result::ok;
      if (parsed + in_.size() >= limit) co_return head_result::too_large;
    }
    idle_ = !started;
    if (idle_ && ctx_.draining) co_return head_result::closed;
    if (idle_)  // closes: nothing to answer; TLS: cancels, close() sends close_notify first
      deadline_.arm(keepalive, &stream_,
                    stream_.is_tls() ? proxy::deadline::on_expiry::cancel
                                     : proxy::deadline::on_expiry::close);
    else {
      if (head_until == clock_type::time_point{})
        head_until = observe::coarse_deadline(header_time);
      deadline_.arm_until(head_until, &stream_, proxy::deadline::on_expiry::cancel);
    }
    // Never past the limit: a head that fills it without ending is too large.
    auto want = std::min(client_read_chunk, limit - parsed - in_.size());
    // The wait for a request's first byte may end without a syscall's try; the rest of a head
    // is tried at once (client_stream::async_read_more: a reset behind bytes read).
    auto [ec, n] = started ? co_await stream_.async_read_more(in_.prepare(want), use_tuple)
                           : co_await stream_.async_read_some(in_.prepare(want), use_tuple);
    bool expired = deadline_.expired();
    deadline_.disarm();
    bool was_idle = idle_;
    idle_ = false;
    in_.commit(n);
    if (expired) {
      idle_expired_ = was_idle;
      co_return was_idle ? head_result::closed : head_result::timeout;
    }
    if (ec) co_return ctx_.stopping && !was_idle ? head_result::shutdown : head_result::closed;
    started = true;
  }
}

bool client_connection::body_buffered() const {
  if (parser_->is_done()) return true;
  if (parser_->chunked()) return false;
  return in_.size() >= parser_->content_length().value_or(0);
}

void client_connection::take_buffered_body() {
  if (parser_->is_done() || parser_->chunked()) return;
  // Content-Length body: straight into the body buffer, no parser copy.
  std::size_t len = static_cast<std::size_t>(parser_->content_length().value_or(0));
  req_.body.reserve_more(len);
  std::size_t take = std::min(len, in_.size());
  req_.body.append(std::string_view(static_cast<const char*>(in_.data().data()), take));
  in_.consume(take);
}

asio::awaitable<client_connection::head_result> client_connection::read_body(
    const proxy::snapshot& snap) {
  const auto& to = snap.cfg.timeouts;
  if (parser_->is_done()) co_return head_result::ok;
  // Each read within client_body, the whole body within client_body_total of the head's end:
  // a body trickled a byte at a time is cut too. Expiry cancels the read, so a 408 can follow.
  const auto body_until = observe::coarse_deadline(to.client_body_total);
  auto arm = [&] {
    deadline_.arm_until(std::min(observe::coarse_deadline(to.client_body), body_until), &stream_,
                        proxy::deadline::on_expiry::cancel);
  };
  auto ended = [this](bool expired) {
    return expired         ? head_result::timeout
           : ctx_.stopping ? head_result::shutdown
                           : head_result::closed;
  };
  if (!parser_->chunked()) {
    take_buffered_body();
    std::size_t len = static_cast<std::size_t>(parser_->content_length().value_or(0));
    while (req_.body.size() < len) {
      arm();
      auto want = std::min(req_.body.spare_size(), len - req_.body.size());
      auto [ec, n] =
          co_await stream_.async_read_more(asio::buffer(req_.body.spare(), want), use_tuple);
      bool expired = deadline_.expired();
      deadline_.disarm();
      req_.body.commit(n);
      if (ec || expired) co_return ended(expired);
    }
    co_return head_result::ok;
  }
  parser_->eager(true);
  parser_->body_limit(snap.cfg.limits.max_body_bytes);
  for (;;) {
    if (in_.size() > 0 && proxy::ready_to_feed(*parser_, in_.size())) {
      beast::error_code ec;
      auto used = parser_->put(in_.data(), ec);
      in_.consume(used);
      if (ec == beast::http::error::body_limit) co_return head_result::too_large;
      if (ec && ec != beast::http::error::need_more) co_return head_result::bad;
      if (parser_->is_done()) co_return head_result::ok;
      if (!proxy::http::chunk_pending_ok({static_cast<const char*>(in_.data().data()), in_.size()}))
        co_return head_result::bad;  // an endless chunk line, or a bare LF: 400 now
    }
    arm();
    auto [ec, n] = co_await stream_.async_read_more(in_.prepare(client_read_chunk), use_tuple);
    bool expired = deadline_.expired();
    deadline_.disarm();
    in_.commit(n);
    if (ec || expired) co_return ended(expired);
  }
}

asio::awaitable<bool> client_connection::reply_json(int status, std::string_view body,
                                                    bool keep_alive, observe::request_record& rec) {
  out_.clear();
  out_ += "HTTP/1.1 ";
  out_ += std::to_string(status);
  out_ += ' ';
  out_ += proxy::http::reason_of(status);
  out_ += "\r\nContent-Type: application/json\r\n";
  if (answer_id_) {
    out_ += "x-request-id: ";
    out_ += request_id_.view();
    out_ += "\r\n";
  }
  out_ += "Content-Length: ";
  out_ += std::to_string(body.size());
  keep_alive = keep_alive && !ctx_.draining;
  out_ += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  if (req_.method != "HEAD") out_ += body;
  rec.status = status;
  bool ok = co_await exchange_.write_raw(out_, ctx_.current()->cfg.timeouts.idle);
  co_return ok&& keep_alive;
}

asio::awaitable<bool> client_connection::refuse(error_kind kind, std::string message,
                                                bool keep_alive, observe::request_record& rec,
                                                std::string_view extra_headers) {
  message_ = std::move(message);
  return exchange_.write_error(kind, message_, keep_alive, rec, extra_headers);
}

asio::awaitable<bool> client_connection::handle(const proxy::snapshot& snap,
                                                observe::request_record& rec) {
  exchange_.reset_bytes_out();
  bool keep = parser_->keep_alive();
  // An answer given before the body was read must close: the unread body would be taken
  // for the next request.
  bool keep_early = keep && !body_pending();
  auto path = rec.path;
  bool get = req_.method == "GET" || req_.method == "HEAD";
  // Host, body framing and path rules (proxy/http/request_check.hpp), before anything else.
  if (auto v = proxy::http::check_request(req_.version, req_.headers, req_.target); !v.ok()) {
    rec.outcome = "bad_request";
    return refuse(v.kind, std::string(v.message), keep_early && !v.close, rec);
  }

  if (path == "/healthz" || path == "/health") {
    if (!get)
      return refuse(error_kind::method_not_allowed, "Use GET for " + std::string(path) + ".",
                    keep_early, rec, "Allow: GET, HEAD\r\n");
    return reply_json(200, R"({"status":"ok"})", keep_early, rec);
  }
  if (!path.starts_with("/v1/")) {
    rec.outcome = "not_found";
    return refuse(error_kind::route_not_found, "Unknown route " + std::string(path) + ".",
                  keep_early, rec);
  }
  auto token = auth::bearer_token(req_.headers.get(proxy::http::header_id::authorization));
  // Clients of another dialect (Anthropic's) may send their key as x-api-key instead.
  if (!token && exchange_.client_dialect()) {
    if (auto k = req_.headers.get(proxy::http::header_id::x_api_key); !k.empty()) token = k;
  }
  if (!token || !authorized(*token, snap)) {
    rec.outcome = "unauthorized";
    return refuse(error_kind::unauthorized,
                  token ? "Incorrect API key provided."
                  : exchange_.client_dialect()
                      ? "Missing API key: send x-api-key or an "
                        "Authorization: Bearer header."
                      : "Missing bearer token in the Authorization header.",
                  keep_early, rec);
  }
  if (authorized_index_ >= 0 &&
      static_cast<std::size_t>(authorized_index_) < snap.client_labels.size()) {
    rec.labels.client = snap.client_labels[authorized_index_];
    rec.client_name = snap.client_names[authorized_index_];
  }
  // Identify: a disabled or expired key is refused at once, before any state is touched.
  if (auto st = proxy::check_key(snap.keys.keys[authorized_index_]);
      st != proxy::key_state::usable) {
    rec.outcome = "unauthorized";
    return refuse(error_kind::unauthorized,
                  st == proxy::key_state::disabled ? "This API key is disabled."
                                                   : "This API key has expired.",
                  keep_early, rec);
  }
  if (auto family = proxy::http::unroutable_family(path); !family.empty()) {
    rec.outcome = "not_routable";
    return refuse(error_kind::not_routable,
                  std::string(path) + " is not supported by this gateway: " + std::string(family) +
                      " are stored per provider account, and the gateway routes each request "
                      "by its model to any account of a group, so such objects cannot be "
                      "reached reliably. Call the provider directly for them.",
                  keep_early, rec);
  }
  if (path == "/v1/models" || path.starts_with("/v1/models/")) {
    if (!get) {
      rec.outcome = "method_not_allowed";
      return refuse(error_kind::method_not_allowed, "Use GET for " + std::string(path) + ".",
                    keep_early, rec, "Allow: GET, HEAD\r\n");
    }
    if (path == "/v1/models") {  // a key with a groups list sees those groups only
      const auto& own = snap.key_models[static_cast<std::size_t>(authorized_index_)];
      return reply_json(200, own.empty() ? snap.models_body : own, keep_early, rec);
    }
    auto name = path.substr(std::string_view("/v1/models/").size());
    const auto* g = snap.routes.find(name);
    // A group the key may not use does not exist for it, as in its /v1/models list.
    if (!g || !snap.keys.keys[authorized_index_].may_use(g->name)) {
      rec.outcome = "model_not_found";
      return refuse(error_kind::model_not_found,
                    "The model '" + std::string(name) + "' does not exist.", keep_early, rec);
    }
    message_ =
        R"({"id":)" + g->name_literal + R"(,"object":"model","created":0,"owned_by":"openbridge"})";
    return reply_json(200, message_, keep_early, rec);
  }
  if (req_.method != "POST") {
    rec.outcome = "method_not_allowed";
    return refuse(error_kind::method_not_allowed, "Use POST for " + std::string(path) + ".",
                  keep_early, rec, "Allow: POST\r\n");
  }
  return handle_proxy(snap, rec, keep);
}

asio::awaitable<bool> client_connection::handle_proxy(const proxy::snapshot& snap,
                                                      observe::request_record& rec,
                                                      bool keep_alive) {
  auto len = parser_->content_length();
  if (len && *len > snap.cfg.limits.max_body_bytes)
    return refuse_body(head_result::too_large, snap, rec);
  // Not to an HTTP/1.0 client, which may take a 1xx for the answer (RFC 9110 section 10.1.1:
  // a server ignores 100-continue in an HTTP/1.0 request).
  bool send_continue =
      req_.version >= 11 &&
      proxy::http::iequals(req_.headers.get(proxy::http::header_id::expect), "100-continue") &&
      in_.size() < len.value_or(1);
  if (send_continue || !body_buffered()) {
    // An upload is relayed as it arrives once its model part is in (server/client_form.cpp).
    if (proxy::http::is_multipart(req_.headers.get(proxy::http::header_id::content_type)))
      return receive_form(snap, rec, keep_alive, send_continue);
    return receive_body(snap, rec, keep_alive, send_continue);
  }
  take_buffered_body();
  return forward(snap, rec, keep_alive);
}

// "100 Continue" to a client that asked for it before sending its body; false: the write
// failed. Not counted in the answer's bytes.
asio::awaitable<bool> client_connection::continue_body(const proxy::snapshot& snap) {
  bool sent = co_await exchange_.write_raw("HTTP/1.1 100 Continue\r\n\r\n", snap.cfg.timeouts.idle);
  if (sent) exchange_.reset_bytes_out();
  co_return sent;
}

asio::awaitable<bool> client_connection::receive_body(const proxy::snapshot& snap,
                                                      observe::request_record& rec, bool keep_alive,
                                                      bool send_continue) {
  if (send_continue && !co_await continue_body(snap)) co_return false;
  auto body = co_await read_body(snap);
  if (body != head_result::ok) {
    bool keep = co_await refuse_body(body, snap, rec);
    co_return keep;
  }
  co_return co_await forward(snap, rec, keep_alive);
}

asio::awaitable<bool> client_connection::forward(const proxy::snapshot& snap,
                                                 observe::request_record& rec, bool keep_alive) {
  auto content_type = req_.headers.get(proxy::http::header_id::content_type);
  if (proxy::http::is_multipart(content_type))
    return forward_form(snap, rec, keep_alive, content_type);
  auto found = ctx_.finder.find_request_model(req_.body.view(), req_.body.capacity());
  if (found.status != proxy::json::find_status::ok) {
    bool json_broken = found.status == proxy::json::find_status::invalid_json;
    rec.outcome = "bad_request";
    return exchange_.write_error(json_broken ? error_kind::bad_json : error_kind::bad_model,
                                 model_error(found.status), keep_alive, rec);
  }
  const auto* group = snap.routes.find(found.name);
  if (!group) {
    rec.outcome = "model_not_found";
    return refuse(error_kind::model_not_found,
                  "The model '" + std::string(found.name) + "' does not exist.", keep_alive, rec);
  }
  rec.group = group->name;
  rec.labels.group = group->metric_group;
  // Admit: the key's groups, then its limits and budget (proxy/admission.hpp).
  const auto& key = snap.keys.keys[authorized_index_];
  if (!key.may_use(group->name)) {
    rec.outcome = "model_not_allowed";
    return refuse(error_kind::model_not_allowed,
                  "Key '" + key.cfg->name + "' may not use model '" + group->name + "'.",
                  keep_alive, rec);
  }
  auto usage = usage_plan(snap, rec, found);
  if (key.limited || group->limited) {
    if (proxy::http::counts_tokens_only(rec.path)) [[unlikely]]
      admission_.estimate_no_tokens();
    else
      admission_.estimate(req_.body.size(), found.output_cap(), key.default_output_tokens);
  }
  return admit(snap, rec, keep_alive, found.value, usage, *group, false);
}

asio::awaitable<bool> client_connection::admit(const proxy::snapshot& snap,
                                               observe::request_record& rec, bool keep_alive,
                                               proxy::json::span model,
                                               const proxy::json::usage_plan& usage,
                                               const routing::group& group, bool model_raw) {
  const auto& key = snap.keys.keys[authorized_index_];
  if (key.limited) {
    auto a = admission_.admit_key(*snap_ptr_, key);
    if (a == proxy::admission::result::pending)
      return admit_then_forward(snap, rec, keep_alive, model, usage, group, model_raw);
    if (a == proxy::admission::result::refused) {
      if (key.waiters && admission_.refusal_waitable())
        return wait_then_forward(snap, rec, keep_alive, model, usage, group, model_raw);
      return refuse_limited(rec, keep_alive);
    }
  }
  return start_exchange(snap, rec, keep_alive, model, usage, group, model_raw);
}

asio::awaitable<bool> client_connection::wait_then_forward(const proxy::snapshot& snap,
                                                           observe::request_record& rec,
                                                           bool keep_alive, proxy::json::span model,
                                                           proxy::json::usage_plan usage,
                                                           const routing::group& group,
                                                           bool model_raw) {
  // limits.max_wait: wait for capacity instead of failing, first come first served within the
  // key (only the head of its queue retries), at most limits.max_waiting requests at once.
  const auto& key = snap.keys.keys[authorized_index_];
  auto& waiting = snap.keys.waiting;
  if (waiting.fetch_add(1, std::memory_order_relaxed) >= snap.keys.max_waiting) {
    waiting.fetch_sub(1, std::memory_order_relaxed);
    bool keep = co_await refuse_limited(rec, keep_alive);
    co_return keep;
  }
  auto& queue = *key.waiters;
  const auto id = queue.join();
  const auto until = clock_type::now() + std::chrono::milliseconds(key.max_wait_ms);
  asio::steady_timer timer(stream_.get_executor());
  // A client that leaves while it waits gives up its place at once (the watch cancels the
  // timer): it is neither admitted nor sent on later, in the turn of the request behind it.
  exchange_.watch_wait(timer);
  bool admitted = false;
  bool tried = true;  // the refusal that got us here was the first try
  for (;;) {
    auto now = clock_type::now();
    if (now >= until || ctx_.stopping || exchange_.client_gone()) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
    auto pause = std::chrono::milliseconds(10);  // not our turn yet
    if (queue.is_head(id)) {
      if (!tried) {
        auto a = admission_.admit_key(*snap_ptr_, key);
        if (a == proxy::admission::result::pending) {
          bool ok = co_await admission_.wait();  // (not inside ?:, see admit_then_forward)
          a = ok ? proxy::admission::result::admitted : proxy::admission::result::refused;
          if (exchange_.client_gone()) break;  // left during the round trip
        }
        if (a == proxy::admission::result::admitted) {
          admitted = true;
          break;
        }
        if (!admission_.refusal_waitable()) break;
      }
      tried = false;
      auto retry =
          std::chrono::milliseconds(std::max<std::int64_t>(1, admission_.refusal_retry_ms()));
      // A rate limit says when it frees up: past the wait, fail now. Concurrency frees up
      // whenever a request ends: look again soon.
      if (admission_.refused_limit() != "concurrency" && retry > left) break;
      pause = std::min(retry, std::chrono::milliseconds(100));
    }
    timer.expires_after(std::min(pause, left));
    co_await timer.async_wait(use_tuple);
  }
  exchange_.end_wait();
  queue.leave(id);
  waiting.fetch_sub(1, std::memory_order_relaxed);
  if (exchange_.client_gone()) {
    // Nothing to answer. Admitted during a backend's round trip: the request's end releases
    // the reservation (settle_now, no answer).
    rec.outcome = "client_cancelled";
    rec.status = 499;
    rec.detail = "client went away while waiting for capacity";
    co_return false;
  }
  if (!admitted) {
    bool keep = co_await refuse_limited(rec, keep_alive);
    co_return keep;
  }
  co_return co_await start_exchange(snap, rec, keep_alive, model, usage, group, model_raw);
}

proxy::json::usage_plan client_connection::usage_plan(const proxy::snapshot& snap,
                                                      const observe::request_record& rec,
                                                      const proxy::json::request_model& found) {
  // A stream whose client did not ask for usage: ask the provider for it (the answer's extra
  // usage chunk is removed again), so every stream's tokens are counted.
  proxy::json::usage_plan usage;
  if (snap.cfg.metrics.stream_usage && proxy::json::injects_usage(rec.path))
    usage = proxy::json::plan_usage_injection(req_.body.view(), found);
  return usage;
}

asio::awaitable<bool> client_connection::start_exchange(const proxy::snapshot& snap,
                                                        observe::request_record& rec,
                                                        bool keep_alive, proxy::json::span model,
                                                        const proxy::json::usage_plan& usage,
                                                        const routing::group& group,
                                                        bool model_raw) {
  const auto& key = snap.keys.keys[authorized_index_];
  return exchange_.run({req_, model, usage, group, snap, streaming_ ? form_keep_ : keep_alive,
                        key.limited ? admission_.success_headers() : std::string_view(),
                        group.limited ? &admission_ : nullptr, snap_ptr_, model_raw, this,
                        streaming_ ? this : nullptr},
                       rec);
}

asio::awaitable<bool> client_connection::refuse_limited(observe::request_record& rec,
                                                        bool keep_alive) {
  rec.outcome = "rate_limited";
  message_.assign(admission_.message());
  return exchange_.write_error(admission_.kind(), message_, keep_alive, rec, admission_.headers());
}

asio::awaitable<bool> client_connection::admit_then_forward(
    const proxy::snapshot& snap, observe::request_record& rec, bool keep_alive,
    proxy::json::span model, proxy::json::usage_plan usage, const routing::group& group,
    bool model_raw) {
  // The awaited result goes to a variable first: written as `if (!co_await admission_.wait())
  // co_return co_await ...;` (GCC 12.2, -O2) the first request that waited here crashed, its
  // frame resumed with a wrong `this` (the exact compiler fault is not pinned down).
  bool admitted = co_await admission_.wait();
  if (!admitted) {
    bool keep = co_await refuse_limited(rec, keep_alive);
    co_return keep;
  }
  co_return co_await start_exchange(snap, rec, keep_alive, model, usage, group, model_raw);
}

asio::awaitable<bool> client_connection::refuse_body(head_result body, const proxy::snapshot& snap,
                                                     observe::request_record& rec) {
  if (body == head_result::too_large) {
    rec.outcome = "body_too_large";
    std::string message =
        "The request body exceeds " + std::to_string(snap.cfg.limits.max_body_bytes) + " bytes.";
    bool keep = co_await exchange_.write_error(error_kind::body_too_large, message, false, rec);
    co_return keep;
  }
  if (body == head_result::bad) {
    rec.outcome = "bad_request";
    bool keep = co_await exchange_.write_error(
        error_kind::bad_request, "The request body is not valid HTTP framing.", false, rec);
    co_return keep;
  }
  if (body == head_result::shutdown) {
    rec.outcome = "shutdown";
    bool keep = co_await exchange_.write_error(
        error_kind::unavailable, "The gateway is shutting down; the request was not read whole.",
        false, rec);
    co_return keep;
  }
  rec.outcome = body == head_result::timeout ? "client_timeout" : "client_cancelled";
  rec.status = body == head_result::timeout ? 408 : 499;
  if (body == head_result::timeout) {
    bool written = co_await exchange_.write_error(
        error_kind::request_timeout, "The request body did not arrive in time.", false, rec);
    (void)written;  // the connection closes either way
  }
  co_return false;
}

}  // namespace ob::server
