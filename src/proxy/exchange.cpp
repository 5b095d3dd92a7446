#include "proxy/exchange.hpp"

#include "observe/clock.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <span>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>

#include "auth/token_check.hpp"
#include "proxy/json/model.hpp"
#include "proxy/sse/rewrite.hpp"
#include "routing/policies/round_robin.hpp"

namespace ob::proxy {

namespace asio = boost::asio;
using millis = std::chrono::milliseconds;
using namespace std::string_view_literals;
using upstream::use_tuple;
using clock_type = std::chrono::steady_clock;

namespace {

// Upstream reads start small (an idle stream then holds 2 KiB, not 16) and switch to 16 KiB
// for good once a read fills its buffer (big answers arrive in few reads, as nginx does with
// its proxy buffers).
constexpr std::size_t first_read_chunk = 2 * 1024;
constexpr std::size_t big_read_chunk = 16 * 1024;
constexpr std::size_t max_answer_head = 64 * 1024;
// Answer bytes the parser may leave unconsumed once the head is in: only a chunk's size line
// or the trailer section can be left (bodies are taken as they come), and Beast bounds
// neither. A few bytes in practice; past this the answer is broken, not the read buffer's
// limit reached (its growth throws).
constexpr std::size_t max_answer_pending = 64 * 1024;
// Heads this gateway writes are usually a few hundred bytes: a new connection allocates
// room for them once instead of growing a string step by step (kept for the next request).
constexpr std::size_t head_reserve = 1024;
// A request still with the upstream after this long gets its client watched for a disconnect
// (sweep(), called by the worker every 20 ms while a request is in flight). Watching every request
// at once costs an epoll_ctl per request (~5% of a small request's CPU); most answers are done
// sooner.
constexpr auto lazy_watch_after = std::chrono::milliseconds(20);
// An SSE event larger than this (no blank line in sight) means a broken or hostile upstream.
constexpr std::size_t max_pending_event = 8 * 1024 * 1024;
// How long a provider read waits before sweep() looks at its socket, and how often after that
// (check_stalled_read).
constexpr auto stalled_read_check = std::chrono::seconds(1);

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && http::iequals(s.substr(0, prefix.size()), prefix);
}

bool contains_ci(std::string_view s, std::string_view needle) {
  if (needle.empty()) return true;
  // Positions whose byte cannot start a match are skipped by one test: bytes equal
  // case-insensitively are equal once the case bit is set (other pairs may pass too; the
  // comparison then tells).
  const char first = static_cast<char>(needle.front() | 0x20);
  for (std::size_t i = 0; i + needle.size() <= s.size(); ++i)
    if (static_cast<char>(s[i] | 0x20) == first && starts_with_ci(s.substr(i), needle)) return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

bool is_event_stream(std::string_view content_type) {
  return starts_with_ci(trim(content_type), "text/event-stream");
}

// Media an answer carries as bytes nobody rewrites (speech audio, images): relayed as it
// arrives rather than read whole first.
bool is_binary(std::string_view content_type) {
  auto t = trim(content_type);
  if (t.empty()) return false;
  switch (t[0] | 0x20) {  // JSON answers ("application/json") stop at t[12]
    case 'a':
      if (t.size() > 1 && (t[1] | 0x20) == 'u') return starts_with_ci(t, "audio/");
      return t.size() >= 24 && (t[12] | 0x20) == 'o' &&
             starts_with_ci(t, "application/octet-stream");
    case 'i':
      return starts_with_ci(t, "image/");
    case 'v':
      return starts_with_ci(t, "video/");
  }
  return false;
}

// A body the gateway wrote (a codec's translation) is JSON whatever the provider sent: its
// Content-Type (text/html for an HTML 529 page, say) and the headers that describe the
// provider's bytes (their encoding, digest, entity tag) go; Content-Type: application/json is
// added.
void label_as_json(http::header_list& h) {
  static constexpr std::string_view about_bytes[] = {
      "content-encoding", "content-md5", "content-digest", "repr-digest", "digest", "etag"};
  for (std::size_t i = h.size(); i-- > 0;) {
    bool drop = h.id(i) == http::header_id::content_type;
    for (auto n : about_bytes) drop = drop || http::iequals(h.name(i), n);
    if (drop) h.remove(i);
  }
  h.add("Content-Type", "application/json", http::header_id::content_type);
}

bool looks_like_json(std::string_view content_type, std::string_view body) {
  if (!content_type.empty()) return contains_ci(content_type, "json");
  for (char c : body) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{';
  }
  return false;
}

void append_hex(std::string& out, std::size_t n) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n, 16);
  out.append(buf, end);
}

// A chunk's size line (HTTP/1.1 chunked framing).
void append_chunk_size(std::string& out, std::size_t n) {
  append_hex(out, n);
  out += "\r\n";
}

template <class Int>
void append_decimal(std::string& out, Int n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

// Milliseconds with 3 decimals (microseconds), for Server-Timing; at most 24 bytes at `p`.
char* put_ms(char* p, clock_type::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us < 0) us = 0;
  p = std::to_chars(p, p + 20, us / 1000).ptr;
  p[0] = '.';
  p[1] = static_cast<char>('0' + us / 100 % 10);
  p[2] = static_cast<char>('0' + us / 10 % 10);
  p[3] = static_cast<char>('0' + us % 10);
  return p + 4;
}

// Plain stores into a buffer the caller sized for the worst case.
struct head_writer {
  char* p;
  // Inlined: most pieces are literals, so the copy becomes a few moves.
  [[gnu::always_inline]] void text(std::string_view t) {
    std::memcpy(p, t.data(), t.size());
    p += t.size();
  }
  template <class Int>
  void number(Int n) {
    p = std::to_chars(p, p + 20, n).ptr;
  }
  std::size_t size_from(const char* begin) const { return static_cast<std::size_t>(p - begin); }
};

millis remaining(clock_type::time_point until) {
  auto left = std::chrono::duration_cast<millis>(until - observe::coarse_now());
  return left.count() > 0 ? left : millis(0);
}

}  // namespace

exchange::exchange(worker_context& ctx, client_stream& client, deadline& dl)
    : ctx_(ctx), client_(client), deadline_(dl), wake_(client.get_executor()) {}

template <class Buffers>
auto exchange::write_client(const Buffers& buffers, millis limit) {
  return asio::async_initiate<decltype(asio::deferred), void(bool)>(
      [this, limit](auto handler, const Buffers& buffers) {
        if (client_gone_) {  // nothing more goes to a client that left
          asio::post(client_.get_executor(), [h = std::move(handler)]() mutable { h(false); });
          return;
        }
        deadline_.arm(limit, &client_);
        client_.async_write(buffers, [this, h = std::move(handler)](boost::system::error_code ec,
                                                                    std::size_t n) mutable {
          h(end_client_write(ec, n));
        });
      },
      asio::deferred, buffers);
}

bool exchange::end_client_write(boost::system::error_code ec, std::size_t n) {
  deadline_.disarm();
  bytes_out_ += n;
  if (ec) client_gone_ = true;
  return !ec;
}

asio::awaitable<bool> exchange::write_raw(std::string_view data, millis limit) {
  client_gone_ = false;
  co_return co_await write_client(asio::buffer(data.data(), data.size()), limit);
}

asio::awaitable<bool> exchange::write_error(http::error_kind k, std::string_view message,
                                            bool keep_alive, observe::request_record& rec,
                                            std::string_view extra_headers) {
  keep_alive = keep_alive && !ctx_.draining;  // shutting down: every answer says close
  client_head_.clear();
  bool head = client_req_ && client_req_->method == "HEAD";
  extra_headers_.clear();
  if (!answer_id_.empty()) {
    extra_headers_ += "x-request-id: "sv;
    extra_headers_ += answer_id_;
    extra_headers_ += "\r\n"sv;
  }
  extra_headers_ += extra_headers;
  if (cdialect_) [[unlikely]]
    build_error(http::status_of(k), message, keep_alive, extra_headers_, head);
  else
    http::append_error_response(client_head_, k, message, keep_alive, extra_headers_, head);
  rec.status = http::status_of(k);
  settle_early(rec);  // inside run(): the request's reservations go before its answer
  auto limit = ctx_.current()->cfg.timeouts.idle;
  bool ok = co_await write_client(asio::buffer(client_head_), limit);
  co_return ok&& keep_alive;
}

asio::awaitable<bool> exchange::write_refusal(const exchange_request& r,
                                              observe::request_record& rec) {
  if (codec_refusal_.status != dialect::codec_status::bad_request) {
    rec.outcome = "not_routable";
    bool keep = co_await write_error(http::error_kind::not_routable, codec_refusal_.message,
                                     r.client_keep_alive, rec);
    co_return keep;
  }
  const auto& c = codec_refusal_;
  if (cdialect_) {  // the client's own dialect
    xlat_.clear();
    cdialect_->append_error_body(xlat_, 400, c.message);
  } else {
    // {"error":{"message","type","param","code"}} with the parameter the target cannot take.
    xlat_ = R"({"error":{"message":)";
    json::append_json_string(xlat_, c.message);
    xlat_ += R"(,"type":"invalid_request_error","param":)";
    if (c.param.empty())
      xlat_ += "null";
    else
      json::append_json_string(xlat_, c.param);
    xlat_ += R"(,"code":)";
    json::append_json_string(xlat_, c.code.empty() ? "unsupported_parameter" : c.code);
    xlat_ += "}}";
  }
  bool keep = r.client_keep_alive && !ctx_.draining;
  client_head_ = "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ";
  client_head_ += std::to_string(xlat_.size());
  client_head_ += "\r\n";
  if (!answer_id_.empty()) {
    client_head_ += "x-request-id: ";
    client_head_ += answer_id_;
    client_head_ += "\r\n";
  }
  client_head_ += keep ? "\r\n" : "Connection: close\r\n\r\n";
  if (!(client_req_ && client_req_->method == "HEAD")) client_head_ += xlat_;
  rec.status = 400;
  rec.outcome = "bad_request";
  detail_ = c.message;
  rec.detail = detail_;
  settle_early(rec);
  bool ok = co_await write_client(asio::buffer(client_head_), r.snap.cfg.timeouts.idle);
  co_return ok&& keep;
}

void exchange::trim() {
  resp_body_.shrink_if_above(1 << 20);
  resp_headers_.shrink_if_above(64 * 1024);
  if (payload_.capacity() > (1 << 20)) std::string().swap(payload_);
}

void exchange::watch_client() {
  auto owner = owner_.lock();
  if (!owner) return;
  auto gen = ++watch_gen_;
  if (auto* pipe = client_.pipe()) {  // an HTTP/2 stream: gone when reset or its connection died
    pipe->async_wait_gone([this, gen, owner = std::move(owner)](boost::system::error_code ec) {
      if (ec || gen != watch_gen_) return;
      client_left();
    });
    return;
  }
  client_.lowest().async_wait(
      asio::ip::tcp::socket::wait_read,
      [this, gen, owner = std::move(owner)](boost::system::error_code ec) {
        if (ec || gen != watch_gen_) return;
        char b;
        auto n = ::recv(client_.lowest().native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
        // A pipelined next request: the client is still there. Under TLS, a
        // record of type 21 is an alert (close_notify): the client is leaving.
        if (n > 0 && !(client_.is_tls() && b == 21)) return;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
          watch_client();
          return;
        }
        client_left();  // orderly close or reset
      });
}

void exchange::client_left() {
  client_gone_ = true;
  if (up_) up_->close();
  if (wait_wake_) wait_wake_->cancel();
}

void exchange::watch_wait(asio::steady_timer& wake) {
  client_gone_ = false;
  wait_wake_ = &wake;
  watch_started_ = true;
  watch_client();
}

void exchange::end_wait() {
  wait_wake_ = nullptr;
  stop_watching_client();
}

bool exchange::sweep(std::chrono::steady_clock::time_point now) {
  if (active_ && !watch_started_ && !reading_client_ && now - active_since_ >= lazy_watch_after) {
    watch_started_ = true;
    watch_client();
  }
  if (up_read_since_ != clock_type::time_point::max()) [[unlikely]]
    check_stalled_read(now);
  return active_;
}

void exchange::check_stalled_read(std::chrono::steady_clock::time_point now) {
  // A kick may find nothing to cancel (a TLS read between two reads of its socket, the first
  // one's completion already queued): looked at again a second later, kicked again if need be.
  if (!up_ || now - up_read_since_ < stalled_read_check ||
      now - up_read_checked_ < stalled_read_check)
    return;
  up_read_checked_ = now;
  // poll, not a recv: a recv (even MSG_PEEK) would consume the socket's error, which the
  // kernel reports once; read again, the socket would then only say "end", and an answer
  // that ends with its connection would pass as complete.
  pollfd p{up_->lowest().native_handle(), POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0 || p.revents == 0) return;
  // An end, an error (a RST that came with the last bytes read) or bytes that no edge
  // announced: the read waits for nothing. Its completion (operation_aborted) reads them
  // (redo_read).
  up_read_kicked_ = true;
  boost::system::error_code ec;
  up_->lowest().cancel(ec);
}

void exchange::redo_read(boost::system::error_code& ec, std::size_t& n) {
  n = 0;
  if (!up_->lowest().is_open()) return;  // closed meanwhile (shutdown): stays aborted
  if (auto* tls = up_->tls()) {
    // Into the TLS input buffer: the bytes go to OpenSSL with the next read (no error and no
    // byte here: the caller reads again), an end or an error is this read's.
    boost::system::error_code fec;
    if (tls->fill_now(fec) > 0 || fec) ec = fec;
    return;
  }
  auto buf = up_->buffer.prepare(up_->big_reads ? big_read_chunk : first_read_chunk);
  auto got = ::recv(up_->lowest().native_handle(), buf.data(), buf.size(), MSG_DONTWAIT);
  if (got > 0) {
    ec = {};
    n = static_cast<std::size_t>(got);
  } else if (got == 0) {
    ec = asio::error::eof;
  } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
    ec = boost::system::error_code(errno, boost::system::system_category());
  }  // else nothing after all: the read stays cancelled (a broken exchange)
}

void exchange::cut() {
  if (up_) up_->close();
}

void exchange::stop_watching_client() {
  active_ = false;
  if (!watch_started_) return;
  watch_started_ = false;
  ++watch_gen_;
  if (auto* pipe = client_.pipe()) return pipe->cancel_wait_gone();
  boost::system::error_code ec;
  client_.lowest().cancel(ec);
}

// `reusable`: the answer was read whole and its framing allows keep-alive (Content-Length or
// chunked, no Connection: close). The pool refuses a connection with bytes past the answer.
void exchange::release_upstream(bool reusable) {
  up_read_since_ = clock_type::time_point::max();
  up_read_kicked_ = false;
  if (!up_) return;
  // A streamed upload cut short: the provider did not get the request whole.
  if (reusable && !client_gone_ && target_ && !upload_cut_) {
    auto hint = resp_headers_.get(http::header_id::keep_alive);
    up_->keep_limit = hint.empty() ? up_to_.pool_idle
                                   : std::min(up_to_.pool_idle, upstream::keep_alive_limit(hint));
    ctx_.pool.release({target_->pool_key, target_->pool_hash}, std::move(up_));
  } else {
    up_->close();
    up_.reset();
  }
}

void exchange::build_upstream_head(const exchange_request& r, const routing::target& t,
                                   std::size_t body_len) {
  const auto& url = t.provider->url;
  const auto& route = t.route;  // dialect/path.hpp: prefix + target (its "/v1" maybe dropped)
  // A codec target: the codec's target ("/v1/messages") and extra header lines.
  std::string_view target = up_req_ ? std::string_view(up_req_->target) : r.req.target;
  std::string_view codec_headers =
      up_req_ ? std::string_view(up_req_->headers) : std::string_view();
  std::string_view fixed = t.fixed_headers;
  std::string_view client_version;  // an Anthropic client's own anthropic-version, pass-through
  if (client_version_) [[unlikely]] {
    client_version = r.req.headers.get("anthropic-version");
    if (!client_version.empty()) fixed.remove_suffix(t.default_version);
  }
  up_head_.clear();
  up_head_.reserve(head_reserve);
  // Every literal below and one number (<= 20 bytes), then plain stores.
  up_head_.resize(128 + r.req.method.size() + route.max_size(target) + url.host_header.size() +
                  fixed.size() + codec_headers.size() + request_id_.size() + client_version.size());
  head_writer w{up_head_.data()};
  w.text(r.req.method);
  w.text(" "sv);
  // Prefix, the client target's rest and, for Azure, the configured api-version instead of any
  // of the client's.
  route.write(target, [&w](std::string_view piece) { w.text(piece); });
  w.text(" HTTP/1.1\r\nHost: "sv);
  w.text(url.host_header);
  w.text("\r\n"sv);
  w.text(fixed);
  if (!client_version.empty()) {
    w.text("anthropic-version: "sv);
    w.text(client_version);
    w.text("\r\n"sv);
  }
  if (up_req_) w.text(codec_headers);
  if (body_len != chunked_body) [[likely]] {
    w.text("Content-Length: "sv);
    w.number(body_len);
    w.text("\r\n"sv);
  } else {
    w.text("Transfer-Encoding: chunked\r\n"sv);
  }
  w.text("Accept-Encoding: identity\r\n"sv);
  if (!request_id_.empty()) {
    w.text("X-Request-Id: "sv);
    w.text(request_id_);
    w.text("\r\n"sv);
  }
  up_head_.resize(w.size_from(up_head_.data()));
  // The client's token (it authenticated with it) must not reach the provider in any header.
  auto token = auth::bearer_token(r.req.headers.get(http::header_id::authorization));
  if (!token && cdialect_) token = r.req.headers.get(http::header_id::x_api_key);
  http::append_forwarded(up_head_, r.req.headers, http::direction::to_upstream,
                         {.secret = token.value_or(std::string_view{}),
                          .replaced = t.replaced_headers.empty() ? nullptr : &t.replaced_headers});
  up_head_ += "\r\n"sv;
}

void exchange::append_client_head(framing f, std::size_t content_length, bool keep_alive,
                                  const config::header_options& opts) {
  const bool expose_routing = opts.expose_routing;
  // On every answer: sized for the worst case, then plain stores (no capacity check per piece).
  int status = answer_status_;
  std::string_view reason =
      answer_reason_.empty() ? http::reason_of(status) : std::string_view(answer_reason_);
  client_head_.reserve(head_reserve);
  std::size_t old = client_head_.size();
  client_head_.resize(old + 32 + reason.size());
  head_writer w{client_head_.data() + old};
  w.text("HTTP/1.1 "sv);
  w.number(status);
  w.text(" "sv);
  w.text(reason);
  w.text("\r\n"sv);
  client_head_.resize(w.size_from(client_head_.data()));
  using rate_limits = http::forward_filter::rate_limits;
  http::append_forwarded(
      client_head_, resp_headers_, http::direction::to_client,
      {.rate_limit_headers = rate_headers_.empty() ? rate_limits::keep : rate_limits::drop});

  auto up_id = resp_headers_.get(http::header_id::x_request_id);
  std::string_view model, provider;
  if (expose_routing) {
    model = target_->provider->name;
    provider = target_->provider->url.host_header;
  }
  // Every literal below, three numbers (<= 20 bytes each) and two durations (<= 24 each).
  old = client_head_.size();
  client_head_.resize(old + 320 + model.size() + provider.size() + answer_id_.size() +
                      up_id.size() + rate_headers_.size());
  w = head_writer{client_head_.data() + old};
  // The body rewrite hides the real model; these keep it visible to operators and clients.
  // The provider is named by its host (and non-default port) only: its base URL's path may
  // say more than clients should know.
  if (expose_routing) {
    w.text("x-openbridge-model: "sv);
    w.text(model);
    w.text("\r\nx-openbridge-provider: "sv);
    w.text(provider);
    w.text("\r\nx-openbridge-attempts: "sv);
    w.number(attempts_);
    w.text("\r\n"sv);
  }
  if (!answer_id_.empty()) {
    w.text("x-request-id: "sv);
    w.text(answer_id_);
    w.text("\r\n"sv);
  }
  if (!rate_headers_.empty()) w.text(rate_headers_);
  // The provider's own request id (what its support asks for) under another name.
  if (!up_id.empty()) {
    w.text("x-upstream-request-id: "sv);
    w.text(up_id);
    w.text("\r\n"sv);
  }
  // Time in the gateway and time waiting on providers up to this answer, so clients can check
  // the overhead themselves.
  if (opts.server_timing && ready_ != clock_type::time_point{}) {
    w.text("Server-Timing: gateway;dur="sv);
    w.p = put_ms(w.p, (ready_ - arrived_) - upstream_wait_);
    w.text(", upstream;dur="sv);
    w.p = put_ms(w.p, upstream_wait_);
    w.text("\r\n"sv);
  }
  if (f == framing::length) {
    // Not on a 204 or 304 (RFC 9110 sections 8.6, 15.3.5, 15.4.5): they have no content.
    if (status != 204 && status != 304) {
      w.text("Content-Length: "sv);
      w.number(content_length);
      w.text("\r\n"sv);
    }
  } else if (f == framing::chunked) {
    w.text("Transfer-Encoding: chunked\r\n"sv);
  }
  if (!keep_alive) w.text("Connection: close\r\n"sv);
  w.text("\r\n"sv);
  client_head_.resize(w.size_from(client_head_.data()));
}

// Every Transfer-Encoding line of `h` names only "chunked" (a coding such as gzip before it
// would reach the client as if it were the identity: the gateway drops the header).
bool exchange::only_chunked(const http::header_list& h) {
  for (std::size_t i = 0; i < h.size(); ++i) {
    if (h.id(i) != http::header_id::transfer_encoding) continue;
    std::string_view list = h.value(i);
    while (!list.empty()) {
      auto comma = list.find(',');
      auto item = list.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      if (!item.empty() && !http::iequals(item, "chunked")) return false;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return true;
}

void exchange::decide_mode() {
  // 204 and 205 have no content whatever their Content-Type (RFC 9110 sections 15.3.5-6): a
  // stream or raw relay would put a chunked body after them.
  const int status = parser_->status();
  bool ok = status >= 200 && status < 300 && status != 204 && status != 205;
  auto type = resp_headers_.get(http::header_id::content_type);
  mode_ = !ok                     ? mode::buffered
          : is_event_stream(type) ? mode::stream
          : is_binary(type)       ? mode::raw
                                  : mode::buffered;
}

void exchange::on_body(void* self, std::string_view bytes) {
  auto& x = *static_cast<exchange*>(self);
  if (x.mode_ == mode::undecided) x.decide_mode();
  if (x.mode_ == mode::stream) {
    x.hold_stream_bytes(bytes);
    return;
  }
  if (x.mode_ == mode::raw) {  // goes out with the next client write
    x.payload_.append(bytes);
    return;
  }
  if (x.resp_body_.size() + bytes.size() > x.max_response_) {
    x.body_too_large_ = true;
    return;
  }
  x.resp_body_.append(bytes);
}

// Inlined into on_event: the pass-through path keeps its one call per event.
[[gnu::always_inline]] inline void exchange::relay_event(const sse::event& ev,
                                                         sse::usage_strip* strip) {
  auto info = sse::rewrite_event(ev, ctx_.finder, group_literal_, payload_, &shape_, strip);
  if (ev.has_data && data_events_++ == 0) first_event_error_ = info.error;
  terminal_seen_ = terminal_seen_ || info.terminal;
  if (info.usage.present()) usage_ = info.usage;
}

void exchange::on_event(const sse::event& ev) {
  if (!tr_ && !ctr_) [[likely]] {
    relay_event(ev, &strip_);
    return;
  }
  if (ctr_) {
    client_event(ev);
    return;
  }
  // A codec target: the upstream event becomes zero or more whole OpenAI events, written
  // straight into the client's payload as they go out (the group named as the model; no usage
  // chunk to strip: the translator writes one only when the client asked for it). The
  // translator reports what relay_event would have found in them.
  note_translated(tr_->translate_event(ev, payload_));
}

void exchange::note_translated(const dialect::event_info& info) {
  if (info.events > 0 && data_events_ == 0) first_event_error_ = info.error && info.events == 1;
  data_events_ += info.events;
  terminal_seen_ = terminal_seen_ || info.terminal;
  if (info.usage.present()) usage_ = info.usage;
}

[[gnu::noinline]] dialect::codec_status exchange::translate_buffered() {
  xlat_.clear();
  codec_refusal_ = tr_ ? tr_->translate_body(parser_->status(), resp_body_.view(), xlat_)
                       : ctr_->translate_body(parser_->status(), resp_body_.view(), xlat_);
  resp_body_.clear();
  resp_body_.append(xlat_);
  label_as_json(resp_headers_);
  return codec_refusal_.status;
}

void exchange::hold_stream_bytes(std::string_view bytes) {
  if (bytes.empty()) return;
  auto& joined = ctx_.stream_gather;
  if (!stream_joined_) {
    if (stream_held_.empty()) {
      stream_held_ = bytes;  // valid until the parsed bytes are consumed: fed before that
      return;
    }
    joined.assign(stream_held_);
    stream_held_ = {};
    stream_joined_ = true;
  }
  joined.append(bytes);
}

void exchange::feed_held_stream_bytes() {
  if (stream_joined_) {
    stream_joined_ = false;
    on_stream_bytes(ctx_.stream_gather);
    ctx_.stream_gather.clear();
  } else if (!stream_held_.empty()) {
    on_stream_bytes(std::exchange(stream_held_, {}));
  }
}

void exchange::take_payload() {
  auto& spare = ctx_.spare_payloads;
  if (spare.empty()) return;
  payload_.swap(spare.back());  // payload_ is empty and has no memory of its own (caller)
  spare.pop_back();
}

void exchange::give_back_payload() {
  payload_.clear();
  if (payload_.capacity() <= std::string().capacity()) return;
  auto& spare = ctx_.spare_payloads;
  if (spare.size() < worker_context::spare_payload_count &&
      payload_.capacity() <= worker_context::spare_payload_max)
    spare.push_back(std::move(payload_));
  std::string().swap(payload_);
}

void exchange::on_stream_bytes(std::string_view bytes) {
  if (payload_.empty() && payload_.capacity() <= std::string().capacity()) take_payload();
  if (tr_ || ctr_) {
    framer_.feed(bytes, [this](const sse::event& ev) { on_event(ev); });
    return;
  }
  // Pass-through: plain chunks shaped like the last one skip the per-event framing and
  // rewrite; they report nothing but their number (data events after the first).
  framer_.feed(
      bytes, [this](const sse::event& ev) { relay_event(ev, &strip_); },
      [this](std::string_view rest) {
        return sse::claim_plain_events(rest, shape_, &strip_, group_literal_, payload_,
                                       data_events_);
      });
}

exchange::attempt_outcome exchange::parse_buffered() {
  auto& b = up_->buffer;
  beast::error_code ec;
  while (b.size() > 0 && !parser_->is_done() && ready_to_feed(*parser_, b.size())) {
    auto used = parser_->put(b.data(), ec);
    feed_held_stream_bytes();  // before the bytes it may view are consumed
    b.consume(used);
    if (ec == beast::http::error::need_more) {
      if (parser_->is_header_done() && b.size() > max_answer_pending)
        return {fail::broken, false,
                "malformed answer from the provider: a chunk line or trailer section too long"};
      break;
    }
    if (ec) return {fail::broken, false, "malformed answer from the provider: " + ec.message()};
    if (body_too_large_) return {fail::too_large, false, "the provider's answer is too large"};
    if (framer_.pending_bytes() > max_pending_event)
      return {fail::broken, false, "the provider sent an oversized stream event"};
    if (parser_->is_header_done() && parser_->status() < 200 && parser_->is_done()) {
      // The gateway never asks for an upgrade: a 101 is a broken answer, not an interim one.
      if (parser_->status() == 101)
        return {fail::broken, false, "malformed answer from the provider: an unasked 101"};
      start_parser();  // an interim 1xx answer: the real one follows
      continue;
    }
    if (used == 0) break;
  }
  return {};
}

void exchange::start_parser() {
  resp_headers_.clear();
  resp_body_.clear();
  body_too_large_ = false;
  mode_ = mode::undecided;
  parser_.emplace(resp_headers_, &exchange::on_body, this);
  parser_->eager(true);
  parser_->header_limit(max_answer_head);
  parser_->body_limit(boost::none);  // answers are bounded by max_response_ (buffered) only
}

void exchange::arm_upstream(millis limit) {
  // One clock read: total_deadline_ is a coarse deadline too, so the earlier of the two is
  // never before either bound on the precise clock.
  auto own = observe::coarse_deadline(limit);
  total_bound_ = total_deadline_ <= own;
  deadline_.arm_until(total_bound_ ? total_deadline_ : own, &up_->lowest());
}

asio::mutable_buffer exchange::begin_read(millis limit) {
  arm_upstream(limit);
  up_read_since_ = observe::coarse_now();
  up_read_checked_ = {};
  return up_->buffer.prepare(up_->big_reads ? big_read_chunk : first_read_chunk);
}

exchange::attempt_outcome exchange::end_read(boost::system::error_code ec, std::size_t n) {
  bool expired = deadline_.expired();
  deadline_.disarm();
  up_read_since_ = clock_type::time_point::max();
  if (up_read_kicked_) [[unlikely]] {
    up_read_kicked_ = false;
    if (ec == asio::error::operation_aborted && up_ && !expired && !client_gone_) redo_read(ec, n);
  }
  return take_read(ec, n, expired);
}

inline exchange::attempt_outcome exchange::take_read(boost::system::error_code ec, std::size_t n,
                                                     bool expired) {
  if (n == (up_->big_reads ? big_read_chunk : first_read_chunk)) up_->big_reads = true;
  up_->buffer.commit(n);
  if (n > 0) received_any_ = true;
  if (client_gone_) return {fail::client_gone, false, "client went away"};
  if (expired) return {fail::timeout, false, "the provider did not answer in time"};
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    if (parser_->got_some() && !parser_->is_done()) {
      beast::error_code pec;
      parser_->put_eof(pec);
      if (!pec) return {};
    }
    return {fail::broken, false, "the provider closed the connection"};
  }
  if (ec) return {fail::broken, false, "reading from the provider failed: " + ec.message()};
  return parse_buffered();
}

void exchange::arm_watch() {
  read_pending_ = true;
  read_done_ = false;
  auto buf = up_->buffer.prepare(up_->big_reads ? big_read_chunk : first_read_chunk);
  // Never a draining read (connection::read_some): while a write runs beside it, a RST behind
  // the bytes it takes (a partial answer head, say) must complete the next watch read at once
  // (a draining read would leave it waiting on an edge the reset already spent).
  up_->read_some(
      buf,
      [this](boost::system::error_code ec, std::size_t n) {
        read_pending_ = false;
        read_done_ = true;
        read_ec_ = ec;
        read_n_ = n;
        wake_.cancel();
      },
      upstream::connection::may_drain::no);
}

void exchange::poll_watch() {
  if (!read_done_) return;
  read_done_ = false;
  // The deadline belongs to the write beside this read: its expiry closed the socket, so the
  // read failed, and the caller tells the timeout by deadline_.expired().
  watch_out_ = take_read(read_ec_, read_n_, false);
  if (!watch_stopped()) arm_watch();
}

asio::awaitable<void> exchange::wait_wake() {
  wake_.expires_at(clock_type::time_point::max());
  co_await wake_.async_wait(use_tuple);
}

asio::awaitable<boost::system::error_code> exchange::write_watched(
    std::span<const asio::const_buffer> bufs) {
  write_done_ = false;
  if (!read_pending_ && !read_done_ && !watch_stopped()) arm_watch();
  up_->write_then(bufs, [this](boost::system::error_code ec, std::size_t) {
    write_done_ = true;
    write_ec_ = ec;
    wake_.cancel();
  });
  bool cancelled = false;
  for (;;) {
    poll_watch();
    // A failed write waits for its read (the socket failed: it ends at once), which may still
    // bring the answer the provider sent before it reset the connection.
    if (write_done_ && (!write_ec_ || !read_pending_)) break;
    if (!write_done_ && !cancelled && watch_stopped()) {
      // The provider answered (or its side failed) before taking the whole body: the rest is
      // not sent. No read is pending here, so only the write is cancelled.
      up_->lowest().cancel();
      cancelled = true;
    }
    co_await wait_wake();
  }
  co_return write_ec_;
}

asio::awaitable<exchange::attempt_outcome> exchange::end_watch(millis limit) {
  if (read_pending_) {
    arm_upstream(limit);
    while (read_pending_) co_await wait_wake();
    bool expired = deadline_.expired();
    deadline_.disarm();
    read_done_ = false;
    co_return take_read(read_ec_, read_n_, expired);
  }
  if (read_done_) {
    read_done_ = false;
    watch_out_ = take_read(read_ec_, read_n_, false);
  }
  co_return watch_out_;
}

asio::awaitable<void> exchange::stop_watch() {
  if (read_pending_) {
    up_->lowest().cancel();
    while (read_pending_) co_await wait_wake();
  }
  read_done_ = false;
}

asio::awaitable<exchange::attempt_outcome> exchange::attempt(const exchange_request& r,
                                                             const routing::target& t,
                                                             bool allow_pooled) {
  const auto& to = up_to_;
  if (allow_pooled) up_ = ctx_.pool.lease({t.pool_key, t.pool_hash}, to.pool_idle);
  bool reused = up_ != nullptr;
  if (!up_) {
    auto res = co_await ctx_.connector.connect(t.provider->url,
                                               std::min(to.connect, remaining(total_deadline_)));
    if (client_gone_) co_return attempt_outcome{fail::client_gone, false, "client went away"};
    if (!res.conn)
      co_return attempt_outcome{res.error == upstream::connect_error::timeout ? fail::timeout
                                : res.error == upstream::connect_error::tls   ? fail::tls
                                                                              : fail::connect,
                                false, res.detail};
    up_ = std::move(res.conn);
  }
  if (ctx_.stopping) {  // the shutdown grace ended while this attempt connected
    release_upstream(false);
    co_return attempt_outcome{fail::broken, false, "shutdown grace period over"};
  }
  ++up_->uses;

  // One gathered write: head, then the body with the model spliced (and, for a stream whose
  // client did not ask for usage, the ask added); the body itself is never copied.
  // A codec target's body is the codec's whole translation: sent as is, no edits.
  const auto body = up_req_ ? std::string_view(up_req_->body) : r.req.body.view();
  auto& edits = up_edits_;
  int edit_count =
      up_req_ ? 0
              : json::merge_edits(
                    r.usage, r.model,
                    r.model_raw ? std::string_view(t.provider->name) : t.model_literal, edits);
  auto body_len = json::edited_size(body, edits, edit_count);
  // A streamed upload: this is its prefix; send_rest relays the rest. A chunked one goes
  // chunked, the prefix as its first chunk.
  const body_source* streamed = r.streamed;
  if (streamed) [[unlikely]] {
    build_upstream_head(r, t, streamed->chunked ? chunked_body : body_len + streamed->rest);
    if (streamed->chunked) append_chunk_size(up_head_, body_len);
  } else {
    build_upstream_head(r, t, body_len);
  }
  auto& out = up_out_;
  std::size_t pieces = 0;
  out[pieces++] = asio::buffer(up_head_);
  json::for_each_piece(body, edits, edit_count, [&](std::string_view p) {
    out[pieces++] = asio::buffer(p.data(), p.size());
  });
  if (streamed && streamed->chunked) out[pieces++] = asio::buffer("\r\n"sv);
  start_parser();
  received_any_ = false;
  upload_cut_ = false;
  upload_time_ = {};
  watch_out_ = {};
  arm_upstream(to.first_byte);
  auto [wec, wn] =
      co_await up_->write_some(std::span<const asio::const_buffer>(out.data(), pieces));
  // Most requests go out in that one write. The rest of a bigger one, and a streamed upload's
  // rest, are written while the upstream is read (the watch).
  std::size_t sent = 0, first = 0;
  while (first < pieces && wn - sent >= out[first].size()) sent += out[first++].size();
  bool watched = !wec && (first < pieces || streamed);
  if (watched) [[unlikely]] {
    auto began = clock_type::now();
    if (first < pieces) out[first] += wn - sent;
    arm_watch();
    wec = co_await write_watched(
        std::span<const asio::const_buffer>(out.data() + first, pieces - first));
    upload_time_ = clock_type::now() - began;
  }
  bool expired = deadline_.expired();
  deadline_.disarm();
  if (client_gone_ || expired || (wec && !parser_->is_header_done())) {
    co_await stop_watch();
    if (client_gone_) co_return attempt_outcome{fail::client_gone, false, "client went away"};
    if (expired)
      co_return attempt_outcome{fail::timeout, false, "sending to the provider timed out"};
    release_upstream(false);
    // Not all of the request went out: a pooled connection the provider had just closed.
    // Safe to send again on a fresh connection to the same target. (The read beside the
    // write says best what happened when it failed first: the write was only cancelled.)
    attempt_outcome o = watch_out_;
    if (o.failure == fail::none)
      o = {fail::broken, false, "sending to the provider failed: " + wec.message()};
    o.retryable = reused && !received_any_;
    co_return o;
  }
  if (wec || (streamed && watch_stopped())) {
    upload_cut_ = true;  // answered before the body's end: the rest is not sent
  } else if (streamed) [[unlikely]] {
    auto began = clock_type::now();
    auto rest = co_await send_rest(r);
    upload_time_ += clock_type::now() - began;
    if (rest.failure != fail::none) co_return rest;
  }

  attempt_outcome o;
  if (watched) o = co_await end_watch(to.first_byte);
  while (o.failure == fail::none && !parser_->is_header_done())
    o = co_await read_upstream(to.first_byte);
  if (o.failure != fail::none) {
    // The whole request reached the provider, which may have acted on it: never sent twice
    // to the same target (failover may still pick another one). Unless the pool's idle watch
    // closed this pooled connection because the provider had closed it or sent stray bytes
    // before the request was leased: then the request went nowhere, and a fresh connection
    // may carry it.
    if (reused && up_ && up_->closed_by_watch && !received_any_ && !streamed) o.retryable = true;
    if (upload_cut_)
      o.detail = "the provider stopped taking the upload: " + std::string(o.detail.view());
    release_upstream(false);
    co_return o;
  }
  // HTTP status codes are 100-599 (RFC 9110 section 15); the parser takes any three digits,
  // and an answer such as "999" must not reach clients as if it were one.
  if (int s = parser_->status(); s < 200 || s > 599) {
    release_upstream(false);
    co_return attempt_outcome{fail::broken, false,
                              "malformed answer from the provider: status " + std::to_string(s)};
  }
  // A Transfer-Encoding other than a final chunked (the gateway asks for identity), or any
  // in an HTTP/1.0 answer, leaves the answer's framing in doubt (RFC 9112 sections 6.1, 6.3):
  // a body read by Content-Length instead could leave bytes on a connection the pool reuses.
  if (resp_headers_.contains(http::header_id::transfer_encoding) &&
      (!parser_->chunked() || parser_->version() < 11 || !only_chunked(resp_headers_))) {
    release_upstream(false);
    co_return attempt_outcome{
        fail::broken, false,
        "malformed answer from the provider: a Transfer-Encoding the gateway cannot read"};
  }
  if (mode_ == mode::undecided) decide_mode();
  co_return attempt_outcome{};
}

auto exchange::write_buffered(const exchange_request& r, observe::request_record& rec) {
  json::answer_info info;
  auto body = resp_body_.view();
  if (looks_like_json(resp_headers_.get(http::header_id::content_type), body))
    info = ctx_.finder.inspect_answer(body, resp_body_.capacity());
  if (info.usage.present()) usage_ = info.usage;

  std::size_t len = body.size();
  for (int i = 0; i < info.model_count; ++i)
    len = len - (info.models[i].end - info.models[i].begin) + group_literal_.size();

  bool keep = r.client_keep_alive && !ctx_.draining;
  client_head_.clear();
  append_client_head(framing::length, len, keep, r.snap.cfg.headers);
  rec.status = answer_status_;
  settle_early(rec);  // the usage is known: settled before the client can have the answer

  auto& out = client_out_;
  std::size_t n = 0;
  out[n++] = asio::buffer(client_head_);
  std::size_t pos = 0;
  for (int i = 0; i < info.model_count; ++i) {
    out[n++] = asio::buffer(body.data() + pos, info.models[i].begin - pos);
    out[n++] = asio::buffer(group_literal_.data(), group_literal_.size());
    pos = info.models[i].end;
  }
  out[n++] = asio::buffer(body.data() + pos, body.size() - pos);
  std::span<const asio::const_buffer> pieces(out.data(), n);
  return write_client(pieces, r.snap.cfg.timeouts.idle)(asio::deferred([this, &rec, keep](bool ok) {
    if (!ok) {
      rec.outcome = "client_cancelled";
      relay_result_ = relay_result::client_gone;
      return asio::deferred.values(false);
    }
    if (rec.status >= 400) rec.outcome = "upstream_status";
    return asio::deferred.values(keep);
  }));
}

asio::awaitable<bool> exchange::write_kept_answer(const exchange_request& r,
                                                  observe::request_record& rec) {
  std::swap(kept_.headers, resp_headers_);
  std::swap(kept_.body, resp_body_);
  answer_status_ = kept_.status;
  answer_reason_ = kept_.reason;
  target_ = kept_.target;
  answer_ready();
  rec.target = target_->provider->name;
  rec.provider = target_->provider->base;
  kept_.valid = false;
  rec.outcome = "upstream_status";
  co_return co_await write_buffered(r, rec);
}

asio::awaitable<bool> exchange::relay_buffered(const exchange_request& r,
                                               observe::request_record& rec) {
  // run() has read the answer whole and translated it (one that broke before its end, or that
  // its codec could not read, failed over).
  release_upstream(parser_->keep_alive());
  answer_status_ = parser_->status();
  answer_reason_ = parser_->reason();
  if (tr_) set_client_status(tr_->client_status(answer_status_));
  if (ctr_) set_client_status(ctr_->client_status(answer_status_));
  answer_ready();
  co_return co_await write_buffered(r, rec);
}

auto exchange::flush_stream(bool chunked, bool last, millis limit) {
  chunk_prefix_.clear();
  if (chunked && !payload_.empty()) {
    append_hex(chunk_prefix_, payload_.size());
    chunk_prefix_ += "\r\n"sv;
  }
  auto& out = client_out_;
  std::size_t n = 0;
  if (!client_head_.empty()) out[n++] = asio::buffer(client_head_);
  out[n++] = asio::buffer(chunk_prefix_);
  out[n++] = asio::buffer(payload_);
  if (chunked && !payload_.empty()) out[n++] = asio::buffer("\r\n", 2);
  if (chunked && last) out[n++] = asio::buffer("0\r\n\r\n", 5);
  std::span<const asio::const_buffer> pieces(out.data(), n);
  return write_client(pieces, limit)(asio::deferred([this](bool ok) {
    client_head_.clear();
    give_back_payload();
    return asio::deferred.values(ok);
  }));
}

asio::awaitable<bool> exchange::relay_stream(const exchange_request& r,
                                             observe::request_record& rec) {
  const auto& to = r.snap.cfg.timeouts;    // client writes: the global idle limit
  const bool sse = mode_ == mode::stream;  // else raw bytes: no events, nothing appended
  rec.stream = sse;
  answer_ready();
  ++ctx_.metrics.open_streams;
  struct stream_gauge {
    std::int64_t& n;
    ~stream_gauge() { --n; }
  } gauge{ctx_.metrics.open_streams};
  if (client_in_ && client_in_->size() == 0) client_in_->shrink_to_fit();
  rec.status = answer_status_ = parser_->status();
  answer_reason_ = parser_->reason();
  // A binary answer keeps the provider's Content-Length: bytes are relayed unchanged, and a
  // client can then tell one the provider cut short (the connection closes before the length),
  // HTTP/1.0 clients included, which would otherwise get an answer ended by close.
  // (A flag, not the optional length, lives in this coroutine's frame.)
  bool sized = !sse && parser_->content_length();
  bool chunked = !sized && r.req.version >= 11;
  bool keep = r.client_keep_alive && (chunked || sized) && !ctx_.draining;
  client_head_.clear();
  append_client_head(sized     ? framing::length
                     : chunked ? framing::chunked
                               : framing::close_delimited,
                     sized ? static_cast<std::size_t>(*parser_->content_length()) : 0, keep,
                     r.snap.cfg.headers);

  // A stream released before its first data event (release_held_stream) waits for it as the
  // hold did: each read within first_byte, not idle (a long prefill with sparse keep-alives).
  bool before_first = sse && data_events_ == 0;
  no_head_ttft_ = before_first;
  attempt_outcome failure;
  for (;;) {
    // An answer already complete goes out in the final write (head, events, terminator).
    if (parser_->is_done()) break;
    if (before_first && data_events_ > 0) [[unlikely]] {
      before_first = false;
      first_data_ = std::chrono::steady_clock::now();
    }
    if (!client_head_.empty() || !payload_.empty()) {
      // The final event ([DONE], response.completed) is about to go: the usage came before it.
      if (terminal_seen_) settle_early(rec);
      bool flushed = co_await flush_stream(chunked, false, to.idle);
      if (!flushed) break;
    }
    failure = co_await read_upstream(before_first ? up_to_.first_byte : up_to_.idle);
    if (failure.failure != fail::none) break;
  }

  if (client_gone_) {
    release_upstream(false);
    rec.outcome = "client_cancelled";
    relay_result_ = relay_result::client_gone;
    co_return false;
  }
  if (failure.failure == fail::none && !sse) {
    release_upstream(parser_->keep_alive());
  } else if (failure.failure == fail::none) {
    framer_.finish([this](const sse::event& ev) {
      on_event(ev);
      // The provider's last event lacked its blank line: end it so clients dispatch it.
      if (!payload_.empty() && payload_.back() != '\n')
        payload_ += "\n\n";
      else if (payload_.size() >= 2 && payload_[payload_.size() - 2] != '\n')
        payload_ += "\n";
    });
    release_upstream(parser_->keep_alive());
    if (tr_) note_translated(tr_->finish(payload_));
    if (ctr_) {
      auto info = ctr_->finish(payload_);
      terminal_seen_ = terminal_seen_ || info.terminal;
    }
    if (!terminal_seen_) {
      append_stream_error(502, "the provider ended the stream before it was complete",
                          "upstream_error", "stream_incomplete");
      rec.outcome = "upstream_error";
      rec.detail = "stream ended without a final event";
      relay_result_ = relay_result::upstream_failed;
    }
  } else if (ctx_.stopping) {
    release_upstream(false);
    framer_.reset();
    rec.detail = "shutdown grace period over";
    rec.outcome = "shutdown";
    if (sse)
      append_stream_error(503, "the gateway is shutting down; the stream was ended early",
                          "server_error", "shutting_down");
  } else if (sse && terminal_seen_) {
    // The stream was whole ([DONE], response.completed, message_stop, ...): the provider's
    // failure after its final event (a reset, an answer never ended) is no news for the
    // client, and no error event follows a complete stream. The connection is not reused.
    release_upstream(false);
    framer_.reset();
    detail_ = failure.detail.view();
    detail_.insert(0, "after the stream's final event: ");
    rec.detail = detail_;
  } else {
    release_upstream(false);
    framer_.reset();  // an incomplete event is dropped: the error event must start clean
    bool timeout = failure.failure == fail::timeout;
    detail_ = failure.detail.view();
    rec.detail = detail_;
    rec.outcome = timeout ? "upstream_timeout" : "upstream_error";
    relay_result_ = relay_result::upstream_failed;
    if (sse)
      append_stream_error(timeout ? 504 : 502,
                          !timeout       ? "the provider's stream broke: " + detail_
                          : total_bound_ ? "the stream ran past its time limit (timeouts.total)"
                          : before_first ? "the provider sent no data event in time"
                                         : "the provider stopped sending events (idle timeout)",
                          "upstream_error", timeout ? "upstream_timeout" : "upstream_broken");
  }
  // The whole relay was spent waiting on the provider's events.
  upstream_wait_ += clock_type::now() - ready_;
  if (before_first && data_events_ > 0) first_data_ = clock_type::now();  // in the last write
  // Binary bytes cannot carry an error: a broken one ends without its last chunk (or before
  // its Content-Length), and the connection closes, so the client sees the body cut short.
  // (An HTTP/1.0 client of a chunked provider answer gets it ended by close: nothing can say.)
  bool complete = sse || failure.failure == fail::none;
  settle_early(rec);  // before the stream's end reaches the client
  bool flushed = co_await flush_stream(chunked, complete, to.idle);
  if (!flushed) {
    rec.outcome = "client_cancelled";
    relay_result_ = relay_result::client_gone;
    co_return false;
  }
  co_return keep&& complete;
}

void exchange::build_error(int status, std::string_view message, bool keep_alive,
                           std::string_view extra_headers, bool head_request) {
  xlat_.clear();
  cdialect_->append_error_body(xlat_, status, message);
  client_head_ += "HTTP/1.1 "sv;
  append_decimal(client_head_, status);
  client_head_ += ' ';
  client_head_ += http::reason_of(status);
  client_head_ += "\r\nContent-Type: application/json\r\nContent-Length: "sv;
  append_decimal(client_head_, xlat_.size());
  client_head_ += "\r\n"sv;
  client_head_ += extra_headers;
  client_head_ += keep_alive ? "\r\n"sv : "Connection: close\r\n\r\n"sv;
  if (!head_request) client_head_ += xlat_;
}

void exchange::append_stream_error(int status, const std::string& message, std::string_view type,
                                   std::string_view code) {
  if (cdialect_)
    cdialect_->append_error_event(payload_, status, message);
  else
    sse::append_error_event(payload_, message, type, code);
}

void exchange::client_event(const sse::event& ev) {
  auto info = ctr_->translate_event(ev, payload_);
  if (ev.has_data && !info.held && data_events_++ == 0) first_event_error_ = info.error;
  terminal_seen_ = terminal_seen_ || info.terminal;
  if (info.usage.present()) usage_ = info.usage;
}

asio::awaitable<bool> exchange::write_local(const exchange_request& r,
                                            observe::request_record& rec) {
  bool keep = r.client_keep_alive && !ctx_.draining;
  client_head_.clear();
  client_head_ += "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "sv;
  append_decimal(client_head_, cenc_.req.body.size());
  client_head_ += "\r\n"sv;
  if (!answer_id_.empty()) {
    client_head_ += "x-request-id: "sv;
    client_head_ += answer_id_;
    client_head_ += "\r\n"sv;
  }
  client_head_ += keep ? "\r\n"sv : "Connection: close\r\n\r\n"sv;
  client_head_ += cenc_.req.body;
  rec.status = 200;
  settle_early(rec);  // as every answer: settled before the client can have it
  bool ok = co_await write_client(asio::buffer(client_head_), r.snap.cfg.timeouts.idle);
  if (!ok) rec.outcome = "client_cancelled";
  co_return ok&& keep;
}

asio::awaitable<exchange::attempt_outcome> exchange::send_rest(const exchange_request& r) {
  auto& src = *r.streamed;
  // The client's socket is read for the body now: a client watch would only see body bytes.
  // It is armed again (sweep) once the body is in.
  if (watch_started_) {
    ++watch_gen_;  // a pending wait ends without effect
    watch_started_ = false;
  }
  reading_client_ = true;
  upload_cut_ = false;
  attempt_outcome out;
  for (;;) {
    // One piece read from the client, then written to the provider: the client sends only as
    // fast as the provider takes the body.
    auto piece = co_await src.next();
    poll_watch();  // the provider may have answered meanwhile
    if (piece.status != body_status::more && piece.status != body_status::end) {
      body_failure_ = piece.status;
      if (piece.status == body_status::gone) client_gone_ = true;
      co_await stop_watch();
      release_upstream(false);  // the provider gets a cut request, never one that looks whole
      out = {fail::client_body, false, "the client did not send the whole upload"};
      break;
    }
    if (watch_stopped()) {  // answered (or failed) before the body's end: read as usual
      upload_cut_ = true;
      break;
    }
    bool last = piece.status == body_status::end;
    if (last && !src.chunked) break;
    if (!last && piece.bytes.empty()) continue;
    std::array<asio::const_buffer, 3> bufs;
    std::size_t n = 0;
    if (!src.chunked) {
      bufs[n++] = asio::buffer(piece.bytes.data(), piece.bytes.size());
    } else if (last) {
      bufs[n++] = asio::buffer("0\r\n\r\n"sv);
    } else {
      up_chunk_.clear();
      append_chunk_size(up_chunk_, piece.bytes.size());
      bufs[n++] = asio::buffer(up_chunk_);
      bufs[n++] = asio::buffer(piece.bytes.data(), piece.bytes.size());
      bufs[n++] = asio::buffer("\r\n"sv);
    }
    arm_upstream(up_to_.idle);
    auto ec = co_await write_watched(std::span<const asio::const_buffer>(bufs.data(), n));
    bool expired = deadline_.expired();
    deadline_.disarm();
    if (expired) {
      co_await stop_watch();
      release_upstream(false);
      out = {fail::timeout, false, "the provider did not take the upload in time"};
      break;
    }
    if (ec) {
      // The provider closed or reset the connection before the body's end: it may have
      // answered first (a 413, say); the answer is read as usual.
      upload_cut_ = true;
      break;
    }
    if (last) break;
  }
  reading_client_ = false;
  active_since_ = observe::coarse_now();
  co_return out;
}

asio::awaitable<bool> exchange::write_body_error(const exchange_request& r,
                                                 observe::request_record& rec) {
  release_upstream(false);
  rec.detail = "the client did not send the whole upload";
  http::error_kind kind = http::error_kind::bad_request;
  switch (body_failure_) {
    case body_status::gone:
      rec.outcome = "client_cancelled";
      rec.status = 499;
      co_return false;
    case body_status::timeout:
      rec.outcome = "client_timeout";
      kind = http::error_kind::request_timeout;
      detail_ = "The request body did not arrive in time.";
      break;
    case body_status::too_large:
      rec.outcome = "body_too_large";
      kind = http::error_kind::body_too_large;
      detail_ = "The request body exceeds " + std::to_string(r.snap.cfg.limits.max_body_bytes) +
                " bytes.";
      break;
    case body_status::shutdown:
      rec.outcome = "shutdown";
      kind = http::error_kind::unavailable;
      detail_ = "The gateway is shutting down; the request was not read whole.";
      break;
    case body_status::malformed:
      rec.outcome = "bad_request";
      detail_ =
          "The multipart/form-data body is malformed: a part is broken or it ends without its "
          "close delimiter.";
      break;
    case body_status::duplicate_field:
      rec.outcome = "bad_request";
      kind = http::error_kind::bad_model;
      detail_ = "The form has more than one \"model\" field.";
      break;
    default:
      rec.outcome = "bad_request";
      detail_ = "The request body is not valid HTTP framing.";
      break;
  }
  bool keep = co_await write_error(kind, detail_, false, rec);
  co_return keep;
}

}  // namespace ob::proxy
