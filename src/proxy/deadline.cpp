#include "proxy/deadline.hpp"

#include "observe/clock.hpp"
#include "proxy/client_stream.hpp"

namespace ob::proxy {

void deadline::arm(std::chrono::milliseconds limit, boost::asio::ip::tcp::socket* victim,
                   on_expiry what) {
  // Coarse: the deadline may pass up to one clock tick (<= 4 ms) late, never early.
  arm_until(observe::coarse_deadline(limit), victim, what);
}

void deadline::arm_until(clock::time_point at, boost::asio::ip::tcp::socket* victim,
                         on_expiry what) {
  at_ = at;
  victim_ = victim;
  client_victim_ = nullptr;
  what_ = what;
  expired_ = false;
  if (stopped_) return;
  if (!waiting_) {
    wait();
  } else if (at_ < timer_at_) {
    timer_.cancel();  // the aborted wait re-arms at the earlier time
  }
}

void deadline::arm(std::chrono::milliseconds limit, client_stream* victim, on_expiry what) {
  arm_until(observe::coarse_deadline(limit), victim, what);
}

void deadline::arm_until(clock::time_point at, client_stream* victim, on_expiry what) {
  arm_until(at, static_cast<boost::asio::ip::tcp::socket*>(nullptr), what);
  client_victim_ = victim;
}

void deadline::wait() {
  auto owner = owner_.lock();
  if (!owner) return;
  waiting_ = true;
  timer_at_ = at_;
  timer_.expires_at(at_);
  timer_.async_wait([this, owner = std::move(owner)](boost::system::error_code) {
    waiting_ = false;
    if (!stopped_) on_timer();
  });
}

void deadline::on_timer() {
  if (at_ == clock::time_point::max()) return;  // disarmed: sleep until the next arm()
  // Precise here: the timer fired on the precise clock, and a coarse reading up to a tick behind
  // would re-arm for an instant that has already passed, again and again until the tick.
  if (clock::now() < at_) {
    wait();
    return;
  }
  expired_ = true;
  at_ = clock::time_point::max();
  if (victim_) {
    boost::system::error_code ec;
    if (what_ == on_expiry::cancel)
      victim_->cancel(ec);
    else
      victim_->close(ec);
    victim_ = nullptr;
  } else if (client_victim_) {
    if (what_ == on_expiry::cancel)
      client_victim_->cancel();
    else
      client_victim_->close();
    client_victim_ = nullptr;
  }
}

void deadline::stop() {
  stopped_ = true;
  timer_.cancel();
}

}  // namespace ob::proxy
