// Line splitting uses memchr per terminator byte with the result cached: LF-only streams pay one
// memchr('\n') per line and a single memchr('\r') per buffer; CR-only streams the reverse.
// (memmem("\n\n") over the whole buffer was measured at 18% of proxy CPU.)
#include "proxy/sse/framer.hpp"

#include <algorithm>
#include <cstring>

#include "proxy/json/model.hpp"

namespace ob::proxy::sse {

std::size_t event::raw_offset_slow(std::size_t data_offset) const {
  for (std::size_t i = piece_count; i-- > 0;) {
    if (data_offset >= pieces[i].data_begin)
      return pieces[i].raw_begin + std::min(data_offset - pieces[i].data_begin, pieces[i].size);
  }
  return data_offset;
}

void framer::reset() {
  pending_.clear();
  in_pending_ = false;
  feed_ = {};
  feed_base_ = 0;
  set_buffer(nullptr, 0);
  ev_ = 0;
  delivered_ = false;
  skip_lf_ = false;
  first_line_ = true;
  clear_fields();
  // An event of many data lines (a hostile upstream can send ~1M within the pending limit)
  // must not pin its line table for the life of the connection.
  if (pieces_.size() > 64) std::vector<event::piece>().swap(pieces_);
  if (data_buf_.capacity() > 64 * 1024) std::string().swap(data_buf_);
  if (pending_.capacity() > 64 * 1024) std::string().swap(pending_);
}

void framer::clear_fields() {
  line_ = search_ = 0;
  type_begin_ = type_size_ = id_begin_ = id_size_ = 0;
  has_data_ = false;
  piece_count_ = 0;  // the storage is kept: events reuse it
}

void framer::set_buffer(const char* data, std::size_t size) {
  buf_ = data;
  len_ = size;
  next_lf_ = next_cr_ = -1;  // cached positions belong to the old buffer
}

void framer::begin_feed(std::string_view bytes) {
  feed_ = bytes;
  if (in_pending_) {
    // The incomplete event continues: scan it in place, positions are relative to its start.
    feed_base_ = pending_.size();
    pending_.append(bytes);
    set_buffer(pending_.data(), pending_.size());
  } else {
    set_buffer(bytes.data(), bytes.size());
  }
  ev_ = 0;
}

// Called before scanning on: the event handed out last is no longer referenced.
void framer::drop_delivered() {
  if (!delivered_) return;
  delivered_ = false;
  clear_fields();
  if (in_pending_) {
    // The pending event is done; whatever follows it in this feed is scanned without copying.
    const std::size_t consumed = delivered_end_ - feed_base_;
    pending_.clear();
    in_pending_ = false;
    set_buffer(feed_.data() + consumed, feed_.size() - consumed);
    ev_ = 0;
  } else {
    ev_ = delivered_end_;
  }
}

bool framer::next_event(event& ev) {
  drop_delivered();
  if (!scan()) return false;
  const std::size_t end = ev_ + line_;  // scan() leaves line_ just past the blank line
  make_event(ev, end);
  delivered_end_ = end;
  delivered_ = true;
  return true;
}

void framer::end_feed() {
  drop_delivered();
  if (!in_pending_ && ev_ < len_) {
    pending_.assign(buf_ + ev_, len_ - ev_);
    in_pending_ = true;
  }
  feed_ = {};
  set_buffer(nullptr, 0);
}

bool framer::final_event(event& ev) {
  drop_delivered();
  if (!in_pending_ || pending_.empty()) return false;
  set_buffer(pending_.data(), pending_.size());
  ev_ = 0;
  if (skip_lf_ && line_ < len_ && buf_[line_] == '\n') ++line_;
  skip_lf_ = false;
  if (line_ < len_) parse_line(line_, len_);  // the unterminated last line
  make_event(ev, len_);
  return true;
}

std::size_t framer::find_eol(std::size_t from) {
  const auto at = static_cast<std::ptrdiff_t>(ev_ + from);
  const auto n = static_cast<std::ptrdiff_t>(len_);
  const auto find = [&](char c) -> std::ptrdiff_t {
    if (at >= n) return n;
    const void* p = std::memchr(buf_ + at, c, static_cast<std::size_t>(n - at));
    return p ? static_cast<const char*>(p) - buf_ : n;
  };
  if (next_lf_ < at) next_lf_ = find('\n');
  if (next_cr_ < at) next_cr_ = find('\r');
  return static_cast<std::size_t>(std::min(next_lf_, next_cr_)) - ev_;
}

// Consumes complete lines of the current event; true when a blank line ended it.
bool framer::scan() {
  const char* base = buf_ + ev_;
  const std::size_t avail = len_ - ev_;
  for (;;) {
    if (skip_lf_) {
      if (line_ >= avail) return false;
      skip_lf_ = false;
      if (base[line_] == '\n') search_ = ++line_;
    }
    // A line that ends right where the search starts (the blank line after a data line, in
    // practice) needs no search.
    const char here = search_ < avail ? base[search_] : 0;
    const std::size_t eol = here == '\n' || here == '\r' ? search_ : find_eol(search_);
    if (eol >= avail) {
      search_ = avail;  // the partial line is re-searched only from here on
      return false;
    }
    std::size_t next = eol + 1;
    if (base[eol] == '\r') {
      if (next < avail) {
        if (base[next] == '\n') ++next;
      } else {
        skip_lf_ = true;  // CRLF may be split across feeds
      }
    }
    const bool blank = eol == line_;
    if (!blank) parse_line(line_, eol);
    first_line_ = false;
    line_ = search_ = next;
    if (blank) return true;
  }
}

void framer::parse_line(std::size_t begin, std::size_t end) {
  const char* base = buf_ + ev_;
  if (first_line_ && end - begin >= 3 && std::memcmp(base + begin, "\xEF\xBB\xBF", 3) == 0)
    begin += 3;
  if (begin == end || base[begin] == ':') return;  // comment (or a BOM-only line)
  if (end - begin >= 5 && std::memcmp(base + begin, "data:", 5) == 0) {  // the usual line
    std::size_t value = begin + 5;
    if (value < end && base[value] == ' ') ++value;
    add_piece(value, end - value);
    has_data_ = true;
    return;
  }
  const void* colon = std::memchr(base + begin, ':', end - begin);
  const std::size_t name_end = colon ? static_cast<const char*>(colon) - base : end;
  std::size_t value = colon ? name_end + 1 : end;
  if (value < end && base[value] == ' ') ++value;
  const std::string_view name(base + begin, name_end - begin);
  const std::size_t size = end - value;
  if (name == "data") {
    add_piece(value, size);
    has_data_ = true;
  } else if (name == "event") {
    type_begin_ = value;
    type_size_ = size;
  } else if (name == "id") {
    // The spec ignores an id containing NUL.
    if (!std::memchr(base + value, '\0', size)) id_begin_ = value, id_size_ = size;
  }
}

void framer::make_event(event& ev, std::size_t end) {
  const char* base = buf_ + ev_;
  ev.raw = std::string_view(base, end - ev_);
  ev.type = std::string_view(base + type_begin_, type_size_);
  ev.id = std::string_view(base + id_begin_, id_size_);
  ev.has_data = has_data_;
  if (piece_count_ == 1) {
    ev.data = std::string_view(base + pieces_[0].raw_begin, pieces_[0].size);
  } else if (piece_count_ == 0) {
    ev.data = {};
  } else {
    data_buf_.clear();
    for (std::size_t i = 0; i < piece_count_; ++i) {
      auto& p = pieces_[i];
      if (i > 0) data_buf_ += '\n';
      p.data_begin = data_buf_.size();
      data_buf_.append(base + p.raw_begin, p.size);
    }
    ev.data = data_buf_;
  }
  ev.pieces = pieces_.data();
  ev.piece_count = piece_count_;
}

void append_error_event(std::string& out, std::string_view message, std::string_view type,
                        std::string_view code) {
  out += "data: {\"error\":{\"message\":";
  json::append_json_string(out, message);
  out += ",\"type\":";
  json::append_json_string(out, type);
  out += ",\"code\":";
  if (code.empty()) {
    out += "null";
  } else {
    json::append_json_string(out, code);
  }
  out += "}}\n\n";
}

}  // namespace ob::proxy::sse
