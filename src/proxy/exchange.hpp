// The upstream half of a proxied request, after the client's request was read, authorized and
// routed: pick a target, send the rewritten request over a pooled connection, relay the answer
// (buffered JSON rewrite, or SSE event by event), return the connection to the pool.
//
// Phases, in order (each returns early with an error answer to the client when it fails):
//   pick        round robin inside the group
//   connect     pooled connection, or resolve + connect + TLS within timeouts.connect
//   send        one gathered write: head, body up to "model", new value, rest of body; a
//               streamed upload (exchange_request::streamed): that for the prefix read so far,
//               then the rest of the body relayed as the client sends it. What the first write
//               does not take goes out while the upstream is read (the watch): an answer head
//               that arrives first stops the write, is relayed, and the connection is closed
//   head        upstream status line + headers within timeouts.first_byte; a reused connection
//               that fails here before any byte arrived is retried once on a fresh connection
//   relay       text/event-stream 2xx: stream events (proxy/stream.cpp); binary 2xx (audio/*,
//               image/*, video/*, application/octet-stream): relayed as it arrives;
//               anything else: read whole, rewrite a JSON answer's model, reply with its length
//   release     connection back to the pool when the answer was complete and keep-alive
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "dialect/client.hpp"
#include "dialect/codec.hpp"
#include "observe/log.hpp"
#include "proxy/body_source.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/context.hpp"
#include "proxy/deadline.hpp"
#include "proxy/http/errors.hpp"
#include "proxy/json/usage.hpp"
#include "proxy/parsers.hpp"
#include "proxy/sse/framer.hpp"
#include "proxy/sse/rewrite.hpp"
#include "routing/policies/select.hpp"
#include "routing/retry.hpp"

namespace ob::proxy {

class admission;

// Ends a request for keys and limits (its usage to the ledger, its reservations settled or
// released). The exchange calls it once, just before the answer's last write (a buffered
// answer's only write; a stream's write of its final event, or of its end), with the usage
// known by then: a client that holds the whole answer never meets its own reservation.
class settle_hook {
 public:
  virtual void settle_now(const observe::request_record& rec) = 0;

 protected:
  ~settle_hook() = default;
};

struct exchange_request {
  const request_data& req;
  json::span model;        // the model value token in req.body
  json::usage_plan usage;  // edits that ask a stream's provider for usage (may be none)
  const routing::group& group;
  const snapshot& snap;
  bool client_keep_alive = true;
  // x-ratelimit-* of the client's key for the answer ("" = none); provider ones are dropped then.
  std::string_view rate_headers = {};
  // Set for a group with provider limits: each attempt's target is admitted through it.
  admission* admit = nullptr;
  const std::shared_ptr<const snapshot>* snap_ptr = nullptr;
  // `model` spans a bare form field value (multipart/form-data), not a JSON string token: the
  // provider's name goes in unquoted.
  bool model_raw = false;
  // Called before the answer's last write (see settle_hook); null: the caller settles at the end.
  settle_hook* settle = nullptr;
  // A multipart upload relayed as it arrives: req.body is only its prefix (up to the `model`
  // part and a little more), the source gives the rest. Failover stays possible until the
  // first attempt starts relaying the rest (body_source::started); after that a failure is a
  // 502/504 and a retryable answer (429, 5xx) goes to the client as it is.
  body_source* streamed = nullptr;
};

// The worker's sweep loop (server::worker::flush_loop) as requests see it: it ticks every
// 20 ms while a request is in flight (exchange::sweep needs that resolution) or access log
// lines wait in the buffer, and otherwise sleeps long. A request that starts while it sleeps
// wakes it. Worker thread only.
class sweep_waker {
 public:
  // A request needs the 20 ms tick: only a flag check while the loop ticks that fast; else the
  // loop's long wait is cancelled, so it resumes at once and waits 20 ms from then on.
  void need_fast() {
    if (!fast_) [[unlikely]]
      wake();
  }
  // The loop's side: the timer it waits on, and after each tick whether it waits 20 ms.
  void attach(boost::asio::steady_timer* timer) { timer_ = timer; }
  void set_fast(bool fast) { fast_ = fast; }
  bool fast() const { return fast_; }

 private:
  void wake() {
    fast_ = true;
    if (timer_) timer_->cancel();
  }
  boost::asio::steady_timer* timer_ = nullptr;
  bool fast_ = false;
};

class exchange {
 public:
  exchange(worker_context& ctx, client_stream& client, deadline& dl);
  // The worker's sweep loop, woken when a request starts while it sleeps (see sweep()).
  void set_waker(sweep_waker* w) { waker_ = w; }
  // The client connection's read buffer: released while a stream is relayed (an idle stream
  // then costs 4 KiB less; the next request allocates it again).
  void set_client_buffer(boost::beast::flat_buffer* b) { client_in_ = b; }
  // The client connection's current request: write_error answers a HEAD without a body.
  void set_client_request(const request_data* r) { client_req_ = r; }
  // Per request, before anything is answered: when the request arrived (precise clock, for
  // Server-Timing and the latency metrics) and its id (sent upstream, and on every answer
  // unless `on_answers` is false: config headers.request_id; the view must stay valid until
  // the request ends).
  void begin(std::chrono::steady_clock::time_point arrived, std::string_view request_id,
             bool on_answers = true) {
    arrived_ = arrived;
    request_id_ = request_id;
    answer_id_ = on_answers ? request_id : std::string_view{};
  }
  // Per request, before anything is answered: the client's dialect (dialect/client.hpp,
  // chosen by the request path; nullptr = OpenAI). Error answers and stream error events take
  // its shape, and each attempt's request and answer go through it.
  void set_client_dialect(const dialect::client_codec* c) { cdialect_ = c; }
  const dialect::client_codec* client_dialect() const { return cdialect_; }
  // The connection object that owns this exchange: kept alive by pending watch handlers.
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  // Runs the request to its end. Returns whether the client connection may be reused. `r` is
  // taken by value: callers may hand over the awaitable without keeping `r` alive.
  boost::asio::awaitable<bool> run(exchange_request r, observe::request_record& rec);

  boost::asio::awaitable<bool> write_raw(std::string_view data, std::chrono::milliseconds limit);
  std::uint64_t bytes_out() const { return bytes_out_; }
  void reset_bytes_out() { bytes_out_ = 0; }

  // Writes a gateway error answer; returns whether the connection may stay open.
  boost::asio::awaitable<bool> write_error(http::error_kind k, std::string_view message,
                                           bool keep_alive, observe::request_record& rec,
                                           std::string_view extra_headers = {});

  // Called by the worker every 20 ms while a request is in flight (run() wakes its loop when
  // it sleeps): a request with the upstream for a while gets its client watched, so a client
  // that leaves closes the upstream connection (within ~40 ms). Returns whether a request is
  // in flight (the loop keeps its 20 ms tick).
  bool sweep(std::chrono::steady_clock::time_point now);

  // A request that waits for its key's capacity before run() (limits.max_wait): its client is
  // watched meanwhile as one with the upstream is (armed at once: the wait is long), and
  // `wake`, the timer the wait sleeps on, is cancelled when the client leaves (client_gone()),
  // so the wait ends then rather than at its turn. end_wait() stops the watch when the wait
  // ends (run() arms its own).
  void watch_wait(boost::asio::steady_timer& wake);
  void end_wait();
  // The client watch saw the client leave, or a write to it failed.
  bool client_gone() const { return client_gone_; }

  // Releases memory grown by an unusually large request/answer.
  void trim();

  // Inside run(): a request is with the upstream (or relaying its answer).
  bool busy() const { return active_; }
  // The pool key of the provider connection in use, "" when none (for the metrics).
  std::string_view upstream_origin() const {
    return up_ && target_ ? std::string_view(target_->pool_key) : std::string_view();
  }
  // Shutdown grace over (worker_context::stopping is set): closes the upstream connection, so
  // the pending upstream operation fails and run() ends the request with a 503 or, for a
  // stream already relayed, an error event.
  void cut();

 private:
  // buffered: read whole, JSON model rewritten; stream: SSE, rewritten event by event; raw: a
  // 2xx binary answer (audio, images, octet-stream), relayed as it arrives, unchanged.
  enum class mode { undecided, buffered, stream, raw };
  enum class framing { length, chunked, close_delimited };
  // client_body: a streamed upload failed on the client's side (body_failure_ says how).
  enum class fail { none, connect, tls, timeout, broken, too_large, client_gone, client_body };
  enum class relay_result { ok, upstream_failed, client_gone };
  static routing::failure_kind kind_of(fail f);
  static const char* fail_name(fail f);
  // Why an attempt failed: a literal, or a composed message (an error's text appended). An
  // outcome is moved several times per request (through each read's completion and each
  // coroutine's return), so a move is two pointers, not a std::string's.
  class fail_detail {
   public:
    fail_detail() = default;
    fail_detail(const char* literal) : literal_(literal) {}
    fail_detail(std::string text) : text_(std::make_unique<std::string>(std::move(text))) {}
    fail_detail(const fail_detail& o)
        : literal_(o.literal_),
          text_(o.text_ ? std::make_unique<std::string>(*o.text_) : nullptr) {}
    fail_detail(fail_detail&&) noexcept = default;
    fail_detail& operator=(const fail_detail& o) { return *this = fail_detail(o); }
    fail_detail& operator=(fail_detail&&) noexcept = default;
    std::string_view view() const {
      return text_ ? std::string_view(*text_) : std::string_view(literal_);
    }
    bool empty() const { return view().empty(); }

   private:
    const char* literal_ = "";
    std::unique_ptr<std::string> text_;
  };
  struct attempt_outcome {
    fail failure = fail::none;
    bool retryable = false;  // a reused connection failed before the request was fully sent
    fail_detail detail;
  };

  // Failover across the group's targets (proxy/exchange_run.cpp).
  // `now`: a coarse reading (observe::coarse_now) at the request's start.
  void begin_request(const exchange_request& r, std::chrono::steady_clock::time_point now);
  // Provider limits (r.admit set): the first target from `sel` on with room, reserved.
  boost::asio::awaitable<std::optional<routing::selection>> admit_target(
      const exchange_request& r, std::optional<routing::selection> sel);
  void reset_answer_state();
  // The answer's usage so far into `rec` (prompt/completion/total tokens).
  void note_usage(observe::request_record& rec);
  // Before the answer's last write: the request's settle_hook, once.
  void settle_early(observe::request_record& rec);
  // `now`: a coarse reading taken when `t` was picked (its deadlines count from it).
  void use_target(const routing::target& t, const config::timeouts& global,
                  std::chrono::steady_clock::time_point now, observe::request_record& rec);
  void note_attempt(const routing::target& t, std::string_view what);
  // An answer that failed (`f`) after its head, before any of it went to the client, counted
  // like one that failed before it: the target's health, the attempt's trace and metrics, the
  // connection closed. True when another target may take the request (may_retry aside).
  bool failed_after_head(const routing::group& g, const routing::target& t,
                         const routing::selection& sel, fail f);
  // Counts an attempt's outcome for the metrics, and its wait on the provider.
  void end_attempt(const routing::group& g, const routing::target& t, std::string_view outcome);
  // The answer is about to go to the client: its time is set for Server-Timing and metrics.
  void answer_ready();
  // The stream's head, held for its first data event, goes out now with what came before that
  // event: hold_until has passed and the last read brought whole bytes for the client (the
  // held bytes were held_before before it).
  bool release_held_stream(std::chrono::steady_clock::time_point hold_until,
                           std::size_t held_before);
  std::size_t held_stream_size() const;  // client bytes held for the stream's first event
  // Notes the provider's x-ratelimit-remaining-* answer headers for the metrics.
  void note_rate_limits(const routing::target& t);
  std::optional<std::chrono::milliseconds> retry_after() const;
  // One try on `t`; a retry passes allow_pooled=false to get a fresh connection.
  boost::asio::awaitable<attempt_outcome> attempt(const exchange_request& r,
                                                  const routing::target& t, bool allow_pooled);
  // A streamed upload: relays the rest of the body after its prefix (attempt() sent that).
  // fail::none once the body is sent whole, or when the provider stopped taking it but may
  // have answered (upload_cut_ set: the answer is read as usual).
  boost::asio::awaitable<attempt_outcome> send_rest(const exchange_request& r);
  // The answer to a streamed upload the client did not complete (body_failure_).
  boost::asio::awaitable<bool> write_body_error(const exchange_request& r,
                                                observe::request_record& rec);
  boost::asio::awaitable<bool> fail_before_answer(const attempt_outcome& o,
                                                  const exchange_request& r,
                                                  observe::request_record& rec);
  // The helpers that return `auto` are deferred operations, not coroutines: they run inside
  // the awaiting coroutine's frame (no frame allocation per read or write). Await them at
  // once (read_upstream arms its deadline when called).
  //
  // Writes `buffers` to the client within `limit`; completes with false when the client is
  // gone or stalled.
  template <class Buffers>
  auto write_client(const Buffers& buffers, std::chrono::milliseconds limit);
  bool end_client_write(boost::system::error_code ec, std::size_t n);
  // Writes client_head_ (if any) and payload_ as the next piece of a stream; clears both.
  auto flush_stream(bool chunked, bool last, std::chrono::milliseconds limit);
  attempt_outcome parse_buffered();
  void start_parser();
  void decide_mode();
  static bool only_chunked(const http::header_list& h);
  void on_event(const sse::event& ev);
  // An OpenAI event for the client: model rewrite, usage, final and error event detection.
  void relay_event(const sse::event& ev, sse::usage_strip* strip);
  // Codec target: this attempt's upstream request and answer translator; a refusal is
  // returned (bad_request, unsupported; its message in codec_refusal_) and nothing is sent.
  dialect::codec_status prepare_codec(const exchange_request& r, const routing::target& t);
  // prepare_codec, and on a refusal: the attempt noted, codec_refused_ set; false.
  bool codec_ready(const exchange_request& r, const routing::target& t);
  // Client dialect: this attempt's request for `t` (passthrough, translated or answered here)
  // and its answer translator; a refusal is noted like codec_ready's. False: skip the target.
  bool client_ready(const exchange_request& r, const routing::target& t);
  // Client dialect: an upstream SSE event translated into the client's events.
  void client_event(const sse::event& ev);
  // Client dialect: a request the codec answered itself (count_tokens estimate).
  boost::asio::awaitable<bool> write_local(const exchange_request& r, observe::request_record& rec);
  // A gateway error answer (status, message) in the client's dialect, as client_head_.
  void build_error(int status, std::string_view message, bool keep_alive,
                   std::string_view extra_headers, bool head_request);
  // A terminal error event for a stream under way, in the client's dialect.
  void append_stream_error(int status, const std::string& message, std::string_view type,
                           std::string_view code);
  // Codec target: the buffered answer in resp_body_ replaced by its OpenAI translation (a
  // failure's message in codec_refusal_).
  dialect::codec_status translate_buffered();
  // A status the codec maps (e.g. 529 -> 503): its own reason phrase then.
  void set_client_status(int status) {
    if (status == answer_status_) return;
    answer_status_ = status;
    answer_reason_.clear();
  }
  // Codec target: what the translator reports of the events it appended to payload_ (the
  // OpenAI event inspection of relay_event, which they skip).
  void note_translated(const dialect::event_info& info);
  // No target took the request (codec_refusal_): 400 naming the parameter a codec cannot
  // express, or 404 for an endpoint the codec does not serve.
  boost::asio::awaitable<bool> write_refusal(const exchange_request& r,
                                             observe::request_record& rec);
  void stop_watching_client();
  boost::asio::awaitable<bool> relay_buffered(const exchange_request& r,
                                              observe::request_record& rec);
  boost::asio::awaitable<bool> relay_stream(const exchange_request& r,
                                            observe::request_record& rec);
  // Writes resp_headers_/resp_body_ with answer_status_ (model rewritten when JSON).
  auto write_buffered(const exchange_request& r, observe::request_record& rec);
  // A retryable error answer is read whole and kept: if every later attempt fails without an
  // answer, the client gets this one rather than a gateway error.
  boost::asio::awaitable<void> keep_answer();
  boost::asio::awaitable<bool> write_kept_answer(const exchange_request& r,
                                                 observe::request_record& rec);
  // Reads and parses more upstream bytes; completes with fail::none when the parser made
  // progress. begin_read arms the deadline and returns the buffer to read into; end_read
  // handles the completion.
  auto read_upstream(std::chrono::milliseconds limit);
  boost::asio::mutable_buffer begin_read(std::chrono::milliseconds limit);
  // Arms the deadline for the next upstream read or write: `limit` from now, and never past
  // the attempt's total.
  void arm_upstream(std::chrono::milliseconds limit);
  attempt_outcome end_read(boost::system::error_code ec, std::size_t n);
  // end_read without the deadline: `expired` says whether it ran out.
  attempt_outcome take_read(boost::system::error_code ec, std::size_t n, bool expired);
  // A provider read that waits after a read that drained the socket
  // (upstream::connection::read_some; plain or TLS) is not woken by a RST that came with the
  // last bytes.
  // sweep() looks at a read waiting longer than a second, once a second, with a poll; when
  // that finds the socket readable (an end, an error or bytes), the read is cancelled and
  // end_read reads the socket itself (redo_read).
  void check_stalled_read(std::chrono::steady_clock::time_point now);
  void redo_read(boost::system::error_code& ec, std::size_t& n);

  // A request body that does not go out in one write is written while the upstream is read
  // (the watch), so an answer that comes before the body's end (an early 413 or 401, a proxy
  // that answers and closes) is relayed rather than lost to a write the provider never reads.
  // arm_watch starts a read beside the write; write_watched writes `bufs` and completes when
  // the write is done or, once an answer head arrived (or the read failed), when the write
  // was cancelled: then its error is operation_aborted (or the socket's). The read left
  // pending after a complete write ends in end_watch (within `limit`) or stop_watch (dropped).
  void arm_watch();
  void poll_watch();  // a completed watch read parsed, and the next one armed while useful
  boost::asio::awaitable<boost::system::error_code> write_watched(
      std::span<const boost::asio::const_buffer> bufs);
  boost::asio::awaitable<attempt_outcome> end_watch(std::chrono::milliseconds limit);
  boost::asio::awaitable<void> stop_watch();
  boost::asio::awaitable<void> wait_wake();
  // The watch read stopped: an answer head arrived, or the read failed (watch_out_).
  bool watch_stopped() const {
    return watch_out_.failure != fail::none || parser_->is_header_done();
  }

  // `body_len`: the Content-Length, or chunked_body for Transfer-Encoding: chunked.
  static constexpr std::size_t chunked_body = static_cast<std::size_t>(-1);
  void build_upstream_head(const exchange_request& r, const routing::target& t,
                           std::size_t body_len);
  // `opts`: config "headers" (the x-openbridge-* headers, Server-Timing).
  void append_client_head(framing f, std::size_t content_length, bool keep_alive,
                          const config::header_options& opts);
  static void on_body(void* self, std::string_view bytes);
  // A stream's body bytes, as one parse of the upstream buffer yields them (one piece per
  // chunk of a chunked answer), are gathered and fed to the framer once per parse: providers
  // send one chunk per event, and a read holds several.
  void hold_stream_bytes(std::string_view bytes);
  void feed_held_stream_bytes();
  void on_stream_bytes(std::string_view bytes);
  // payload_'s memory from and back to the worker's spare buffers (worker_context): taken when
  // events are about to be written into an empty payload_ without memory, given back (emptied)
  // when its client write completes.
  void take_payload();
  void give_back_payload();
  void watch_client();
  // What the watch does when the client left: the upstream closed, a wait woken.
  void client_left();
  void release_upstream(bool reusable);

  worker_context& ctx_;
  client_stream& client_;
  deadline& deadline_;
  std::weak_ptr<void> owner_;
  boost::beast::flat_buffer* client_in_ = nullptr;
  const request_data* client_req_ = nullptr;

  std::unique_ptr<upstream::connection> up_;
  const routing::target* target_ = nullptr;
  std::optional<response_parser> parser_;
  http::header_list resp_headers_;
  mode mode_ = mode::undecided;
  byte_buffer resp_body_;
  bool body_too_large_ = false;
  std::size_t max_response_ = 0;

  // streaming state
  sse::framer framer_;
  sse::stream_shape shape_;  // skips the JSON parse of events shaped like the previous one
  std::string payload_;      // rewritten events waiting for the next client write
  // hold_stream_bytes: the parse's only piece so far (a view of the upstream buffer); once
  // there is more than one, the pieces are joined in the worker's stream_gather.
  std::string_view stream_held_;
  bool stream_joined_ = false;
  std::string_view group_literal_;
  std::string_view rate_headers_;  // the request's x-ratelimit-* for the client ("" = none)
  bool terminal_seen_ = false;
  json::token_usage usage_;
  sse::usage_strip strip_;         // removes the usage chunk the gateway asked for
  bool strip_usage_ = false;       // ... when this request's plan injected the ask
  settle_hook* settle_ = nullptr;  // this request's, until called

  // Timings (precise clock): the request's arrival, the current attempt's start, and the
  // moment the answer was ready to go to the client (buffered: read whole; stream: its first
  // event); upstream_wait_ sums the time spent waiting on providers.
  std::chrono::steady_clock::time_point arrived_{}, attempt_start_{}, ready_{};
  // A stream whose head went out before its first data event (release_held_stream): when that
  // event was written (the time to the first token), else unset; no_head_ttft_: the time to
  // first token is first_data_'s, not the head's (none when no data event came).
  std::chrono::steady_clock::time_point first_data_{};
  bool no_head_ttft_ = false;
  std::chrono::steady_clock::duration upstream_wait_{};
  bool attempt_open_ = false;  // attempt_start_'s wait is not in upstream_wait_ yet
  std::string_view request_id_;
  std::string_view answer_id_;  // request_id_, or empty when answers do not carry it
  std::string extra_headers_;   // error answers: the request id and the caller's headers

  std::string up_head_;  // upstream request head
  // The upstream request's pieces (attempt): head, the body around its edits, a chunked
  // upload's CRLF. Members, not locals of attempt(): its coroutine frame then stays within
  // what Asio's per-thread frame cache recycles (1,020 bytes), instead of a malloc and a free
  // per request.
  json::edit up_edits_[json::usage_plan::max_edits + 1];
  std::array<boost::asio::const_buffer, 3 + 2 * (json::usage_plan::max_edits + 1)> up_out_;
  std::string client_head_;  // client answer head / small answers
  std::string chunk_prefix_;
  std::string detail_;  // failure cause, referenced by the request record
  // The pieces of the client write in progress (write_buffered, flush_stream): passed as a
  // span, so the deferred write does not copy them around.
  std::array<boost::asio::const_buffer, 2 + 2 * json::answer_info::max_models> client_out_;
  std::chrono::steady_clock::time_point request_deadline_;  // timeouts.total of the request
  std::chrono::steady_clock::time_point total_deadline_;    // ... and of the current attempt
  bool total_bound_ = false;  // the read armed last ends at total_deadline_, not its own limit
  struct upstream_timeouts {
    std::chrono::milliseconds connect, first_byte, idle, total, pool_idle;
  } up_to_{};  // the current target's (provider overrides or global)
  bool client_gone_ = false;
  // A streamed upload: the client's socket is read for the body (no client watch meanwhile);
  // how the client's side failed; the provider stopped taking the body before its end.
  bool reading_client_ = false;
  body_status body_failure_ = body_status::end;
  bool upload_cut_ = false;
  std::string up_chunk_;  // a streamed chunked upload: the current chunk's size line
  // The watch (arm_watch): its read's state and result, the write beside it, and the timer
  // the attempt waits on for either (cancelled by their completions).
  boost::asio::steady_timer wake_;
  bool read_pending_ = false, read_done_ = false, write_done_ = false;
  // read_upstream's read: when it began (max: none waits), when sweep() last looked at it,
  // whether sweep() cancelled it (check_stalled_read).
  std::chrono::steady_clock::time_point up_read_since_ =
      std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point up_read_checked_{};
  bool up_read_kicked_ = false;
  boost::system::error_code read_ec_, write_ec_;
  std::size_t read_n_ = 0;
  attempt_outcome watch_out_;
  // This attempt's time spent writing a body that did not go out at once (a streamed upload:
  // waiting on the client too): not the provider's latency.
  std::chrono::steady_clock::duration upload_time_{};
  std::uint64_t watch_gen_ = 0;
  sweep_waker* waker_ = nullptr;
  bool active_ = false;                             // inside run()
  bool watch_started_ = false;                      // the client watch was armed for this request
  boost::asio::steady_timer* wait_wake_ = nullptr;  // watch_wait's timer, until end_wait
  std::chrono::steady_clock::time_point active_since_{};
  bool received_any_ = false;
  int attempts_ = 0;
  int answer_status_ = 0;
  std::string answer_reason_;
  struct kept_answer {
    bool valid = false;
    int status = 0;
    std::string reason;
    http::header_list headers;
    byte_buffer body;
    const routing::target* target = nullptr;
  } kept_;
  relay_result relay_result_ = relay_result::ok;
  int data_events_ = 0;             // SSE events with data seen in this answer
  bool first_event_error_ = false;  // the first of them reported an error
  std::vector<std::size_t> tried_;  // target indices tried by this request
  routing::request_picks picks_;    // its picks' state: failovers continue its round-robin turn
  std::string trace_;               // "name:what,..." per failed attempt, for the log
  std::uint64_t bytes_out_ = 0;

  // Codec targets only (routing::target::codec set); untouched on the pass-through path.
  std::unique_ptr<dialect::answer_translator> tr_;  // this attempt's answer translator
  // The previous codec attempt's translator, which the next one resets and reuses.
  std::unique_ptr<dialect::answer_translator> spare_tr_;
  dialect::request_out enc_;             // this attempt's upstream request
  std::string xlat_;                     // translated body
  dialect::codec_result codec_refusal_;  // why the codec refused a request or an answer
  bool codec_refused_ = false;           // this request: a codec target refused or skipped it
  // This attempt's upstream request when it is not the client's own body (a codec target, or
  // a client dialect's translation); nullptr: the client's body with the model splice.
  const dialect::request_out* up_req_ = nullptr;

  // Client dialects only (cdialect_ set by the connection per request); nullptr for OpenAI
  // clients, whose path tests these pointers and nothing else.
  const dialect::client_codec* cdialect_ = nullptr;
  std::unique_ptr<dialect::client_translator> ctr_;  // this attempt's answer translator
  dialect::client_request_out cenc_;                 // this attempt's request
  bool client_version_ = false;  // an Anthropic client's anthropic-version replaces the default
};

inline auto exchange::read_upstream(std::chrono::milliseconds limit) {
  return up_->read_some(begin_read(limit),
                        boost::asio::deferred([this](boost::system::error_code ec, std::size_t n) {
                          return boost::asio::deferred.values(end_read(ec, n));
                        }));
}

}  // namespace ob::proxy
