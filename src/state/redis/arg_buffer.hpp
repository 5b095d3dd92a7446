// Arguments of one Redis command: numbers and names appended to one buffer, then views into it
// for client::send / eval. The buffer is reused (clear() keeps its capacity); most calls fit
// the inline capacity of the spans (a key, up to 4 targets and a few carried settlements).
#pragma once

#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>

namespace ob::state::redis {

class arg_buffer {
 public:
  arg_buffer() { buf_.reserve(1024); }
  void add(std::string_view s) {
    spans_.push_back({buf_.size(), s.size()});
    buf_ += s;
  }
  void add(std::int64_t v) {
    char tmp[24];
    auto [p, ec] = std::to_chars(tmp, tmp + sizeof tmp, v);
    add(std::string_view(tmp, p - tmp));
  }
  void add_u(std::uint64_t v) {
    char tmp[24];
    auto [p, ec] = std::to_chars(tmp, tmp + sizeof tmp, v);
    add(std::string_view(tmp, p - tmp));
  }
  // <head>{<kind>:<name>}:<part> (a hash tag per key or target), or with `one_slot`
  // <head><kind>:<name>:<part>, where head is "<prefix>{<tag>}:" (state.cluster: every key in
  // one slot; docs/SCALING.md "Key layout").
  void add_name(std::string_view head, bool one_slot, std::string_view kind, std::string_view name,
                std::string_view part) {
    std::size_t at = buf_.size();
    buf_ += head;
    if (!one_slot) buf_ += '{';
    buf_ += kind;
    buf_ += ':';
    buf_ += name;
    buf_ += one_slot ? ":" : "}:";
    buf_ += part;
    spans_.push_back({at, buf_.size() - at});
  }
  // Copies arguments [first, first + n) of `other`, in order.
  void add_from(const arg_buffer& other, std::size_t first, std::size_t n) {
    for (std::size_t i = first; i < first + n; ++i) add(other.at(i));
  }

  std::size_t size() const { return spans_.size(); }
  std::string_view at(std::size_t i) const {
    return {buf_.data() + spans_[i].first, spans_[i].second};
  }
  void clear() {
    buf_.clear();
    spans_.clear();
  }
  // The bytes and spans, for a call sent later.
  std::pair<std::string, std::vector<std::pair<std::size_t, std::size_t>>> take() {
    return {std::move(buf_),
            std::vector<std::pair<std::size_t, std::size_t>>(spans_.begin(), spans_.end())};
  }
  std::span<const std::string_view> views() {
    views_.clear();
    for (auto [at, n] : spans_) views_.emplace_back(buf_.data() + at, n);
    return views_;
  }

 private:
  std::string buf_;
  boost::container::small_vector<std::pair<std::size_t, std::size_t>, 64> spans_;
  boost::container::small_vector<std::string_view, 64> views_;
};

}  // namespace ob::state::redis
