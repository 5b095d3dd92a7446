// SSE framer + event rewrite, fed in fuzzer-chosen splits (src/proxy/sse), as the gateway runs
// them on an upstream stream (with the stream shape cache).
// Invariants: the events' raw bytes concatenate to the input; a split run yields the same
// meaningful events and the same output as a one-shot run; the output of each event is its raw
// bytes with at most answer_info::max_models JSON string tokens replaced by the group literal;
// the pass-through relay with its fast path (plain same-shape chunks claimed without framing)
// writes the same bytes and counts the same data events, whole and split.
#include <string>
#include <vector>

#include "fuzz/split.hpp"
#include "proxy/sse/rewrite.hpp"

namespace {

using namespace ob::proxy;

struct seen_event {
  std::string type, id, data;
  bool has_data;
  bool operator==(const seen_event&) const = default;
};

struct run_result {
  std::string raw, out;
  std::vector<seen_event> events;  // those with a field (a field-less event means nothing)
  int data_events = 0;
};

run_result run(const ob::fuzz::split_input& in, bool split, const std::string& literal,
               json::model_finder& finder) {
  sse::framer f;
  sse::stream_shape shape;
  run_result r;
  auto on_event = [&](const sse::event& ev) {
    r.raw += ev.raw;
    for (std::size_t i = 0; i < ev.piece_count; ++i) {
      const auto& p = ev.pieces[i];
      OB_FUZZ_CHECK(p.raw_begin + p.size <= ev.raw.size());
      OB_FUZZ_CHECK(ev.raw.substr(p.raw_begin, p.size) == ev.data.substr(p.data_begin, p.size));
    }
    const std::size_t before = r.out.size();
    sse::rewrite_event(ev, finder, literal, r.out, &shape);
    int replaced = 0;
    OB_FUZZ_CHECK(ob::fuzz::only_strings_replaced(ev.raw, std::string_view(r.out).substr(before),
                                                  literal, replaced));
    OB_FUZZ_CHECK(replaced <= json::answer_info::max_models);
    if (ev.has_data || !ev.type.empty() || !ev.id.empty())
      r.events.push_back(
          {std::string(ev.type), std::string(ev.id), std::string(ev.data), ev.has_data});
    if (ev.has_data) ++r.data_events;
  };
  if (split) {
    for (std::string_view piece : ob::fuzz::pieces(in.bytes, in.cuts)) f.feed(piece, on_event);
  } else {
    f.feed(in.bytes, on_event);
  }
  f.finish(on_event);
  return r;
}

// The relay as exchange::on_stream_bytes runs it on a pass-through stream: the framer offers
// each event boundary to the fast path first.
run_result relay(const ob::fuzz::split_input& in, bool split, const std::string& literal,
                 json::model_finder& finder) {
  sse::framer f;
  sse::stream_shape shape;
  run_result r;
  auto on_event = [&](const sse::event& ev) {
    sse::rewrite_event(ev, finder, literal, r.out, &shape);
    if (ev.has_data) ++r.data_events;
  };
  auto claim = [&](std::string_view rest) {
    return sse::claim_plain_events(rest, shape, nullptr, literal, r.out, r.data_events);
  };
  if (split) {
    for (std::string_view piece : ob::fuzz::pieces(in.bytes, in.cuts))
      f.feed(piece, on_event, claim);
  } else {
    f.feed(in.bytes, on_event, claim);
  }
  f.finish(on_event);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static json::model_finder finder;
  const ob::fuzz::split_input in = ob::fuzz::take_splits(data, size);
  const std::string literal = ob::fuzz::unused_literal(in.bytes);
  const run_result whole = run(in, false, literal, finder);
  OB_FUZZ_CHECK(whole.raw == in.bytes);
  const run_result split = run(in, true, literal, finder);
  OB_FUZZ_CHECK(split.raw == in.bytes);
  OB_FUZZ_CHECK(split.events == whole.events);
  OB_FUZZ_CHECK(split.out == whole.out);
  OB_FUZZ_CHECK(split.data_events == whole.data_events);
  for (bool cut : {false, true}) {
    const run_result fast = relay(in, cut, literal, finder);
    OB_FUZZ_CHECK(fast.out == whole.out);
    OB_FUZZ_CHECK(fast.data_events == whole.data_events);
  }
  return 0;
}
