// One lazily re-armed timer per client connection. Every read and write of a request is
// preceded by arm(limit, victim) or arm_until(time, victim); when a deadline passes, the victim
// socket is closed (or, with on_expiry::cancel, only its pending operations are cancelled, so
// the caller can still answer on it, say a 408), which makes the pending operation fail, and
// `expired()` tells the caller it was a timeout.
// Re-arming to a later time only stores the new deadline: the timer wakes at the old time,
// sees the later deadline and sleeps again, so the hot path makes no timer calls.
#pragma once

#include <chrono>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ob::proxy {

class client_stream;

class deadline {
 public:
  using clock = std::chrono::steady_clock;
  explicit deadline(const boost::asio::any_io_executor& ex) : timer_(ex) {}
  // `owner` is kept alive while a wait is pending (the connection that holds this deadline).
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  enum class on_expiry { close, cancel };
  void arm(std::chrono::milliseconds limit, boost::asio::ip::tcp::socket* victim,
           on_expiry what = on_expiry::close);
  // An absolute deadline, for a bound over several reads (a whole request head, say).
  void arm_until(clock::time_point at, boost::asio::ip::tcp::socket* victim,
                 on_expiry what = on_expiry::close);
  // The client: its socket, or for an HTTP/2 stream its pipe (client_stream::close/cancel).
  void arm(std::chrono::milliseconds limit, client_stream* victim,
           on_expiry what = on_expiry::close);
  void arm_until(clock::time_point at, client_stream* victim, on_expiry what = on_expiry::close);
  void disarm() {
    at_ = clock::time_point::max();
    victim_ = nullptr;
    client_victim_ = nullptr;
  }
  bool expired() const { return expired_; }
  void clear_expired() { expired_ = false; }
  void stop();  // for good: cancels the timer

 private:
  void wait();
  void on_timer();

  boost::asio::steady_timer timer_;
  std::weak_ptr<void> owner_;
  clock::time_point at_ = clock::time_point::max();
  clock::time_point timer_at_ = clock::time_point::max();
  boost::asio::ip::tcp::socket* victim_ = nullptr;
  client_stream* client_victim_ = nullptr;  // instead of victim_
  on_expiry what_ = on_expiry::close;
  bool waiting_ = false;
  bool expired_ = false;
  bool stopped_ = false;
};

}  // namespace ob::proxy
