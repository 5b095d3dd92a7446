// A growable byte buffer that never zero-fills: bodies are read straight into its spare
// capacity. Keeps `padding` readable bytes after the data so simdjson can parse in place.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace ob::proxy {

class byte_buffer {
 public:
  static constexpr std::size_t padding = 64;  // >= simdjson::SIMDJSON_PADDING

  const char* data() const { return data_.get(); }
  char* data() { return data_.get(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Capacity usable by a reader that wants padding: size() <= capacity() - padding always.
  std::size_t capacity() const { return cap_; }
  std::string_view view() const { return {data_.get(), size_}; }

  void clear() { size_ = 0; }
  // Makes room for `n` more bytes (plus padding) without touching existing ones.
  void reserve_more(std::size_t n) {
    if (size_ + n + padding <= cap_) return;
    std::size_t want = std::max(size_ + n + padding, cap_ + cap_ / 2);
    std::unique_ptr<char[]> fresh(new char[want]);
    if (size_) std::memcpy(fresh.get(), data_.get(), size_);
    data_ = std::move(fresh);
    cap_ = want;
  }
  void append(std::string_view s) {
    reserve_more(s.size());
    std::memcpy(data_.get() + size_, s.data(), s.size());
    size_ += s.size();
  }
  // Spare room after the data (excluding padding) and commit of bytes written there.
  char* spare() { return data_.get() + size_; }
  std::size_t spare_size() const { return cap_ > size_ + padding ? cap_ - size_ - padding : 0; }
  void commit(std::size_t n) { size_ += n; }
  // Drops the memory of an unusually large message so idle connections stay small.
  void shrink_if_above(std::size_t bytes) {
    if (cap_ > bytes) {
      data_.reset();
      cap_ = size_ = 0;
    }
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

}  // namespace ob::proxy
