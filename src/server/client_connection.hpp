// One accepted client connection: HTTP/1.1 keep-alive loop. Reads a request head within its
// limits, answers the gateway's own routes (/healthz, /v1/models), authorizes and routes /v1/
// requests, reads the body and hands the request to proxy::exchange.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "observe/log.hpp"
#include "proxy/admission.hpp"
#include "proxy/body_source.hpp"
#include "proxy/client_stream.hpp"
#include "proxy/context.hpp"
#include "proxy/deadline.hpp"
#include "proxy/exchange.hpp"
#include "proxy/http/multipart.hpp"
#include "proxy/http/request_id.hpp"
#include "proxy/parsers.hpp"

namespace ob::server {

class connection_registry;

class client_connection final : public std::enable_shared_from_this<client_connection>,
                                public proxy::settle_hook,
                                public proxy::body_source {
 public:
  client_connection(proxy::worker_context& ctx, proxy::client_stream stream,
                    connection_registry& registry);
  ~client_connection();

  boost::asio::awaitable<void> run();
  // Shutdown: a connection waiting for its next request is closed now; a busy one closes
  // after its current answer (worker_context::draining).
  void close_if_idle();
  void close();
  // Shutdown grace over: ends the request in flight (503 or a stream error event, logged with
  // outcome "shutdown") instead of dropping it.
  void cut();
  // After an exception escaped run(): stops the timer (which keeps the connection alive) and
  // closes the socket.
  void abandon();
  // Returns whether a request is with the upstream (exchange::sweep).
  bool sweep(std::chrono::steady_clock::time_point now) { return exchange_.sweep(now); }
  // An HTTP/2 stream served over a memory pipe (server/h2_connection.cpp): the peer of the
  // HTTP/2 connection and the protocol for the access log ("h2", a string literal).
  void set_peer(std::string peer, std::string_view protocol) {
    peer_ = std::move(peer);
    protocol_ = protocol;
  }
  std::string_view upstream_origin() const { return exchange_.upstream_origin(); }

  // The request's end for keys and limits: its usage goes to the ledger and its reservations
  // are settled (or released). Once per request: the exchange calls it just before the
  // answer's last write, run() at the request's end for every other path.
  void settle_now(const observe::request_record& rec) override;

  // A streamed multipart upload's rest, for the exchange (server/client_form.cpp).
  boost::asio::awaitable<proxy::body_piece> next() override;

 private:
  enum class head_result { ok, closed, bad, too_large, timeout, shutdown };
  boost::asio::awaitable<head_result> read_head();
  // Whether the whole request body came with the head (already in in_).
  bool body_buffered() const;
  // Moves the Content-Length body bytes that came with the head to req_.body.
  void take_buffered_body();
  boost::asio::awaitable<head_result> read_body(const proxy::snapshot& snap);

  // Handling one request whose head was read; each awaitable yields whether to keep the
  // connection. handle, handle_proxy and forward are not coroutines: they check and route,
  // then hand over the awaitable that answers, so a proxied request whose body came with its
  // head costs no coroutine frame before exchange::run.
  boost::asio::awaitable<bool> handle(const proxy::snapshot& snap, observe::request_record& rec);
  boost::asio::awaitable<bool> handle_proxy(const proxy::snapshot& snap,
                                            observe::request_record& rec, bool keep_alive);
  // Sends 100 Continue if asked to, reads the body, then forwards.
  boost::asio::awaitable<bool> continue_body(const proxy::snapshot& snap);
  boost::asio::awaitable<bool> receive_body(const proxy::snapshot& snap,
                                            observe::request_record& rec, bool keep_alive,
                                            bool send_continue);
  // Finds the body's model and its group, and hands the request to the exchange.
  boost::asio::awaitable<bool> forward(const proxy::snapshot& snap, observe::request_record& rec,
                                       bool keep_alive);
  // Phase 2 for the key of a request whose group is known and allowed and whose token
  // estimate is set (admission_.estimate), for JSON and multipart bodies alike: its limits and
  // budget, then the exchange, or the refusal (not a coroutine). `model_raw`: `model` spans a
  // form field's value (exchange_request::model_raw).
  boost::asio::awaitable<bool> admit(const proxy::snapshot& snap, observe::request_record& rec,
                                     bool keep_alive, proxy::json::span model,
                                     const proxy::json::usage_plan& usage,
                                     const routing::group& group, bool model_raw);
  // The exchange of an admitted request (not a coroutine).
  boost::asio::awaitable<bool> start_exchange(const proxy::snapshot& snap,
                                              observe::request_record& rec, bool keep_alive,
                                              proxy::json::span model,
                                              const proxy::json::usage_plan& usage,
                                              const routing::group& group, bool model_raw);
  // A key whose limits backend needs a round trip: waits for its decision, then forwards.
  boost::asio::awaitable<bool> admit_then_forward(const proxy::snapshot& snap,
                                                  observe::request_record& rec, bool keep_alive,
                                                  proxy::json::span model,
                                                  proxy::json::usage_plan usage,
                                                  const routing::group& group, bool model_raw);
  // A key with limits.max_wait over a rate limit: waits for capacity, then forwards.
  boost::asio::awaitable<bool> wait_then_forward(const proxy::snapshot& snap,
                                                 observe::request_record& rec, bool keep_alive,
                                                 proxy::json::span model,
                                                 proxy::json::usage_plan usage,
                                                 const routing::group& group, bool model_raw);
  // The 429/503 of a refused admission (admission_ holds it).
  boost::asio::awaitable<bool> refuse_limited(observe::request_record& rec, bool keep_alive);
  proxy::json::usage_plan usage_plan(const proxy::snapshot& snap,
                                     const observe::request_record& rec,
                                     const proxy::json::request_model& found);
  // multipart/form-data (server/client_form.cpp).
  // forward() for a form read whole: routed by its "model" form field, admitted like a JSON
  // body (not a coroutine).
  boost::asio::awaitable<bool> forward_form(const proxy::snapshot& snap,
                                            observe::request_record& rec, bool keep_alive,
                                            std::string_view content_type);
  // A form whose body is not all in yet: read until its model part is (or the body ends),
  // then routed, and the rest relayed to the provider as it arrives (next()).
  boost::asio::awaitable<bool> receive_form(const proxy::snapshot& snap,
                                            observe::request_record& rec, bool keep_alive,
                                            bool send_continue);
  // Reads the body into req_.body until `scan` decides or the body ends (form_complete_).
  boost::asio::awaitable<head_result> read_form_prefix(const proxy::snapshot& snap,
                                                       proxy::http::form_scanner& scan,
                                                       proxy::http::form_field& f);
  // The rest of a form whose prefix read_form_prefix read, into req_.body: the whole body.
  boost::asio::awaitable<head_result> read_form_rest();
  // A chunked body: the client's bytes in in_ through the parser (the body's bytes are appended
  // to req_.body); ok, too_large or bad.
  head_result feed_chunked();
  // One read of body bytes from the client within the body's deadlines.
  boost::asio::awaitable<head_result> read_client(boost::asio::mutable_buffer into, std::size_t& n);
  // The form's routing once its model field `f` is known (not a coroutine).
  boost::asio::awaitable<bool> route_form(const proxy::snapshot& snap, observe::request_record& rec,
                                          bool keep_alive, const proxy::http::form_field& f);
  // Answers a request whose body was not read whole (too large, bad framing, late, gone).
  boost::asio::awaitable<bool> refuse_body(head_result body, const proxy::snapshot& snap,
                                           observe::request_record& rec);
  // A gateway error answer (exchange::write_error) whose message is kept in message_ until
  // the answer is written. Not a coroutine.
  boost::asio::awaitable<bool> refuse(proxy::http::error_kind kind, std::string message,
                                      bool keep_alive, observe::request_record& rec,
                                      std::string_view extra_headers = {});
  boost::asio::awaitable<bool> reply_json(int status, std::string_view body, bool keep_alive,
                                          observe::request_record& rec);
  bool body_pending() const;
  bool authorized(std::string_view token, const proxy::snapshot& snap);
  // Adds the finished request to this worker's metrics.
  void record_metrics(const observe::request_record& rec);
  boost::asio::awaitable<void> linger();

  proxy::worker_context& ctx_;
  proxy::client_stream stream_;
  connection_registry& registry_;
  // No max_size: read_head never reads past limits.max_header_bytes (up to 1 MiB); a max here
  // made a head near that limit throw (length_error) instead of getting its 431.
  boost::beast::flat_buffer in_;
  proxy::request_data req_;
  std::optional<proxy::request_parser> parser_;
  proxy::deadline deadline_;
  proxy::exchange exchange_;
  std::string out_;
  std::string message_;  // the body of a refusal or a small JSON answer while it is written
  bool idle_ = false;
  bool idle_expired_ = false;                // the connection ends: idle past timeouts.keepalive
  std::string authorized_token_;             // last token accepted on this connection...
  std::uint64_t authorized_generation_ = 0;  // ...under this config generation
  int authorized_index_ = -1;                // ...its entry in the snapshot's token set
  std::string peer_;                         // "address:port" of the client, for the log
  std::string_view protocol_;                // for the log: empty (HTTP/1.x) or "h2"
  proxy::http::request_id request_id_;       // the current request's id
  bool answer_id_ = true;                    // answers carry it (config headers.request_id)
  // The current request's snapshot (run()'s local), and its key's admission (keys and limits).
  const std::shared_ptr<const proxy::snapshot>* snap_ptr_ = nullptr;
  proxy::admission admission_;
  bool settled_ = false;  // settle_now ran for the current request
  // The current request is a streamed upload (this is its body_source): its keep-alive for
  // the exchange (refusals before it close the connection: the body is not read), deadlines.
  bool streaming_ = false;
  bool form_keep_ = false;
  std::uint64_t form_length_ = 0;  // Content-Length body: its size
  std::chrono::steady_clock::time_point body_until_{};
  proxy::http::form_end_watch form_end_;
  std::unique_ptr<char[]> relay_buf_;  // a Content-Length upload's pieces (allocated once)
};

// A connection that carries several requests at once (an HTTP/2 connection; its streams are
// client_connections of their own). Registered while it lives, so that a graceful shutdown
// waits for what it still has to send (answers its streams finished, held back by the
// client's flow-control window) and tells its client first.
class multiplexed_connection {
 public:
  // Takes no new request (HTTP/2: GOAWAY now) and closes once the answers in flight are out.
  virtual void drain() = 0;
  virtual void close() = 0;

 protected:
  ~multiplexed_connection() = default;
};

// The live connections of one worker, for graceful shutdown.
class connection_registry {
 public:
  void add(client_connection* c) {
    live_.push_back(c);
    recount();
  }
  void remove(client_connection* c);
  void add(multiplexed_connection* c) {
    multiplexed_.push_back(c);
    recount();
  }
  void remove(multiplexed_connection* c);
  // Readable from any thread (shutdown waits for it to reach zero). Both kinds.
  std::size_t size() const { return count_.load(std::memory_order_relaxed); }
  // Closes the connections that wait for a request; drains the multiplexed ones.
  void close_idle();
  void close_all();
  void cut_all();
  // Returns whether any connection has a request with the upstream.
  bool sweep(std::chrono::steady_clock::time_point now) {
    bool busy = false;
    for (auto* c : live_) busy |= c->sweep(now);
    return busy;
  }
  // The worker's sweep loop, as the connections' requests wake it (proxy::sweep_waker).
  proxy::sweep_waker& waker() { return waker_; }

  template <class F>
  void for_each(F&& f) const {
    for (auto* c : live_) f(*c);
  }

 private:
  void recount() { count_.store(live_.size() + multiplexed_.size(), std::memory_order_relaxed); }
  std::vector<client_connection*> live_;
  std::vector<multiplexed_connection*> multiplexed_;
  std::atomic<std::size_t> count_{0};
  proxy::sweep_waker waker_;
};

}  // namespace ob::server
