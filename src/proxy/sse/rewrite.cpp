// Per-event model rewrite. Most stream events are small JSON chunks; the cost that matters is
// one On-Demand pass over the data and one append of the event's bytes.
#include "proxy/sse/rewrite.hpp"

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
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

// The events that end a stream which has no [DONE]: the Responses API's, and the last event
// of the other OpenAI streams (a transcription's, an image generation's or edit's, speech's).
bool is_terminal_type(std::string_view t) {
  return t == "response.completed" || t == "response.failed" || t == "response.incomplete" ||
         t == "error" || t == "transcript.text.done" || t == "image_generation.completed" ||
         t == "image_edit.completed" || t == "speech.audio.done";
}

bool is_error_type(std::string_view t) {
  return t == "error" || t == "response.failed";
}

void classify(std::string_view type, event_info& info) {
  if (is_terminal_type(type)) info.terminal = true;
  if (is_error_type(type)) info.error = true;
}

// Checks the bytes after a quote (from k) for a key that matters: model, type, response, or a
// usage or error that is not null.
inline bool key_that_matters(const char* k, const char* end) {
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

// Only a quote followed by the first letter of a key that matters (m, t, r, u, e) or a
// backslash followed by 'u' can make the rest not plain. The vector scans test a block of bytes
// against the same bytes shifted by one, so a typical chunk event (~20 quotes, one of them
// before "usage":null) visits one candidate instead of every quote. The last byte cannot start
// anything (a quote or backslash needs a successor), so after the whole blocks one more block
// ending at the second-to-last byte, overlapping those already tested, finishes the rest.

bool plain_at(const char* q, const char* end) {  // q: a candidate
  if (*q == '\\') return !(q + 1 < end && q[1] == 'u');
  return !key_that_matters(q + 1, end);
}

// Most blocks have no candidate: callers test the mask before paying for this call.
bool plain_candidates(const char* at, std::uint64_t mask, const char* end) {
  for (; mask; mask &= mask - 1)
    if (!plain_at(at + __builtin_ctzll(mask), end)) return false;
  return true;
}

bool plain_rest_scalar(const char* p, const char* end) {
  for (; p < end; ++p)
    if ((*p == '"' || *p == '\\') && !plain_at(p, end)) return false;
  return true;
}

// The block loop shared by the vector scans: `candidates(at)` has bit i set when at+i is a
// candidate, reading at .. at+W.
template <std::size_t W, class F>
inline __attribute__((always_inline)) bool plain_rest_blocks(const char* p, const char* end,
                                                             F candidates) {
  const char* const begin = p;
  for (; static_cast<std::size_t>(end - p) >= W + 1; p += W)
    if (auto m = candidates(p); m && !plain_candidates(p, m, end)) return false;
  if (static_cast<std::size_t>(end - begin) < W + 1) return plain_rest_scalar(p, end);
  const char* at = end - (W + 1);
  return plain_candidates(at, candidates(at) & (~std::uint64_t{0} << (p - at)), end);
}

#if defined(__x86_64__)
bool plain_rest_sse2(const char* p, const char* end) {
  const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\');
  const __m128i m = _mm_set1_epi8('m'), t = _mm_set1_epi8('t'), r = _mm_set1_epi8('r');
  const __m128i u = _mm_set1_epi8('u'), e = _mm_set1_epi8('e');
  return plain_rest_blocks<16>(p, end, [&](const char* at) -> std::uint64_t {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 1));
    const __m128i next_u = _mm_cmpeq_epi8(w, u);
    const __m128i key_start = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(w, m), _mm_cmpeq_epi8(w, t)),
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, r), next_u), _mm_cmpeq_epi8(w, e)));
    const __m128i hit = _mm_or_si128(_mm_and_si128(_mm_cmpeq_epi8(v, quote), key_start),
                                     _mm_and_si128(_mm_cmpeq_epi8(v, slash), next_u));
    return static_cast<std::uint32_t>(_mm_movemask_epi8(hit));
  });
}

// The AVX2 scans' constants. (Spelled out for AVX2, not shared with the SSE2 scan through a
// template or lambda: those would not inherit the target attribute.)
struct alignas(32) bytes32 {
  char b[32];
};
constexpr bytes32 splat(char c) {
  bytes32 s{};
  for (auto& x : s.b) x = c;
  return s;
}
// A 16-byte shuffle table, repeated in both 128-bit lanes (vpshufb looks up within a lane).
constexpr bytes32 lane_table(std::initializer_list<std::pair<int, char>> entries) {
  bytes32 s{};
  for (auto [i, v] : entries) s.b[i] = s.b[i + 16] = v;
  return s;
}
constexpr bytes32 k_quote = splat('"'), k_slash = splat('\\'), k_lf = splat('\n'),
                  k_cr = splat('\r'), k_low_nibble = splat(0x0f);
// A key's first letter (e, m, r, t, u) by its two nibbles: bit 1 for 0x6_ (e = 0x65, m = 0x6d),
// bit 2 for 0x7_ (r = 0x72, t = 0x74, u = 0x75); a byte is one of them when the bits its low and
// high nibbles look up share one.
constexpr bytes32 k_key_by_low = lane_table({{0x2, 2}, {0x4, 2}, {0x5, 1 | 2}, {0xd, 1}});
constexpr bytes32 k_key_by_high = lane_table({{0x6, 1}, {0x7, 2}});

__attribute__((target("avx2"), always_inline)) inline __m256i load32(const bytes32& k) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(k.b));
}

// Bytes of `v` (the block) that may start something that matters, given `w` (the same bytes
// shifted by one): a quote or backslash followed by e, m, r, t or u. (A backslash followed by
// e, m, r or t is no \u escape: plain_at clears it. Allowing it saves an operation per block.)
__attribute__((target("avx2"), always_inline)) inline __m256i candidates_avx2(__m256i v,
                                                                              __m256i w) {
  const __m256i low = _mm256_and_si256(w, load32(k_low_nibble));
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(w, 4), load32(k_low_nibble));
  const __m256i key = _mm256_and_si256(_mm256_shuffle_epi8(load32(k_key_by_low), low),
                                       _mm256_shuffle_epi8(load32(k_key_by_high), high));
  const __m256i not_key = _mm256_cmpeq_epi8(key, _mm256_setzero_si256());
  const __m256i start =
      _mm256_or_si256(_mm256_cmpeq_epi8(v, load32(k_quote)), _mm256_cmpeq_epi8(v, load32(k_slash)));
  return _mm256_andnot_si256(not_key, start);
}

// Bit i: at+i is a candidate (reads at .. at+32).
__attribute__((target("avx2"), always_inline)) inline std::uint64_t candidates_avx2(
    const char* at) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at));
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + 1));
  return static_cast<std::uint32_t>(_mm256_movemask_epi8(candidates_avx2(v, w)));
}

__attribute__((target("avx2"))) bool plain_rest_avx2(const char* p, const char* end) {
  const char* const begin = p;
  for (; end - p >= 33; p += 32)
    if (auto m = candidates_avx2(p); m && !plain_candidates(p, m, end)) return false;
  if (end - begin < 33) return plain_rest_sse2(p, end);
  const char* at = end - 33;
  return plain_candidates(at, candidates_avx2(at) & (~std::uint64_t{0} << (p - at)), end);
}
#endif

detail::scan_isa best_scan() {
#if defined(__x86_64__)
  __builtin_cpu_init();  // this also runs from a static initializer
  return __builtin_cpu_supports("avx2") ? detail::scan_isa::avx2 : detail::scan_isa::sse2;
#else
  return detail::scan_isa::scalar;
#endif
}

detail::scan_isa scan_in_use = best_scan();

// True when `rest` (the data after a known prefix) cannot add or change anything the parse
// would report: no key spelled model/usage/error/type/response (a null usage or error is
// fine), and no \u escape that could spell one. Conservative: a string value that merely
// reads "model" sends the event to the full parse.
bool plain_rest(std::string_view rest) {
  const char* p = rest.data();
  const char* end = p + rest.size();
  switch (scan_in_use) {
#if defined(__x86_64__)
    case detail::scan_isa::avx2:
      return plain_rest_avx2(p, end);
    case detail::scan_isa::sse2:
      return plain_rest_sse2(p, end);
#endif
    default:
      return plain_rest_scalar(p, end);
  }
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
  shape.one_line = prefix.find('\n') == std::string_view::npos;
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

bool usage_only_chunk(const json::answer_info& a) {
  return a.is_object && a.empty_choices && a.usage_object;
}

event_info rewrite_kept_or_dropped(const event& ev, json::model_finder& finder,
                                   std::string_view group_literal, std::string& out,
                                   stream_shape* shape, bool strip);

}  // namespace

// Only a removed event's neighbours need care: see usage_strip.
event_info rewrite_event(const event& ev, json::model_finder& finder,
                         std::string_view group_literal, std::string& out, stream_shape* shape,
                         usage_strip* strip) {
  if (!strip || !strip->enabled)
    return rewrite_kept_or_dropped(ev, finder, group_literal, out, shape, false);
  const bool leading_lf = !ev.raw.empty() && ev.raw.front() == '\n';
  const bool lf_is_removed = std::exchange(strip->lf_pending, false) && leading_lf;
  const std::size_t before = out.size();
  event_info info = rewrite_kept_or_dropped(ev, finder, group_literal, out, shape, true);
  if (info.dropped) {
    if (leading_lf && !lf_is_removed) out.push_back('\n');  // the end of the event before
    strip->lf_pending = ev.raw.back() == '\r';
  } else if (lf_is_removed) {
    out.erase(before, 1);  // rare: a CRLF split across reads right after a removed event
  }
  return info;
}

namespace {

event_info rewrite_kept_or_dropped(const event& ev, json::model_finder& finder,
                                   std::string_view group_literal, std::string& out,
                                   stream_shape* shape, bool strip) {
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
  if (strip && usage_only_chunk(a)) {
    info.dropped = true;
    return info;
  }
  splice_models(ev, a.models, a.model_count, group_literal, out);
  return info;
}

}  // namespace

namespace {

bool fast_path_on = true;

// The end of a data line whose value continues past the shape's prefix at `p`: the offset from
// `p` of its LF, when the line has no CR and its rest is plain; npos otherwise (no LF in sight
// counts as otherwise). Reading the plain test up to `end` instead of the LF gives the same
// answer: no key it looks for contains an LF.
std::size_t plain_line_end_generic(const char* p, const char* end) {
  const void* lf = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
  if (!lf) return std::string_view::npos;
  const auto n = static_cast<std::size_t>(static_cast<const char*>(lf) - p);
  if (std::memchr(p, '\r', n) || !plain_rest(std::string_view(p, n))) return std::string_view::npos;
  return n;
}

#if defined(__x86_64__)
__attribute__((target("avx2"), always_inline)) inline std::uint32_t line_stops_avx2(__m256i v) {
  return static_cast<std::uint32_t>(_mm256_movemask_epi8(
      _mm256_or_si256(_mm256_cmpeq_epi8(v, load32(k_lf)), _mm256_cmpeq_epi8(v, load32(k_cr)))));
}

// The same in one pass, 64 bytes a step: each step's candidates are checked only up to its
// first LF or CR. A chunk's rest is a few hundred bytes, so most steps find neither a stop nor
// a candidate and cost one branch.
__attribute__((target("avx2"))) std::size_t plain_line_end_avx2(const char* p, const char* end) {
  const char* const begin = p;
  constexpr std::size_t more = std::string_view::npos - 1;
  // A step with a stop or a candidate: the line's end when the step holds it, npos when the rest
  // is not plain, `more` when the step's candidates are plain and no stop is in it.
  auto settle = [&](std::uint64_t stops, std::uint64_t m) -> std::size_t {
    if (stops) {
      const int stop = __builtin_ctzll(stops);
      m &= (std::uint64_t{1} << stop) - 1;
      if ((m && !plain_candidates(p, m, end)) || p[stop] != '\n') return std::string_view::npos;
      return static_cast<std::size_t>(p + stop - begin);
    }
    return plain_candidates(p, m, end) ? more : std::string_view::npos;
  };
  for (; end - p >= 65; p += 64) {
    const __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 1));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 33));
    const std::uint64_t stops = line_stops_avx2(v0) | (std::uint64_t{line_stops_avx2(v1)} << 32);
    const std::uint64_t m =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(candidates_avx2(v0, w0))) |
        (std::uint64_t{static_cast<std::uint32_t>(_mm256_movemask_epi8(candidates_avx2(v1, w1)))}
         << 32);
    if (!(stops | m)) continue;
    if (const std::size_t r = settle(stops, m); r != more) return r;
  }
  if (end - p >= 33) {  // one more half step
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const std::uint64_t stops = line_stops_avx2(v), m = candidates_avx2(p);
    if (stops | m)
      if (const std::size_t r = settle(stops, m); r != more) return r;
    p += 32;
  }
  const std::size_t n = plain_line_end_generic(p, end);  // the last few bytes
  return n == std::string_view::npos ? n : static_cast<std::size_t>(p - begin) + n;
}
#endif

// The model spans inside a claimed event, as append_spliced would use them: all lie in the
// prefix, so only its order rule can skip one, the same for every event.
struct claim_spans {
  json::span at[json::answer_info::max_models];
  int count = 0;
};

claim_spans spans_of(const stream_shape& shape, std::size_t field_size) {
  claim_spans c;
  std::size_t pos = 0;
  for (int i = 0; i < shape.model_count; ++i) {
    const json::span s{shape.models[i].begin + field_size, shape.models[i].end + field_size};
    if (s.begin < pos || s.begin > s.end) continue;
    c.at[c.count++] = s;
    pos = s.end;
  }
  return c;
}

// The claim's loop, with the line scan `line_end(p, end)` (plain_line_end_*) inlined into it.
template <class LineEnd>
[[gnu::always_inline]] inline std::size_t claim_loop(std::string_view bytes,
                                                     const stream_shape& shape,
                                                     std::string_view group_literal,
                                                     std::string& out, int& events,
                                                     LineEnd line_end) {
  constexpr std::string_view field = "data: ";
  const std::size_t head = field.size() + shape.prefix.size();
  const claim_spans spans = spans_of(shape, field.size());
  // Consecutive events are consecutive bytes: the bytes between one event's last model and the
  // next event's first are copied in one piece.
  const char* copied = bytes.data();
  std::size_t taken = 0;
  for (;;) {
    const char* at = bytes.data() + taken;
    const std::size_t avail = bytes.size() - taken;
    if (avail < head + 2 || std::memcmp(at, field.data(), field.size()) != 0 ||
        std::memcmp(at + field.size(), shape.prefix.data(), shape.prefix.size()) != 0)
      break;
    const std::size_t n = line_end(at + head, at + avail);
    if (n == std::string_view::npos) break;
    const std::size_t size = head + n + 2;  // the line, its LF and the blank line
    if (size > avail || at[size - 1] != '\n') break;
    for (int i = 0; i < spans.count; ++i) {
      out.append(copied, static_cast<std::size_t>(at + spans.at[i].begin - copied));
      out.append(group_literal);
      copied = at + spans.at[i].end;
    }
    taken += size;
    ++events;
  }
  out.append(copied, static_cast<std::size_t>(bytes.data() + taken - copied));
  return taken;
}

std::size_t claim_generic(std::string_view bytes, const stream_shape& shape,
                          std::string_view group_literal, std::string& out, int& events) {
  return claim_loop(bytes, shape, group_literal, out, events, plain_line_end_generic);
}

#if defined(__x86_64__)
// Compiled for AVX2 as a whole, so the scan is inlined into the loop and its constants stay in
// registers from one event to the next.
__attribute__((target("avx2"), flatten)) std::size_t claim_avx2(std::string_view bytes,
                                                                const stream_shape& shape,
                                                                std::string_view group_literal,
                                                                std::string& out, int& events) {
  return claim_loop(bytes, shape, group_literal, out, events, plain_line_end_avx2);
}
#endif

}  // namespace

std::size_t claim_plain_events(std::string_view bytes, const stream_shape& shape,
                               const usage_strip* strip, std::string_view group_literal,
                               std::string& out, int& events) {
  if (!fast_path_on || shape.prefix.empty() || !shape.one_line || (strip && strip->lf_pending))
    return 0;
#if defined(__x86_64__)
  if (scan_in_use == detail::scan_isa::avx2)
    return claim_avx2(bytes, shape, group_literal, out, events);
#endif
  return claim_generic(bytes, shape, group_literal, out, events);
}

namespace detail {
bool use_fast_path(bool on) {
  return std::exchange(fast_path_on, on);
}

scan_isa use_scan(scan_isa isa) {
  const scan_isa before = scan_in_use;
  scan_in_use = isa == scan_isa::best ? best_scan() : isa;
  return before;
}
}  // namespace detail

}  // namespace ob::proxy::sse
