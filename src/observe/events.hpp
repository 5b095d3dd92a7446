// A bounded in-memory record of the latest events (access, health, reload), as JSON lines with
// a sequence number, for the admin API's live stream: "everything after sequence S".
//
// Writers are the worker threads (and the rare health/reload publisher); each thread writes to
// its own ring of `capacity` slots, so the newest `capacity` events overall are always kept.
// A slot is guarded by its ring's mutex, which only the owning thread and a reader ever take:
// a writer never waits for another writer, and a reader takes the lock for one slot at a time,
// so a writer waits at most for one line being copied out (about a microsecond), never for a
// whole read. A seqlock would spare even that, but needs fixed-size slots (lines are of any
// length) or a reader racing a reallocating writer.
//
// Disabled by default: then publish() is one relaxed load and access_log() does no JSON work.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ob::observe {

struct event {
  std::uint64_t seq = 0;  // 1, 2, ... in publishing order across all threads
  std::string line;       // one JSON object with a "type" field, no trailing newline
};

struct event_batch {
  std::vector<event> events;  // ascending seq, all > the `after` asked for
  std::uint64_t next = 0;     // pass as `after` next time
  std::uint64_t dropped = 0;  // events after `after` overwritten before they could be read
};

class event_ring {
 public:
  explicit event_ring(std::size_t capacity = 1000);
  event_ring(const event_ring&) = delete;
  event_ring& operator=(const event_ring&) = delete;
  ~event_ring();

  void set_enabled(bool on) { enabled_.store(on, std::memory_order_relaxed); }
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }

  // Records `json_line` in the calling thread's ring (no-op when disabled). The line must be a
  // JSON object with a "type" field; it is copied.
  void publish(std::string_view json_line);

  // Whether the calling thread's next access record goes into the ring (asked before it is
  // formatted for it; `now` on the coarse clock). Every one does while the ring was read in
  // the last reader_window: a viewer polls every 200 ms, and one whose write stalls 5 s is
  // dropped (admin_server.cpp), so a viewer still connected has always read within it.
  // Otherwise a thread keeps at most idle_per_tick of them per tick of the coarse clock (1-4
  // ms): the ring still holds the recent past for a new viewer, and a busy gateway that nobody
  // watches does not copy every request's line into memory nobody reads, which pushed other
  // data out of the cache at each request (half of a 1 KB JSON request's misses over TLS in
  // callgrind's cache model; 1-4% of its CPU, timed). Health and reload records do not ask:
  // all are kept.
  bool keeps_access(std::chrono::steady_clock::time_point now);
  static constexpr std::chrono::seconds reader_window{6};
  // Whether the ring was read within reader_window of `now`.
  bool read_recently(std::chrono::steady_clock::time_point now) const;
  static constexpr int idle_per_tick = 8;

  // Events with seq > after, oldest first, at most `max` (the oldest ones). Gap-free: an event
  // missing from a batch was overwritten (counted in `dropped`), never delayed to a later batch
  // with a smaller seq.
  event_batch read_after(std::uint64_t after, std::size_t max = SIZE_MAX) const;
  // For a live view that cannot show everything: every event with seq > after, except that
  // events of type `thinned` are kept only among the newest `newest` events; the others are
  // counted in `dropped`. A reader that asks every 200 ms for `newest` = 20 gets at most 100
  // access records a second however busy the gateway is, and every health and reload record.
  event_batch read_recent(std::uint64_t after, std::size_t newest, std::string_view thinned) const;
  // The seq of the latest event published (0 = none yet): read_after(last_sequence() - n) tails.
  std::uint64_t last_sequence() const { return seq_.load(std::memory_order_acquire); }

 private:
  struct slot {
    std::uint64_t seq = 0;
    std::string line;
  };
  struct thread_ring {
    explicit thread_ring(std::size_t n) : slots(n) {}
    mutable std::mutex m;
    std::vector<slot> slots;
    std::size_t next = 0;  // guarded by m
    // keeps_access's count in the current tick: the owning thread's alone.
    std::chrono::steady_clock::time_point tick{};
    int taken = 0;
  };
  thread_ring& local();

  const std::size_t capacity_;
  const std::uint64_t id_;  // tells this ring from a later one at the same address
  std::atomic<bool> enabled_{false};
  std::atomic<std::uint64_t> seq_{0};
  // When the ring was last read (steady clock, nanoseconds); long ago at first.
  mutable std::atomic<std::int64_t> last_read_{std::numeric_limits<std::int64_t>::min() / 2};
  void note_read() const;
  mutable std::mutex rings_m_;
  std::vector<std::pair<std::thread::id, std::unique_ptr<thread_ring>>> rings_;  // guarded
};

// The process's ring, read by /admin/v1/events.
event_ring& events();

}  // namespace ob::observe
