#include "observe/events.hpp"

#include "observe/clock.hpp"

#include <algorithm>

namespace ob::observe {
namespace {
std::atomic<std::uint64_t> next_ring_id{1};

// This thread's ring of the event_ring it published to last (one entry: a thread publishes
// to one event_ring outside tests).
struct local_cache {
  std::uint64_t owner = 0;
  void* ring = nullptr;
};
thread_local local_cache cache;
}  // namespace

event_ring::event_ring(std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)), id_(next_ring_id.fetch_add(1)) {}

event_ring::~event_ring() = default;

event_ring::thread_ring& event_ring::local() {
  if (cache.owner == id_) return *static_cast<thread_ring*>(cache.ring);
  const auto me = std::this_thread::get_id();
  std::lock_guard lock(rings_m_);
  auto it =
      std::find_if(rings_.begin(), rings_.end(), [&](const auto& e) { return e.first == me; });
  thread_ring* r;
  if (it != rings_.end()) {
    r = it->second.get();
  } else {
    rings_.emplace_back(me, std::make_unique<thread_ring>(capacity_));
    r = rings_.back().second.get();
  }
  cache = {id_, r};
  return *r;
}

void event_ring::publish(std::string_view json_line) {
  if (!enabled()) return;
  auto& r = local();
  std::lock_guard lock(r.m);
  auto& s = r.slots[r.next];
  s.line.assign(json_line);  // reuses the slot's capacity once lines stop growing
  // Taken inside the lock: a reader that sees seq_ >= this value and then takes this lock
  // finds the slot complete (see read_after).
  s.seq = seq_.fetch_add(1, std::memory_order_acq_rel) + 1;
  r.next = r.next + 1 == r.slots.size() ? 0 : r.next + 1;
}

bool event_ring::read_recently(std::chrono::steady_clock::time_point now) const {
  const auto last = std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(last_read_.load(std::memory_order_relaxed)));
  return now - last < reader_window;
}

bool event_ring::keeps_access(std::chrono::steady_clock::time_point now) {
  if (read_recently(now)) return true;
  auto& r = local();
  if (now != r.tick) {
    r.tick = now;
    r.taken = 0;
  }
  return r.taken++ < idle_per_tick;
}

void event_ring::note_read() const {
  last_read_.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(coarse_now().time_since_epoch()).count(),
      std::memory_order_relaxed);
}

event_batch event_ring::read_after(std::uint64_t after, std::size_t max) const {
  note_read();
  event_batch b;
  // Every seq <= hi was taken inside its ring's lock, so once we hold that lock the slot is
  // complete; later seqs are left for the next read, which keeps batches gap-free.
  const std::uint64_t hi = seq_.load(std::memory_order_acquire);
  b.next = std::max(after, hi);
  if (hi <= after) return b;
  std::vector<const thread_ring*> rings;
  {
    std::lock_guard lock(rings_m_);
    for (const auto& e : rings_) rings.push_back(e.second.get());
  }
  for (const auto* r : rings) {
    for (const auto& s : r->slots) {  // one slot per lock: a writer waits for one copy at most
      std::lock_guard lock(r->m);
      if (s.seq > after && s.seq <= hi) b.events.push_back({s.seq, s.line});
    }
  }
  std::sort(b.events.begin(), b.events.end(),
            [](const event& x, const event& y) { return x.seq < y.seq; });
  if (b.events.size() > max) {
    b.events.resize(max);
    b.next = b.events.empty() ? after : b.events.back().seq;
  }
  b.dropped = (b.next - after) - b.events.size();
  return b;
}

namespace {
// The "type" of a line written by this module's formatters: {"time":"...","type":"access",...
bool has_type(std::string_view line, std::string_view type) {
  auto at = line.substr(0, 64).find(R"("type":")");
  if (at == std::string_view::npos) return false;
  auto v = line.substr(at + 8);
  return v.size() > type.size() && v.starts_with(type) && v[type.size()] == '"';
}
}  // namespace

event_batch event_ring::read_recent(std::uint64_t after, std::size_t newest,
                                    std::string_view thinned) const {
  note_read();
  event_batch b;
  const std::uint64_t hi = seq_.load(std::memory_order_acquire);
  b.next = std::max(after, hi);
  if (hi <= after) return b;
  const std::uint64_t recent_from = hi > newest ? hi - newest : 0;  // seq > this: kept
  std::vector<const thread_ring*> rings;
  {
    std::lock_guard lock(rings_m_);
    for (const auto& e : rings_) rings.push_back(e.second.get());
  }
  for (const auto* r : rings) {
    for (const auto& s : r->slots) {
      std::lock_guard lock(r->m);
      if (s.seq <= after || s.seq > hi) continue;
      if (s.seq > recent_from || !has_type(s.line, thinned)) b.events.push_back({s.seq, s.line});
    }
  }
  std::sort(b.events.begin(), b.events.end(),
            [](const event& x, const event& y) { return x.seq < y.seq; });
  b.dropped = (b.next - after) - b.events.size();
  return b;
}

event_ring& events() {
  static event_ring ring(1000);
  return ring;
}

}  // namespace ob::observe
