// Server-Sent Events framing (WHATWG HTML "event stream interpretation"): bytes in, whole
// events out. Pure: no I/O. Any split of the same input into feed() calls yields the same events,
// and the concatenation of every event's `raw` equals the input exactly (so a proxy that writes
// `raw` forwards the stream byte for byte).
//
// Lines end in LF, CRLF or CR; a blank line ends an event. Field lines: `data`, `event`, `id`,
// `retry` (ignored), anything else ignored; `name: value` loses one leading space of the value;
// a line without ':' is a field name with an empty value; a line starting with ':' is a comment.
// A UTF-8 BOM at the very start of the stream is skipped when reading fields (kept in raw).
// Unlike a browser, which drops an unterminated event at end of stream, finish() delivers it:
// a proxy must forward every byte it received.
//
// Each blank line ends one event, so "\n\n\n" yields an extra event whose raw is "\n" with no
// fields; a CR ending an event at the very end of a feed is delivered at once (no waiting), and
// when the next feed starts with the LF of that CRLF, the LF is the first byte of the next
// event's raw. Such field-less events carry no meaning (a browser dispatches nothing for them).
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
  // Valid for offsets of bytes that are not the joining '\n's (a joining '\n' maps to the end
  // of the line before it; data.size() maps to the end of the last data value).
  std::size_t raw_offset(std::size_t data_offset) const {
    if (piece_count == 1)  // the usual single data line: data is one slice of raw
      return pieces[0].raw_begin + (data_offset < pieces[0].size ? data_offset : pieces[0].size);
    return raw_offset_slow(data_offset);
  }

  // implementation detail: start offset of each data line's value in raw and in data.
  struct piece {
    std::size_t raw_begin;
    std::size_t data_begin;
    std::size_t size;
  };
  const piece* pieces = nullptr;
  std::size_t piece_count = 0;

 private:
  std::size_t raw_offset_slow(std::size_t data_offset) const;
};

// An event that is only a comment: no data, no event name, a line starting with ':' (a
// provider's keep-alive, ": OPENROUTER PROCESSING"). A field-less blank event is none.
inline bool is_comment(const event& ev) {
  if (ev.has_data || !ev.type.empty()) return false;
  std::string_view r = ev.raw;
  if (r.starts_with("\xEF\xBB\xBF")) r.remove_prefix(3);  // the stream's BOM, kept in raw
  for (std::size_t i = 0; i < r.size(); ++i) {
    bool line_start = i == 0 || r[i - 1] == '\n' || r[i - 1] == '\r';
    if (line_start && r[i] == ':') return true;
  }
  return false;
}

class framer {
 public:
  // Parses `bytes` and calls on_event(const event&) for every event completed by them. An event
  // and all its views are valid only during the callback. When nothing is pending, events that
  // lie wholly inside `bytes` are views of `bytes` (no copy); only an incomplete tail is copied.
  // The callback must not call back into this framer.
  template <class F>
  void feed(std::string_view bytes, F&& on_event) {
    begin_feed(bytes);
    event ev;
    while (next_event(ev)) on_event(static_cast<const event&>(ev));
    end_feed();
  }

  // The same, with a fast path: at an event boundary whose framing depends on nothing before it
  // (no pending bytes, no CR just before, not the stream's first line), claim(std::string_view
  // rest) is offered the unread bytes of the feed and returns how many of them it took instead
  // of having them delivered to on_event (0: none). What it takes must be whole events each
  // made only of LF-terminated lines and the blank line after them, with no CR: the events this
  // framer would have delivered from those bytes, so the framing of the rest is unchanged.
  template <class F, class C>
  void feed(std::string_view bytes, F&& on_event, C&& claim) {
    begin_feed(bytes);
    event ev;
    for (;;) {
      drop_delivered();
      if (claimable()) skip_claimed(claim(std::string_view(buf_ + ev_, len_ - ev_)));
      if (!next_event(ev)) break;
      on_event(static_cast<const event&>(ev));
    }
    end_feed();
  }

  // End of input: a pending unterminated event (any non-empty remainder) is delivered too.
  // The framer is then reset, ready for a new stream.
  template <class F>
  void finish(F&& on_event) {
    event ev;
    if (final_event(ev)) on_event(static_cast<const event&>(ev));
    reset();
  }

  // Bytes held back waiting for the end of an event. A caller should bound this (an upstream
  // that never sends a blank line would otherwise grow it without limit).
  std::size_t pending_bytes() const { return in_pending_ ? pending_.size() : 0; }
  void reset();  // forget everything (reuse for a new stream)

 private:
  void begin_feed(std::string_view bytes);
  bool next_event(event& ev);
  void end_feed();
  bool final_event(event& ev);

  bool claimable() const {
    return !in_pending_ && !skip_lf_ && !first_line_ && line_ == 0 && ev_ < len_;
  }
  void skip_claimed(std::size_t n) { ev_ += n; }  // cached EOL positions before ev_ are ignored
  void set_buffer(const char* data, std::size_t size);
  void drop_delivered();
  bool scan();
  std::size_t find_eol(std::size_t from);
  void parse_line(std::size_t begin, std::size_t end);
  void add_piece(std::size_t raw_begin, std::size_t size) {
    if (piece_count_ == pieces_.size()) pieces_.resize(piece_count_ + 1);  // grows, then reused
    pieces_[piece_count_++] = event::piece{raw_begin, 0, size};
  }
  void make_event(event& ev, std::size_t end);
  void clear_fields();

  // Bytes of the current incomplete event, from its first byte, when in_pending_.
  std::string pending_;
  bool in_pending_ = false;
  std::string_view feed_;      // bytes of the feed() in progress
  std::size_t feed_base_ = 0;  // where feed_ starts inside pending_ (when in_pending_)

  // The buffer being scanned (feed_ itself, the rest of it, or pending_) and positions in it.
  const char* buf_ = nullptr;
  std::size_t len_ = 0;
  std::size_t ev_ = 0;                          // start of the current event in buf_
  std::size_t line_ = 0;                        // start of the current line, relative to ev_
  std::size_t search_ = 0;                      // where to continue looking for its end
  std::ptrdiff_t next_lf_ = -1, next_cr_ = -1;  // cached memchr results in buf_ (len_: none)
  std::size_t delivered_end_ = 0;               // end in buf_ of the event last handed out
  bool delivered_ = false;
  bool skip_lf_ = false;    // the last line ended in CR at the end of a buffer: LF may follow
  bool first_line_ = true;  // BOM check

  // Fields of the current event, as offsets relative to ev_ (stable across pending_ growth).
  std::size_t type_begin_ = 0, type_size_ = 0, id_begin_ = 0, id_size_ = 0;
  bool has_data_ = false;
  std::vector<event::piece> pieces_;  // the first piece_count_ are this event's data lines
  std::size_t piece_count_ = 0;
  std::string data_buf_;  // joined data when an event has several data lines
};

// Appends a terminal error event in OpenAI's shape:
//   data: {"error":{"message":"...","type":"<type>","code":<code or null>}}\n\n
void append_error_event(std::string& out, std::string_view message,
                        std::string_view type = "upstream_error", std::string_view code = {});

}  // namespace ob::proxy::sse
