// Drives an io_context from a test until a condition holds or a bound passes.
#pragma once

#include <chrono>
#include <exception>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace ob::test {

template <class Pred>
bool run_until(boost::asio::io_context& io, Pred done,
               std::chrono::milliseconds bound = std::chrono::milliseconds(5000)) {
  auto end = std::chrono::steady_clock::now() + bound;
  while (!done() && std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_one_for(std::chrono::milliseconds(5));
  }
  return done();
}

// Runs the io_context for `d` (timers and I/O progress meanwhile).
inline void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_one_until(end);
  }
}

template <class T>
std::optional<T> await(boost::asio::io_context& io, boost::asio::awaitable<T> a,
                       std::chrono::milliseconds bound = std::chrono::milliseconds(5000)) {
  std::optional<T> out;
  bool finished = false;
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    finished = true;
    if (!e) out.emplace(std::move(v));
  });
  run_until(
      io, [&] { return finished; }, bound);
  return out;
}

}  // namespace ob::test
