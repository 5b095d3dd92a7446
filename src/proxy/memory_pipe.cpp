#include "proxy/memory_pipe.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

namespace ob::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

void memory_pipe::complete(io_handler h, error_code ec, std::size_t n) {
  asio::post(ex_, [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); });
}

error_code memory_pipe::read_into(asio::mutable_buffer b, std::size_t& n) {
  n = 0;
  if (closed_) return asio::error::bad_descriptor;
  if (gone_) return asio::error::connection_reset;
  auto* out = static_cast<char*>(b.data());
  std::size_t body = 0;  // fed bytes read, framing aside
  std::size_t raw = framed_ ? std::min(raw_end_, in_.size()) : in_.size();
  if (off_ < raw) {
    n = std::min(b.size(), raw - off_);
    std::memcpy(out, in_.data() + off_, n);
    off_ += n;
    body = n;
  }
  if (framed_ && off_ >= raw && n < b.size()) n += read_framed(out + n, b.size() - n, body);
  if (off_ == in_.size() && off_ > 0) {
    if (in_end_)
      std::string().swap(in_);  // the request is not kept for the answer's lifetime
    else
      in_.clear();  // its capacity takes the next piece
    off_ = raw_end_ = 0;
  }
  if (body && near_) near_->drained(body);
  if (n || off_ < in_.size() || frame_off_ < frame_len_ || !in_end_) return {};
  return asio::error::eof;
}

std::size_t memory_pipe::read_framed(char* out, std::size_t room, std::size_t& body) {
  // Chunk-size digits, CRLF and the CRLF after the data: what a chunk adds around its data.
  constexpr std::size_t framing = 20;
  std::size_t n = 0;
  auto set_frame = [this](std::string_view f) {
    std::memcpy(frame_, f.data(), f.size());
    frame_off_ = 0;
    frame_len_ = f.size();
  };
  while (n < room) {
    if (frame_off_ < frame_len_) {
      std::size_t k = std::min(room - n, frame_len_ - frame_off_);
      std::memcpy(out + n, frame_ + frame_off_, k);
      frame_off_ += k;
      n += k;
      continue;
    }
    std::size_t avail = in_.size() - off_;
    if (chunk_left_) {  // never more than avail: a chunk is sized by what is there
      std::size_t k = std::min({room - n, chunk_left_, avail});
      std::memcpy(out + n, in_.data() + off_, k);
      off_ += k;
      chunk_left_ -= k;
      body += k;
      n += k;
      if (!chunk_left_) set_frame("\r\n");
      continue;
    }
    if (avail) {
      // One chunk within this read when it fits; a read too small for any takes a chunk of
      // all there is, spread over the next reads.
      if (n > 0 && room - n <= framing) break;
      std::size_t size = room - n > framing ? std::min(avail, room - n - framing) : avail;
      char line[24];
      int len = std::snprintf(line, sizeof line, "%zx\r\n", size);
      set_frame({line, static_cast<std::size_t>(len)});
      chunk_left_ = size;
      continue;
    }
    if (in_end_ && !last_sent_) {
      last_sent_ = true;
      set_frame("0\r\n\r\n");
      continue;
    }
    break;
  }
  return n;
}

void memory_pipe::wake_reader() {
  if (!read_) return;
  std::size_t n = 0;
  auto ec = read_into(read_buf_, n);
  auto h = std::move(*read_);
  read_.reset();
  complete(std::move(h), ec, n);
}

void memory_pipe::feed(std::string_view bytes) {
  if (closed_ || gone_ || bytes.empty()) return;
  if (off_ > 0 && off_ >= in_.size() - off_) {
    // What was read is at least what is left: dropped, so a far end that never quite catches
    // up does not make the buffer grow (the copy is no larger than what it keeps).
    in_.erase(0, off_);
    raw_end_ = raw_end_ > off_ ? raw_end_ - off_ : 0;
    off_ = 0;
  }
  in_.append(bytes);
  wake_reader();
}

void memory_pipe::feed(std::string&& bytes) {
  if (in_.empty() && !closed_ && !gone_) {
    in_ = std::move(bytes);
    off_ = 0;
    raw_end_ = 0;
    if (!in_.empty()) wake_reader();
    return;
  }
  feed(std::string_view(bytes));
}

void memory_pipe::frame_chunks() {
  framed_ = true;
  raw_end_ = in_.size();
}

void memory_pipe::feed_end() {
  if (in_end_) return;
  in_end_ = true;
  wake_reader();
}

void memory_pipe::writable() {
  if (!write_) return;
  auto h = std::move(*write_);
  write_.reset();
  complete(std::move(h), {}, written_);
}

void memory_pipe::abort_pending(error_code ec) {
  if (read_) {
    auto h = std::move(*read_);
    read_.reset();
    complete(std::move(h), ec, 0);
  }
  if (write_) {
    auto h = std::move(*write_);
    write_.reset();
    complete(std::move(h), ec, 0);
  }
}

void memory_pipe::reset() {
  near_ = nullptr;
  if (gone_) return;
  gone_ = true;
  abort_pending(asio::error::connection_reset);
  if (watch_) {
    auto h = std::move(*watch_);
    watch_.reset();
    asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(error_code()); });
  }
}

void memory_pipe::cancel() {
  abort_pending(asio::error::operation_aborted);
}

void memory_pipe::cancel_wait_gone() {
  if (!watch_) return;
  auto h = std::move(*watch_);
  watch_.reset();
  asio::post(ex_, [h = std::move(h)]() mutable { std::move(h)(asio::error::operation_aborted); });
}

void memory_pipe::close() {
  if (closed_) return;
  closed_ = true;
  abort_pending(asio::error::operation_aborted);
  cancel_wait_gone();
  std::string().swap(in_);
  if (auto* n = std::exchange(near_, nullptr)) n->far_closed();
}

}  // namespace ob::proxy
