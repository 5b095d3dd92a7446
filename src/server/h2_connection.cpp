#include "server/h2_connection.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <nghttp2/nghttp2.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "observe/log.hpp"
#include "proxy/http/errors.hpp"
#include "proxy/http/multipart.hpp"
#include "proxy/memory_pipe.hpp"
#include "proxy/parsers.hpp"
#include "server/client_connection.hpp"
#include "server/h2_translate.hpp"
#include "upstream/connection.hpp"

namespace ob::server {

namespace asio = boost::asio;
using upstream::use_tuple;
using clock_type = std::chrono::steady_clock;

namespace {

// A stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE): request body bytes a client may
// send ahead of what the HTTP/1.1 side has read.
constexpr std::uint32_t stream_window = 1 << 20;
// Answer bytes queued per stream before a write into its pipe waits (back-pressure).
constexpr std::size_t stream_high_water = 64 * 1024;
// Client RST_STREAM budget: a burst, then a steady rate (rapid reset, CVE-2023-44487).
constexpr double reset_burst = 200, reset_rate = 100;
constexpr auto h2_tick = std::chrono::milliseconds(200);
// How long a drained connection with nothing left to send waits for its client to close it.
constexpr auto drain_linger = std::chrono::seconds(2);

void log_debug(const std::string& what) {
  if (observe::log_enabled(observe::level::debug)) observe::log(observe::level::debug, what);
}

class h2_connection;

// One request stream. Once its request is complete, the near end of the memory pipe its
// client_connection is served over: the HTTP/1.1 answer written into the pipe is parsed here
// into the HTTP/2 response (take), queued for nghttp2's data callback.
struct h2_stream final : proxy::memory_pipe::near_end {
  h2_stream(h2_connection& conn, std::int32_t id, std::size_t header_limit)
      : conn(conn), id(id), head(header_limit) {}
  ~h2_stream() {
    if (pipe) pipe->reset();
  }

  void take(std::string_view bytes) override;
  bool backlogged() const override { return !closed && pending() >= stream_high_water; }
  void far_closed() override;
  void drained(std::size_t n) override;

  h2_connection& conn;
  std::int32_t id;
  h2::request_head head;
  bool over_budget = false;   // the connection's body budget was spent: answered 413
  std::size_t body_held = 0;  // bytes of this stream's body counted in the connection's budget
  std::size_t head_left = 0;  // bytes of the HTTP/1.1 head in the pipe not read yet
  std::size_t in_pipe = 0;    // body bytes in the pipe not read yet (not given back to the client)
  // A multipart body is relayed as it is read: its bytes stop counting in the budget once
  // read. Any other body is read whole by the HTTP/1.1 side and counts until the stream closes.
  bool relayed = false;
  // The body no longer goes to the pipe (the answer came first, the stream was refused or
  // reset): its DATA is given back to the client's windows at once and dropped.
  bool dropping = false;
  bool request_ended = false;  // END_STREAM received: the client sends nothing more
  bool started = false;
  // When its HEADERS began: a header block that does not end within timeouts.client_header
  // closes the connection (h2_connection::on_tick).
  clock_type::time_point begun = clock_type::now();
  bool closed = false;  // nghttp2 closed the stream (answered, or reset by either side)
  std::shared_ptr<proxy::memory_pipe> pipe;  // to the client_connection serving the request
  // The HTTP/1.1 answer: its parser, the bytes it has not consumed yet.
  proxy::http::header_list answer_headers;
  std::optional<proxy::response_parser> parser;
  boost::beast::flat_buffer answer_in;
  bool head_sent = false;
  // Answer body not yet taken by nghttp2 (from `off`).
  std::string queued;
  std::size_t off = 0;
  bool finished = false;  // the whole answer is queued
  bool broken = false;    // the answer ended early: the stream is reset once `queued` drains
  // Answer bytes nghttp2 has taken (sent), and what the connection's tick last saw of them:
  // a stream with bytes pending and no progress since `progress_at` waits on a client that does
  // not open its window (h2_connection::reset_stalled).
  std::size_t sent = 0, sent_at_tick = 0;
  clock_type::time_point progress_at = clock_type::now();

  std::size_t pending() const { return queued.size() - off; }
};

class h2_connection : public std::enable_shared_from_this<h2_connection>,
                      public multiplexed_connection {
 public:
  h2_connection(proxy::worker_context& ctx, proxy::client_stream stream,
                connection_registry& registry)
      : ctx_(ctx),
        stream_(std::move(stream)),
        registry_(registry),
        ticker_(stream_.get_executor()),
        resets_(reset_burst, reset_rate, clock_type::now()) {
    boost::system::error_code ec;
    auto peer = stream_.lowest().remote_endpoint(ec);
    if (!ec) {
      auto addr = peer.address();
      peer_ = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
      peer_ += ':';
      peer_ += std::to_string(peer.port());
    }
    stream_.lowest().set_option(asio::ip::tcp::no_delay(true), ec);
    ++ctx_.metrics.client_connections;
    registry_.add(static_cast<multiplexed_connection*>(this));
  }
  ~h2_connection() {
    registry_.remove(static_cast<multiplexed_connection*>(this));
    ctx_.metrics.http2_streams -= static_cast<std::int64_t>(streams_.size());
    streams_.clear();
    if (session_) nghttp2_session_del(session_);
    --ctx_.metrics.client_connections;
  }

  asio::awaitable<void> run();
  // A graceful shutdown: GOAWAY now (not at the next tick), the streams begun are answered,
  // and the connection stays registered (the process waits for it) until their bytes are out.
  void drain() override {
    if (session_ && !dead_ && !ending_) send_goaway();
  }
  void close() override { close_now(); }

 private:
  void send_goaway() {
    if (goaway_) return;
    goaway_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    flush();
  }
  bool setup();
  void flush();
  void end();
  void close_now();
  void on_tick();
  void reset_stalled(clock_type::time_point now);
  bool unacked_output(clock_type::time_point now);
  void start_stream(const std::shared_ptr<h2_stream>& st, bool ended);
  void on_body(h2_stream& st, const uint8_t* data, std::size_t len);
  // Flow control (automatic WINDOW_UPDATE is off): `n` DATA bytes of stream `id` are done
  // with, read by the HTTP/1.1 side or dropped; the stream's and the connection's windows get
  // them back. A closed stream: the connection's only.
  void consume(std::int32_t id, std::size_t n) {
    if (dead_ || n == 0) return;
    nghttp2_session_consume(session_, id, n);
    schedule_flush();
  }
  // The body's bytes still in the pipe are given back, and later DATA dropped.
  void drop_body(h2_stream& st) {
    st.dropping = true;
    consume(st.id, std::exchange(st.in_pipe, 0));
    release_body(st);
  }
  void answer_directly(h2_stream& st, proxy::http::error_kind kind, std::string_view message);
  void submit_head(h2_stream& st, int status, const proxy::http::header_list& headers);
  // For the pipe's near end: flushes once the caller's work is done (never inside it: a flush
  // can close streams), and coalesces the streams' output into fewer writes.
  void schedule_flush() {
    if (flush_posted_ || dead_) return;
    flush_posted_ = true;
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->flush_posted_ = false;
      self->flush();
    });
  }
  void resume_later(h2_stream& st) {
    if (dead_ || st.closed) return;
    nghttp2_session_resume_data(session_, st.id);
    schedule_flush();
  }
  void reset_later(h2_stream& st) {
    if (dead_ || st.closed) return;
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, st.id, NGHTTP2_INTERNAL_ERROR);
    schedule_flush();
  }
  friend struct h2_stream;
  h2_stream* find(std::int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }

  // nghttp2 callbacks (user_data: the connection).
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                       const uint8_t*, size_t, uint8_t, void*);
  static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd*, void*);
  static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame*, void*);
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                           nghttp2_data_source*, void*);

  proxy::worker_context& ctx_;
  proxy::client_stream stream_;
  connection_registry& registry_;
  asio::steady_timer ticker_;
  h2::reset_budget resets_;
  nghttp2_session* session_ = nullptr;
  std::map<std::int32_t, std::shared_ptr<h2_stream>> streams_;
  std::string peer_;
  std::string out_;  // the write in flight
  std::array<std::uint8_t, 16 * 1024> in_;
  bool writing_ = false, dead_ = false, goaway_ = false, flush_posted_ = false;
  bool closing_ = false;  // close once what nghttp2 has to send is written
  bool ending_ = false;   // our side is shut down; closing within a second
  clock_type::time_point ending_since_;
  clock_type::time_point settled_since_{};  // a drained connection with nothing left to send
  std::size_t header_block_ = 0;            // bytes of the header block being received
  std::size_t header_limit_ = 0, body_limit_ = 0;
  // Request body bytes the gateway holds for the open streams (tls.http2_connection_body_bytes
  // bounds them): counted from their DATA frames until read from the pipe (a relayed
  // multipart body) or until the stream closes (any other body, read whole).
  std::size_t body_held_ = 0, body_budget_ = 0;
  void release_body(h2_stream& st) {
    body_held_ -= st.body_held;
    st.body_held = 0;
  }
  clock_type::time_point idle_since_ = clock_type::now();
  std::chrono::milliseconds keepalive_{}, header_time_{};
  // A client write that makes no progress for this long ends (timeouts.idle, as an HTTP/1.1
  // client's write): a stream's answer the client's window holds back is reset, a socket write
  // the client does not take closes the connection.
  std::chrono::milliseconds send_limit_{};
  clock_type::time_point write_since_{};  // when the write in flight began
};

int h2_connection::on_begin_headers(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  auto* c = static_cast<h2_connection*>(ud);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto st = std::make_shared<h2_stream>(*c, f->hd.stream_id, c->header_limit_);
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st.get());
  c->streams_.emplace(f->hd.stream_id, std::move(st));
  ++c->ctx_.metrics.http2_streams;
  return 0;
}

int h2_connection::on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                             size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                             void* ud) {
  auto* c = static_cast<h2_connection*>(ud);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  if (auto* st = c->find(f->hd.stream_id))
    st->head.add({reinterpret_cast<const char*>(name), namelen},
                 {reinterpret_cast<const char*>(value), valuelen});
  return 0;
}

int h2_connection::on_data_chunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data,
                                 size_t len, void* ud) {
  auto* c = static_cast<h2_connection*>(ud);
  auto* st = c->find(id);
  if (!st || !st->pipe || st->dropping) {
    c->consume(id, len);  // not for any pipe: or every other stream's window would stall
    return 0;
  }
  c->on_body(*st, data, len);
  return 0;
}

void h2_connection::on_body(h2_stream& st, const uint8_t* data, std::size_t len) {
  if (body_held_ + len > body_budget_) {
    consume(st.id, len);
    drop_body(st);
    if (st.head_sent || st.finished) return reset_later(st);  // its answer began: no 413
    // The HTTP/1.1 side is told its client left (its request ends, its upstream closes) and
    // records nothing; the client gets the 413 from here, with its access line.
    st.over_budget = true;
    st.pipe->take_over();
    answer_directly(st, proxy::http::error_kind::body_too_large,
                    "The request bodies in flight on this HTTP/2 connection are over its limit "
                    "(tls.http2_connection_body_bytes); send this request once others have "
                    "finished, or on another connection.");
    return;
  }
  st.body_held += len;
  body_held_ += len;
  st.in_pipe += len;
  st.pipe->feed(std::string_view(reinterpret_cast<const char*>(data), len));
}

int h2_connection::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* ud) {
  auto* c = static_cast<h2_connection*>(ud);
  // A header block (HEADERS + CONTINUATION) is bounded as it arrives, before HPACK decodes
  // it: a CONTINUATION flood is cut here, whatever the header list would have been.
  if (hd->type == NGHTTP2_HEADERS) c->header_block_ = 0;
  if (hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION) {
    c->header_block_ += hd->length;
    if (c->header_block_ > 2 * c->header_limit_ + 16 * 1024) {
      log_debug("HTTP/2: header block over the limit, closing the connection");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return 0;
}

int h2_connection::on_frame_recv(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  auto* c = static_cast<h2_connection*>(ud);
  switch (f->hd.type) {
    case NGHTTP2_RST_STREAM:
      if (!c->resets_.spend(clock_type::now())) {
        log_debug("HTTP/2: client reset budget spent, GOAWAY");
        nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
      }
      return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      break;
    default:
      return 0;
  }
  auto it = c->streams_.find(f->hd.stream_id);
  if (it == c->streams_.end()) return 0;
  auto& st = *it->second;
  bool ended = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  st.request_ended = st.request_ended || ended;
  // Served once its request head is complete: the body follows through the pipe.
  if (!st.started) {
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
      c->start_stream(it->second, ended);
    return 0;
  }
  // The body's end (its last DATA, or trailers, which are not passed on).
  if (ended && st.pipe && !st.dropping) st.pipe->feed_end();
  return 0;
}

int h2_connection::on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* ud) {
  auto* c = static_cast<h2_connection*>(ud);
  auto it = c->streams_.find(id);
  if (it == c->streams_.end()) return 0;
  auto& st = *it->second;
  st.closed = true;
  c->release_body(st);
  // The HTTP/1.1 side sees its client leave (as on a client disconnect) and its exchange
  // closes the upstream connection. What it did not read goes back to the connection window.
  if (st.pipe) st.pipe->reset();
  c->consume(id, std::exchange(st.in_pipe, 0));
  c->streams_.erase(it);
  --c->ctx_.metrics.http2_streams;
  if (c->streams_.empty()) c->idle_since_ = clock_type::now();
  return 0;
}

int h2_connection::on_frame_send(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  auto* c = static_cast<h2_connection*>(ud);
  if (f->hd.type == NGHTTP2_RST_STREAM) {
    // A reset nghttp2 sends for the client's protocol error on a stream (DATA past its
    // content-length, say) ends the stream, and its upstream request, as the client's own reset
    // would: it spends the same budget, or a client provokes resets to get around it
    // ("MadeYouReset", CVE-2025-8671). The gateway's own resets (a broken upstream answer:
    // INTERNAL_ERROR; a shut window: CANCEL; stop sending: NO_ERROR) do not. Streams refused
    // over the concurrency limit (REFUSED_STREAM) do: they cost no upstream work, but nghttp2
    // refuses them only until the client acknowledges our SETTINGS, which nothing makes it
    // do, and each queues a reset; a client keeping within the limit it was told is never
    // refused, and the budget (200) is above the default limit (100).
    auto code = f->rst_stream.error_code;
    if (code != NGHTTP2_NO_ERROR && code != NGHTTP2_INTERNAL_ERROR && code != NGHTTP2_CANCEL &&
        !c->resets_.spend(clock_type::now())) {
      log_debug("HTTP/2: reset budget spent on the client's stream errors, GOAWAY");
      nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return 0;
  }
  if (!(f->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
      (f->hd.type != NGHTTP2_DATA && f->hd.type != NGHTTP2_HEADERS))
    return 0;
  // The answer is complete before the request (a refusal before the body was read, say): the
  // client is asked to stop sending it (RFC 9113 8.1), as an HTTP/1.1 client's connection is
  // closed.
  auto* st = c->find(f->hd.stream_id);
  if (st && !st->request_ended)
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

ssize_t h2_connection::read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                 uint32_t* flags, nghttp2_data_source* src, void*) {
  auto& st = *static_cast<h2_stream*>(src->ptr);
  std::size_t n = std::min(length, st.pending());
  if (n) {
    std::memcpy(buf, st.queued.data() + st.off, n);
    st.off += n;
    st.sent += n;
    if (st.off == st.queued.size()) {
      st.queued.clear();
      st.off = 0;
    }
    if (st.pending() < stream_high_water && st.pipe) st.pipe->writable();
  }
  if (st.pending() == 0 && st.finished) {
    if (st.broken) {
      if (n == 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
      return static_cast<ssize_t>(n);
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  } else if (n == 0) {
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

bool h2_connection::setup() {
  const auto& cfg = ctx_.current()->cfg;
  header_limit_ = cfg.limits.max_header_bytes;
  body_limit_ = cfg.limits.max_body_bytes;
  body_budget_ = cfg.tls.http2_connection_body_bytes;
  keepalive_ = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeouts.keepalive);
  header_time_ = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeouts.client_header);
  send_limit_ = std::chrono::duration_cast<std::chrono::milliseconds>(cfg.timeouts.idle);

  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // HPACK: our encoder's dynamic table stays small; the client's is bounded by our
  // SETTINGS_HEADER_TABLE_SIZE (the default 4096).
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  nghttp2_option_set_max_continuations(opt, 8);
  // nghttp2's own bound on received resets, looser than the gateway's (reset_burst,
  // reset_rate): ours decides, with the code the docs give (ENHANCE_YOUR_CALM).
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 2 * static_cast<std::uint64_t>(reset_rate));
  // Request bodies are streamed: a stream's window is given back as the HTTP/1.1 side reads
  // its body out of the pipe (consume), so a client that uploads faster than the upstream
  // takes it is held by its windows, not by gateway memory.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return false;
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg.tls.http2_max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(header_limit_)},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0)
    return false;
  // The connection's window: room for every stream's whole window at once (a stream whose
  // upstream reads slowly does not stall the others), but never more than the connection's
  // body budget (what the client has sent and the gateway not read stays within it), and
  // never under the protocol's initial 65,535.
  std::uint64_t window = std::uint64_t(cfg.tls.http2_max_concurrent_streams) * stream_window;
  window = std::clamp<std::uint64_t>(std::min<std::uint64_t>(window, body_budget_), 65535,
                                     NGHTTP2_MAX_WINDOW_SIZE);
  return nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<std::int32_t>(window)) == 0;
}

asio::awaitable<void> h2_connection::run() {
  auto self = shared_from_this();
  if (!setup()) co_return;
  flush();
  on_tick();
  while (!dead_) {
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(in_), use_tuple);
    if (ec || dead_) break;
    if (closing_ || ending_) continue;  // after our GOAWAY: read and discard until the close
    auto rv = nghttp2_session_mem_recv(session_, in_.data(), n);
    if (rv < 0) {
      // A bad preface or a connection error nghttp2 could not answer itself (a callback
      // refused a frame): a GOAWAY if one can still be sent, then close.
      log_debug(std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(rv)));
      if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
        nghttp2_session_terminate_session(session_, rv == NGHTTP2_ERR_CALLBACK_FAILURE
                                                        ? NGHTTP2_ENHANCE_YOUR_CALM
                                                        : NGHTTP2_PROTOCOL_ERROR);
      closing_ = true;
      flush();
      continue;  // the write chain ends the connection once the GOAWAY is out
    }
    flush();
  }
  close_now();
}

void h2_connection::flush() {
  if (writing_ || dead_) return;
  out_.clear();
  while (out_.size() < 64 * 1024) {
    const uint8_t* data = nullptr;
    auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      close_now();
      return;
    }
    if (n == 0) break;
    out_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  if (out_.empty()) {
    if (closing_) return end();
    if (nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_)) return;
    // Everything is out after a drain's GOAWAY: the client closes first, if it does within
    // drain_linger (on_tick ends it then). A client still reading its last answer (a paused
    // stream, the bytes in its buffers) may throw them away when the connection ends under
    // it: Node's http2 does.
    if (ctx_.draining && !ctx_.stopping) {
      if (settled_since_ == clock_type::time_point{}) settled_since_ = clock_type::now();
      return;
    }
    end();
    return;
  }
  writing_ = true;
  write_since_ = clock_type::now();
  stream_.async_write(asio::buffer(out_),
                      [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (ec) return self->close_now();
                        self->flush();
                      });
}

void h2_connection::end() {
  // Closing with unread bytes from the client makes the kernel send a reset, which can destroy
  // our GOAWAY before the client reads it: stop sending, read and discard (run()) for up to a
  // second (on_tick), then close.
  // Under TLS the close_notify alert goes first, the FIN right behind it
  // (tls_socket::close_notify): the client sees an orderly end after the GOAWAY, not a
  // truncated TLS stream.
  if (ending_ || dead_) return;
  ending_ = true;
  ending_since_ = clock_type::now();
  if (auto* tls = stream_.tls(); tls && tls->close_notify()) return;
  boost::system::error_code ec;
  stream_.lowest().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) close_now();
}

void h2_connection::close_now() {
  if (dead_) return;
  dead_ = true;
  registry_.remove(static_cast<multiplexed_connection*>(this));
  boost::system::error_code ec;
  ticker_.cancel();
  for (auto& [id, st] : streams_) {
    st->closed = true;
    release_body(*st);
    if (st->pipe) st->pipe->reset();
  }
  ctx_.metrics.http2_streams -= static_cast<std::int64_t>(streams_.size());
  streams_.clear();
  stream_.lowest().close(ec);
}

void h2_connection::on_tick() {
  if (dead_) return;
  if (ctx_.stopping) return close_now();
  auto now = clock_type::now();
  if (ending_ && now - ending_since_ >= std::chrono::seconds(1) && !unacked_output(now))
    return close_now();
  if (!ending_ && settled_since_ != clock_type::time_point{} &&
      now - settled_since_ >= drain_linger)
    end();
  // A client that does not read its socket: the write in flight has not finished.
  if (writing_ && now - write_since_ >= send_limit_) {
    log_debug("HTTP/2: a write made no progress for timeouts.idle, closing the connection");
    return close_now();
  }
  // A header block begun and never ended (no END_HEADERS): its stream keeps the connection
  // out of keepalive's reach, and nothing else may come until it ends. Cut after
  // timeouts.client_header, as an HTTP/1.1 head is.
  for (const auto& [id, st] : streams_)
    if (!st->started && !st->closed && now - st->begun >= header_time_) {
      log_debug("HTTP/2: a header block did not end within timeouts.client_header, closing");
      return close_now();
    }
  reset_stalled(now);
  if (dead_) return;
  if (!goaway_ && !ending_ &&
      (ctx_.draining || (streams_.empty() && now - idle_since_ >= keepalive_))) {
    // Graceful: streams already begun are answered; the connection closes after them.
    send_goaway();
    if (dead_) return;
  }
  ticker_.expires_after(h2_tick);
  ticker_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->on_tick();
  });
}

bool h2_connection::unacked_output(clock_type::time_point now) {
  // Bytes written but not yet taken by the client (a slow reader's shut TCP window) would be
  // lost if the socket closed now: the client's next frame (a WINDOW_UPDATE as it reads)
  // reaching a closed socket gets a reset, which drops them. So the close waits for them, as
  // long as a write may (timeouts.idle).
  int queued = 0;
  if (ioctl(stream_.lowest().native_handle(), SIOCOUTQ, &queued) != 0 || queued <= 0) return false;
  return now - ending_since_ < send_limit_;
}

void h2_connection::reset_stalled(clock_type::time_point now) {
  bool reset = false;
  for (auto& [id, st] : streams_) {
    if (st->closed) continue;
    // Waiting only counts while the client's window holds the answer back: bytes or the end
    // to send (a finished answer's END_STREAM waits on the window too), nothing taken since the
    // last tick, and the stream's or the connection's window shut. A stream that waits its turn
    // behind the others, or behind a write in flight, is not stalled (the write's own limit
    // covers a client that stops reading its socket).
    const bool waiting = st->pending() > 0 || st->finished;
    if (!waiting || st->sent != st->sent_at_tick ||
        (nghttp2_session_get_stream_remote_window_size(session_, id) > 0 &&
         nghttp2_session_get_remote_window_size(session_) > 0)) {
      st->sent_at_tick = st->sent;
      st->progress_at = now;
    } else if (now - st->progress_at >= send_limit_) {
      // Its answer has waited on the client's flow-control window for timeouts.idle: the
      // stream is given up, as an HTTP/1.1 write that long is (its HTTP/1.1 side, blocked on
      // the full pipe, has met the same limit). Once, whatever nghttp2 does with the reset.
      st->progress_at = clock_type::time_point::max();
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      reset = true;
    }
  }
  if (reset) {
    log_debug("HTTP/2: a stream's answer waited on the client's window for timeouts.idle, reset");
    flush();
  }
}

void h2_connection::answer_directly(h2_stream& st, proxy::http::error_kind kind,
                                    std::string_view message) {
  // A HEAD answer is the same head (content-length is the would-be body's) without content
  // (RFC 9110 9.3.2): its HEADERS end the stream. DATA after them would make the answer
  // malformed (RFC 9113 8.1.1), and nghttp2 clients reset the stream over it.
  const bool head_request = st.head.is_head();
  std::string json;
  proxy::http::append_error_body(json, kind, message);
  if (!head_request) st.queued.append(json);
  st.finished = true;
  // Not seen by a client_connection: its access line is written here.
  observe::request_record rec;
  rec.method = st.head.method().empty() ? std::string_view("-") : st.head.method();
  rec.path = st.head.path().substr(0, st.head.path().find('?'));
  if (rec.path.empty()) rec.path = "-";
  rec.status = proxy::http::status_of(kind);
  rec.bytes_out = head_request ? 0 : json.size();
  rec.outcome = kind == proxy::http::error_kind::body_too_large ? "body_too_large" : "bad_request";
  rec.detail = message;
  rec.client = peer_;
  rec.protocol = "h2";
  observe::access_log(rec);
  // And in the request metrics, as the same answer over HTTP/1.1 (refused before routing: no
  // group, so only openbridge_requests_total by status).
  observe::metrics::request_sample sample;
  sample.status = rec.status;
  ctx_.metrics.record(sample);
  auto status = std::to_string(proxy::http::status_of(kind));
  auto length = std::to_string(json.size());
  auto nv = [](std::string_view n, std::string_view v) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  nghttp2_nv head[] = {nv(":status", status), nv("content-type", "application/json"),
                       nv("content-length", length)};
  nghttp2_data_provider body{};
  body.source.ptr = &st;
  body.read_callback = read_body;
  nghttp2_submit_response(session_, st.id, head, std::size(head), head_request ? nullptr : &body);
}

void h2_connection::start_stream(const std::shared_ptr<h2_stream>& st, bool ended) {
  st->started = true;
  idle_since_ = clock_type::now();
  if (st->head.too_large())
    return answer_directly(*st, proxy::http::error_kind::header_too_large,
                           "The request header list is too large.");
  if (st->head.bad())
    return answer_directly(*st, proxy::http::error_kind::bad_request,
                           "The request has a header field HTTP/1.1 cannot carry.");
  if (st->head.host_conflict())
    return answer_directly(*st, proxy::http::error_kind::bad_request,
                           "The request's host header differs from its :authority.");
  // The body follows the head through the pipe as its DATA arrive: with the client's
  // content-length (nghttp2 holds the DATA to it), else chunked. A length over
  // limits.max_body_bytes is answered 413 by the HTTP/1.1 side without reading: its DATA
  // are dropped.
  auto length = st->head.content_length();
  std::string request = ended    ? st->head.finish(0)
                        : length ? st->head.finish(*length)
                                 : st->head.finish_chunked();
  if (!ended && length && *length > body_limit_) st->dropping = true;
  st->relayed = proxy::http::is_multipart(st->head.content_type());
  st->head_left = request.size();

  st->parser.emplace(
      st->answer_headers,
      [](void* p, std::string_view bytes) { static_cast<h2_stream*>(p)->queued.append(bytes); },
      st.get());
  st->parser->eager(true);
  st->parser->header_limit(64 * 1024);
  st->parser->body_limit(boost::none);
  st->parser->skip(st->head.is_head());
  st->pipe = std::make_shared<proxy::memory_pipe>(stream_.get_executor());
  st->pipe->attach(st.get());
  st->pipe->feed(std::move(request));
  if (!ended && !length) st->pipe->frame_chunks();
  if (ended || st->dropping) st->pipe->feed_end();

  auto conn = std::make_shared<client_connection>(
      ctx_, proxy::client_stream(st->pipe, stream_.get_executor()), registry_);
  conn->set_peer(peer_, "h2");
  asio::co_spawn(
      stream_.get_executor(), [conn]() -> asio::awaitable<void> { co_await conn->run(); },
      [conn](std::exception_ptr e) {
        if (!e) return;
        observe::log(observe::level::error, "HTTP/2 stream failed");
        conn->abandon();
      });
}

void h2_connection::submit_head(h2_stream& st, int status, const proxy::http::header_list& hs) {
  std::string status_text = std::to_string(status);
  std::vector<std::string> names;
  names.reserve(hs.size());
  std::vector<nghttp2_nv> nva;
  nva.reserve(hs.size() + 1);
  auto nv = [](std::string_view n, std::string_view v) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  nva.push_back(nv(":status", status_text));
  for (std::size_t i = 0; i < hs.size(); ++i) {
    if (h2::connection_specific(hs.name(i))) continue;
    std::string& lower = names.emplace_back(hs.name(i));
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    nva.push_back(nv(lower, hs.value(i)));
  }
  nghttp2_data_provider body{};
  body.source.ptr = &st;
  body.read_callback = read_body;
  // nghttp2 copies the names and values.
  nghttp2_submit_response(session_, st.id, nva.data(), nva.size(), &body);
}

void h2_stream::take(std::string_view bytes) {
  if (closed || finished || !parser) return;  // past the answer's end: dropped
  auto& p = *parser;
  boost::system::error_code ec;
  // Parsed straight from the write's bytes when nothing is left over from the last one.
  if (answer_in.size() == 0) {
    while (!bytes.empty() && !p.is_done() && proxy::ready_to_feed(p, bytes.size())) {
      auto used = p.put(asio::buffer(bytes.data(), bytes.size()), ec);
      bytes.remove_prefix(used);
      if (ec || used == 0) break;
    }
    if (ec == boost::beast::http::error::need_more) ec = {};
  }
  if (!ec && !bytes.empty() && !p.is_done()) {
    auto b = answer_in.prepare(bytes.size());
    std::memcpy(b.data(), bytes.data(), bytes.size());
    answer_in.commit(bytes.size());
    while (answer_in.size() && !p.is_done() && proxy::ready_to_feed(p, answer_in.size())) {
      auto used = p.put(answer_in.data(), ec);
      answer_in.consume(used);
      if (ec || used == 0) break;
    }
    if (ec == boost::beast::http::error::need_more) ec = {};
  }
  if (p.is_header_done() && !head_sent && !ec) {
    head_sent = true;
    conn.submit_head(*this, p.status(), answer_headers);
  }
  if (ec || p.is_done()) {
    finished = true;
    broken = !p.is_done();
    answer_in = {};
    if (!head_sent) return conn.reset_later(*this);
  }
  if (head_sent) conn.resume_later(*this);
}

void h2_stream::drained(std::size_t n) {
  auto head = std::min(n, head_left);
  head_left -= head;
  // Never more than the pipe holds: drop_body gives back (and zeroes) what is in the pipe, so
  // a drain after it has nothing left to give back.
  n = std::min(n - head, in_pipe);
  if (!n) return;
  in_pipe -= n;
  conn.consume(id, n);
  if (relayed) {  // relayed upstream as it is read: no longer held here
    auto k = std::min(n, body_held);
    body_held -= k;
    conn.body_held_ -= k;
  }
}

void h2_stream::far_closed() {
  // The client_connection closed its end: the answer ends here, complete or cut short. The
  // body it did not read is dropped (given back to the client's windows).
  conn.drop_body(*this);
  if (closed || finished) return;
  finished = true;
  broken = !parser || !parser->is_done();
  if (!head_sent) return conn.reset_later(*this);
  conn.resume_later(*this);
}

}  // namespace

void serve_h2(proxy::worker_context& ctx, proxy::client_stream stream,
              connection_registry& registry) {
  auto conn = std::make_shared<h2_connection>(ctx, std::move(stream), registry);
  asio::co_spawn(
      ctx.executor, [conn]() -> asio::awaitable<void> { co_await conn->run(); },
      [](std::exception_ptr e) {
        if (e) observe::log(observe::level::error, "HTTP/2 connection failed");
      });
}

}  // namespace ob::server
