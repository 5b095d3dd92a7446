// Per-event model rewrite. Most stream events are small JSON chunks; the cost that matters is
// one On-Demand pass over the data and one append of the event's bytes.
#include "proxy/sse/rewrite.hpp"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ob::proxy::sse {
namespace {

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;  // memchr + compare: faster than memmem here
}

// Data that mentions none of the keys we read cannot change the outcome: skip the parse.
// A backslash may hide a key behind escapes ("mod\u0065l"), so it forces the parse too.
bool worth_parsing(std::string_view data) {
  std::size_t i = 0;
  while (i < data.size() &&
         (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
    ++i;
  if (i == data.size() || data[i] != '{') return false;
  return contains(data, "model") || contains(data, "usage") || contains(data, "error") ||
         contains(data, "type") || contains(data, "\\");
}

bool is_terminal_type(std::string_view t) {
  return t == "response.completed" || t == "response.failed" || t == "response.incomplete" ||
         t == "error";
}

bool is_error_type(std::string_view t) {
  return t == "error" || t == "response.failed";
}

void classify(std::string_view type, event_info& info) {
  if (is_terminal_type(type)) info.terminal = true;
  if (is_error_type(type)) info.error = true;
}

// True when `rest` (the data after a known prefix) cannot add or change anything the parse
// would report: no key spelled model/usage/error/type/response (a null usage or error is
// fine), and no \u escape that could spell one. Conservative: a string value that merely
// reads "model" sends the event to the full parse.
// Checks the byte after a quote (at k) for a key that matters.
bool key_that_matters(const char* k, const char* end) {
  auto at = [&](std::string_view word) {
    return static_cast<std::size_t>(end - k) >= word.size() &&
           std::memcmp(k, word.data(), word.size()) == 0;
  };
  switch (k < end ? *k : 0) {
    case 'm':
      return at("model\"");
    case 't':
      return at("type\"");
    case 'r':
      return at("response\"");
    case 'u':
      return at("usage\"") && !at("usage\":null");
    case 'e':
      return at("error\"") && !at("error\":null");
    default:
      return false;
  }
}

bool plain_rest(std::string_view rest) {
  // Only a quote followed by the first letter of a key that matters (m, t, r, u, e) or a
  // backslash followed by 'u' can make the rest not plain; 16 bytes are tested at a time (SSE2)
  // against the byte and its successor, so a typical chunk event (~20 quotes, one of them before
  // "usage":null) visits one candidate instead of every quote.
  const char* p = rest.data();
  const char* end = p + rest.size();
  auto visit = [&](const char* q) {  // false: not plain
    if (*q == '\\') return !(q + 1 < end && q[1] == 'u');
    return !key_that_matters(q + 1, end);
  };
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i slash = _mm_set1_epi8('\\');
  const __m128i m = _mm_set1_epi8('m'), t = _mm_set1_epi8('t'), r = _mm_set1_epi8('r');
  const __m128i u = _mm_set1_epi8('u'), e = _mm_set1_epi8('e');
  // Bit i: the byte at+i is a candidate (reads at..at+16).
  auto candidates = [&](const char* at) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 1));
    const __m128i next_u = _mm_cmpeq_epi8(w, u);
    const __m128i key_start = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(w, m), _mm_cmpeq_epi8(w, t)),
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, r), next_u), _mm_cmpeq_epi8(w, e)));
    const __m128i hit = _mm_or_si128(_mm_and_si128(_mm_cmpeq_epi8(v, quote), key_start),
                                     _mm_and_si128(_mm_cmpeq_epi8(v, slash), next_u));
    return static_cast<unsigned>(_mm_movemask_epi8(hit));
  };
  auto visit_all = [&](const char* at, unsigned mask) {
    for (; mask; mask &= mask - 1)
      if (!visit(at + __builtin_ctz(mask))) return false;
    return true;
  };
  for (; end - p >= 17; p += 16)
    if (!visit_all(p, candidates(p))) return false;
  // The last byte cannot start anything (a quote or backslash needs a successor): the rest but
  // the last byte is one more block that overlaps the ones already tested.
  if (rest.size() >= 17) {
    const char* at = end - 17;
    return visit_all(at, candidates(at) & (0xFFFFu << (p - at)));
  }
#endif
  for (; p < end; ++p)
    if ((*p == '"' || *p == '\\') && !visit(p)) return false;
  return true;
}

// The event's data starts like the shape's prefix and adds nothing that matters after it.
bool same_shape(const stream_shape& shape, std::string_view data) {
  return !shape.prefix.empty() && data.size() >= shape.prefix.size() &&
         std::memcmp(data.data(), shape.prefix.data(), shape.prefix.size()) == 0 &&
         plain_rest(data.substr(shape.prefix.size()));
}

// Remembers `a` as the shape when it is a plain chunk: models only, nothing else reported.
void remember(stream_shape& shape, std::string_view data, const json::answer_info& a) {
  shape.prefix.clear();
  if (a.model_count == 0 || !a.type.empty() || a.has_error || a.usage.present()) return;
  std::size_t end = a.models[a.model_count - 1].end;
  std::string_view prefix = data.substr(0, end);
  if (contains(prefix, "response") || contains(prefix, "\\u")) return;
  shape.prefix.assign(prefix);
  shape.model_count = a.model_count;
  for (int i = 0; i < a.model_count; ++i) shape.models[i] = a.models[i];
}

void splice_models(const event& ev, const json::span* models, int count,
                   std::string_view group_literal, std::string& out) {
  json::span raw_spans[json::answer_info::max_models];
  for (int i = 0; i < count; ++i) {
    // A JSON string cannot hold a raw newline, so a token never straddles two data lines.
    raw_spans[i].begin = ev.raw_offset(models[i].begin);
    raw_spans[i].end = ev.raw_offset(models[i].end - 1) + 1;
  }
  json::append_spliced(out, ev.raw, raw_spans, count, group_literal);
}

}  // namespace

event_info rewrite_event(const event& ev, json::model_finder& finder,
                         std::string_view group_literal, std::string& out, stream_shape* shape) {
  event_info info;
  classify(ev.type, info);
  if (!ev.has_data) {
    out.append(ev.raw);
    return info;
  }
  if (ev.data == "[DONE]") {
    info.done = info.terminal = true;
    out.append(ev.raw);
    return info;
  }
  if (shape && same_shape(*shape, ev.data)) {
    splice_models(ev, shape->models, shape->model_count, group_literal, out);
    return info;
  }
  if (!worth_parsing(ev.data)) {
    out.append(ev.raw);
    return info;
  }
  // The data is a view without known padding after it; the finder copies it (events are small).
  const json::answer_info a = finder.inspect_answer(ev.data, ev.data.size());
  if (shape) remember(*shape, ev.data, a);
  if (!a.is_object) {
    out.append(ev.raw);
    return info;
  }
  classify(a.type, info);
  if (a.has_error) info.terminal = info.error = true;
  info.usage = a.usage;
  splice_models(ev, a.models, a.model_count, group_literal, out);
  return info;
}

}  // namespace ob::proxy::sse
