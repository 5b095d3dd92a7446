// Anthropic stream translation in both directions (src/dialect/anthropic: stream_out.cpp,
// stream_in.cpp) behind the SSE framer, fed in fuzzer-chosen splits, as the gateway would run them.
// Invariants: never crash; a split run writes exactly what a one-shot run writes; the output is
// whole SSE events whose data is valid JSON (or [DONE], last, outbound only) or keep-alive comments
// (": ping"); outbound events have
// no event name, inbound events are named after their data's "type"; nothing is written after a
// terminal event and at most one event is terminal.
#include <boost/json.hpp>
#include <string>

#include "dialect/anthropic/translate.hpp"
#include "fuzz/split.hpp"
#include "proxy/sse/framer.hpp"

namespace {

using namespace ob::dialect::anthropic;
namespace sse = ob::proxy::sse;

template <class T>
std::string run(T& t, const ob::fuzz::split_input& in, bool split, bool inbound) {
  std::string out;
  sse::framer f;
  bool over = false;
  auto on = [&](const sse::event& ev) {
    std::size_t before = out.size();
    // As the gateway's codecs (codec.cpp outbound, client.cpp inbound): an event without data
    // (inbound), or without data and name (outbound), is no event; a comment is a keep-alive.
    if (!ev.has_data && (inbound || ev.type.empty())) {
      if (sse::is_comment(ev)) t.keep_alive(out);
      if (over) OB_FUZZ_CHECK(out.size() == before);
      return;
    }
    event_result r = t.on_event(ev.type, ev.data, out);
    if (over) OB_FUZZ_CHECK(out.size() == before && !r.terminal);
    if (r.terminal) over = true;
    OB_FUZZ_CHECK(!r.error || r.terminal);
  };
  if (split) {
    for (std::string_view p : ob::fuzz::pieces(in.bytes, in.cuts)) f.feed(p, on);
  } else {
    f.feed(in.bytes, on);
  }
  f.finish(on);
  if constexpr (requires { t.finish(out); }) {
    std::size_t before = out.size();
    event_result r = t.finish(out);
    if (over) OB_FUZZ_CHECK(out.size() == before && !r.terminal);
  }
  return out;
}

void check_output(const std::string& out, bool inbound) {
  OB_FUZZ_CHECK(out.empty() || out.ends_with("\n\n"));
  sse::framer f;
  bool done = false;
  auto on = [&](const sse::event& ev) {
    OB_FUZZ_CHECK(!done);
    // A provider's keep-alive, relayed as a comment (a ping event, inbound after
    // message_start, is checked as data below).
    if (sse::is_comment(ev)) {
      OB_FUZZ_CHECK(ev.raw == ": ping\n\n");
      return;
    }
    OB_FUZZ_CHECK(ev.has_data);
    if (!inbound && ev.data == "[DONE]") {
      done = true;
      return;
    }
    boost::system::error_code ec;
    auto v = boost::json::parse(ev.data, ec);
    OB_FUZZ_CHECK(!ec && v.is_object());
    if (inbound) {
      auto* type = v.as_object().if_contains("type");
      OB_FUZZ_CHECK(type && type->is_string() && type->as_string() == ev.type);
    } else {
      OB_FUZZ_CHECK(ev.type.empty());
    }
  };
  f.feed(out, on);
  f.finish(on);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = ob::fuzz::take_splits(data, size);
  {
    anthropic_stream_to_openai a("fast", true, 1), b("fast", true, 1);
    std::string whole = run(a, in, false, false);
    OB_FUZZ_CHECK(run(b, in, true, false) == whole);
    check_output(whole, false);
  }
  {
    openai_stream_to_anthropic a("fast"), b("fast");
    std::string whole = run(a, in, false, true);
    OB_FUZZ_CHECK(run(b, in, true, true) == whole);
    check_output(whole, true);
  }
  return 0;
}
