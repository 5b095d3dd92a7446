// Server-Sent Events framing (WHATWG HTML "event stream interpretation"): bytes in, whole
// events out. Pure: no I/O. Any split of the same input into feed() calls yields the same events,
// and the concatenation of every event's `raw` equals the input exactly (so a proxy that writes
// `raw` forwards the stream byte for byte).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ob::proxy::sse {

struct event {
  // Exact input bytes of this event: its lines and the blank line that ended it (absent for a
  // final event cut by end of stream). Any stray LF left over from a CRLF split across feeds
  // is at the front of the next event's raw.
  std::string_view raw;
  std::string_view type;  // value of the last "event" field; empty when none
  std::string_view id;    // value of the last "id" field; empty when none
  bool has_data = false;  // at least one "data" field
  std::string_view data;  // "data" field values joined by '\n' (per the spec's data buffer)
  // Where data lives inside raw, for splicing: maps an offset in `data` to an offset in `raw`.
  // Valid for offsets of bytes that are not the joining '\n's.
  std::size_t raw_offset(std::size_t data_offset) const;

  // implementation detail: start offset of each data line's value in raw and in data.
  struct piece {
    std::size_t raw_begin;
    std::size_t data_begin;
    std::size_t size;
  };
  const piece* pieces = nullptr;
  std::size_t piece_count = 0;
};

class framer {
 public:
  // Parses `bytes` and calls on_event(const event&) for every event completed by them. An event
  // and all its views are valid only during the callback.
  template <class F>
  void feed(std::string_view bytes, F&& on_event);

  // End of input: a pending unterminated event (any non-empty remainder) is delivered too.
  template <class F>
  void finish(F&& on_event);

  std::size_t pending_bytes() const;  // bytes held back waiting for the end of an event
  void reset();                        // forget everything (reuse for a new stream)

  // ... implementation members (private) ...
};

// Appends a terminal error event in OpenAI's shape:
//   data: {"error":{"message":"...","type":"<type>","code":<code or null>}}\n\n
void append_error_event(std::string& out, std::string_view message,
                        std::string_view type = "upstream_error", std::string_view code = {});

}  // namespace ob::proxy::sse
