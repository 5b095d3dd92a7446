// Outbound stream: Anthropic Messages events -> chat.completion.chunk events.
//
// Per event: one simdjson DOM parse of the data (the thread's parser; text and tool input
// deltas, the start of a text block, content_block_stop and message_stop in Anthropic's compact
// layout need none, see compact_delta) and appends to `out`; every chunk starts with the same
// bytes (id, object, created, model), built once at message_start.
#include <charconv>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dialect/anthropic/mapping.hpp"
#include "proxy/sse/framer.hpp"

namespace ob::dialect::anthropic {

using namespace detail;

namespace {

constexpr std::size_t max_blocks = 4096;  // content blocks per message we keep track of
constexpr std::string_view chunk_tail = R"(,"logprobs":null,"finish_reason":null}]})"
                                        "\n\n";

struct block {
  std::int64_t index;
  int tool;           // tool call index, -1 for text/thinking/other blocks
  bool args = false;  // a non-empty argument fragment was sent
};

// Whether the 8 bytes at p hold a byte that a JSON string must escape: a control byte
// (< 0x20), '"' or '\\'. Bytes >= 0x80 are not flagged. (The classic word tests for a byte
// below n or equal to c: exact as a yes/no answer, whatever the other bytes are.)
inline bool escape_in8(const char* p, std::uint64_t& high) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  const std::uint64_t quote = v ^ (ones * '"'), slash = v ^ (ones * '\\');
  high |= v;
  return ((((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash)) &
          highs) != 0;
}

#if defined(__SSE2__)
// escape_in8 for the 16 bytes at p: a byte <= 0x1f (unsigned), '"' or '\\'.
inline bool escape_in16(const char* p, __m128i& high) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  high = _mm_or_si128(high, v);
  const __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
  const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  const __m128i slash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  return _mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(quote, slash))) != 0;
}
#endif

// The check of a text in which a word test flagged a byte: control bytes and bare quotes are
// refused, and escapes are taken only when the DOM path writes them back the same (its
// append_json_string writes \" \\ \b \f \n \r \t; not \/ nor \u).
bool short_escapes_only(std::string_view t, bool& ascii) {
  bool high = false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    auto c = static_cast<unsigned char>(t[i]);
    if (c < 0x20 || c == '"') return false;
    high = high || c >= 0x80;
    if (c != '\\') continue;
    if (++i == t.size()) return false;
    switch (t[i]) {
      case '"':
      case '\\':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        continue;
      default:
        return false;
    }
  }
  ascii = !high;
  return true;
}

// True when the JSON string content `t` can be copied into a chunk as it is: the bytes the DOM
// path writes for it (no escapes, or only those of short_escapes_only); `ascii` is then whether
// every byte is below 0x80. 16 (or 8) bytes per step, the last step overlapping the one before:
// text deltas are most of a stream.
bool copyable_text(std::string_view t, bool& ascii) {
  const char* p = t.data();
  const std::size_t n = t.size();
#if defined(__SSE2__)
  if (n >= 16) {
    __m128i high = _mm_setzero_si128();
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
      if (escape_in16(p + i, high)) return short_escapes_only(t, ascii);
    if (i < n && escape_in16(p + n - 16, high)) return short_escapes_only(t, ascii);
    ascii = _mm_movemask_epi8(high) == 0;
    return true;
  }
#endif
  std::uint64_t high = 0;
  if (n >= 8) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
      if (escape_in8(p + i, high)) return short_escapes_only(t, ascii);
    if (i < n && escape_in8(p + n - 8, high)) return short_escapes_only(t, ascii);
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      auto c = static_cast<unsigned char>(p[i]);
      if (c < 0x20 || c == '"' || c == '\\') return short_escapes_only(t, ascii);
      high |= c;
    }
  }
  ascii = (high & 0x8080808080808080ULL) == 0;
  return true;
}

// A block index as Anthropic writes it at data[i]: 1 to 9 digits, no leading zero (what the
// DOM path reads as the same number; anything else goes there). Returns the end, or 0.
std::size_t compact_index(std::string_view data, std::size_t i, std::int64_t& index) {
  const std::size_t digits = i;
  std::int64_t v = 0;
  while (i < data.size() && data[i] >= '0' && data[i] <= '9' && i - digits < 10)
    v = v * 10 + (data[i++] - '0');
  if (i == digits || i - digits > 9 || (data[digits] == '0' && i - digits > 1)) return 0;
  index = v;
  return i;
}

// Most events of a stream are deltas in Anthropic's own compact layout:
//   {"type":"content_block_delta","index":<digits>,"delta":{"type":"text_delta","text":"<t>"}}
//   {"type":"content_block_delta","index":<digits>,"delta":{"type":"input_json_delta","partial_json":"<t>"}}
// When `data` is exactly that and <t> is written back the same by the DOM path (no control
// byte or bare '"'; only the escapes \" \\ \b \f \n \r \t; valid UTF-8), <t> goes into the
// chunk as it is, without a parse. Anything else (\u or \/ escapes, another layout) takes the
// DOM path. `kind` is the middle of the layout, from ,"delta" to the string's opening quote.
bool compact_delta(std::string_view data, std::string_view kind, std::int64_t& index,
                   std::string_view& text) {
  constexpr std::string_view head = R"({"type":"content_block_delta","index":)";
  constexpr std::string_view tail = R"("}})";
  if (data.size() < head.size() + 1 + kind.size() + tail.size() || !data.starts_with(head) ||
      !data.ends_with(tail))
    return false;
  std::size_t i = compact_index(data, head.size(), index);
  if (i == 0 || data.substr(i, kind.size()) != kind) return false;
  i += kind.size();
  if (i > data.size() - tail.size()) return false;
  std::string_view t = data.substr(i, data.size() - tail.size() - i);
  bool ascii = true;
  if (!copyable_text(t, ascii)) return false;
  if (!ascii && !simdjson::validate_utf8(t.data(), t.size())) return false;
  text = t;
  return true;
}

constexpr std::string_view text_delta = R"(,"delta":{"type":"text_delta","text":")";
constexpr std::string_view json_delta = R"(,"delta":{"type":"input_json_delta","partial_json":")";

// The other small events of every stream, in the compact layout, without a parse:
//   {"type":"content_block_start","index":<digits>,"content_block":{"type":"text","text":""}}
//   {"type":"content_block_stop","index":<digits>}   -> its index
//   {"type":"message_stop"}
bool compact_text_block_start(std::string_view data, std::int64_t& index) {
  constexpr std::string_view head = R"({"type":"content_block_start","index":)";
  constexpr std::string_view tail = R"(,"content_block":{"type":"text","text":""}})";
  if (!data.starts_with(head) || !data.ends_with(tail)) return false;
  return compact_index(data, head.size(), index) == data.size() - tail.size();
}

bool compact_block_stop(std::string_view data, std::int64_t& index) {
  constexpr std::string_view head = R"({"type":"content_block_stop","index":)";
  if (!data.starts_with(head) || !data.ends_with('}')) return false;
  return compact_index(data, head.size(), index) == data.size() - 1;
}

constexpr std::string_view compact_message_stop = R"({"type":"message_stop"})";

}  // namespace

struct anthropic_stream_to_openai::state {
  std::string group;
  bool include_usage = false;
  std::int64_t created = 0;
  std::string head;  // "data: {"id":..,"object":..,"created":..,"model":..,"
  std::vector<block> blocks;
  int tools = 0;
  bool started = false, finished = false, over = false;
  std::string_view finish = "stop";  // static strings (finish_reason table)
  token_usage usage;
  std::int64_t cached = -1;
  int written = 0;  // client events appended so far (each starts in open_chunk or is counted)

  void reset(std::string_view g, bool iu, std::int64_t c) {
    group.assign(g);
    include_usage = iu;
    created = c;
    head.clear();
    blocks.clear();
    tools = 0;
    started = finished = over = false;
    finish = "stop";
    usage = {};
    cached = -1;
    written = 0;
  }

  // What json_writer writes for {"id":id,"object":..,"created":..,"model":group, in pieces.
  void make_head(std::string_view id) {
    head.assign(R"(data: {"id":)");
    ob::proxy::json::append_json_string(head, id);
    head += R"(,"object":"chat.completion.chunk","created":)";
    char digits[24];
    head.append(digits, std::to_chars(digits, digits + sizeof digits, created).ptr);
    head += R"(,"model":)";
    ob::proxy::json::append_json_string(head, group);
    head += ',';
  }

  // Appends a chunk's opening up to "delta": (then the caller writes the delta object).
  void open_chunk(std::string& out) {
    ++written;
    if (head.empty()) make_head("");
    out += head;
    out += R"("choices":[{"index":0,"delta":)";
  }

  void take_usage(dom::element u) {
    std::int64_t in = get_count(u, "input_tokens");
    std::int64_t read = get_count(u, "cache_read_input_tokens");
    std::int64_t made = get_count(u, "cache_creation_input_tokens");
    std::int64_t outn = get_count(u, "output_tokens");
    if (in >= 0 || read >= 0 || made >= 0)
      usage.prompt_tokens = add_counts(add_counts(in, read), made);
    if (read >= 0) cached = read;
    if (outn >= 0) usage.completion_tokens = outn;
    if (usage.prompt_tokens >= 0 || usage.completion_tokens >= 0)
      usage.total_tokens = std::max<std::int64_t>(usage.prompt_tokens, 0) +
                           std::max<std::int64_t>(usage.completion_tokens, 0);
  }

  block* find(std::int64_t index) {
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it)
      if (it->index == index) return &*it;
    return nullptr;
  }

  event_result fail(std::string& out, std::string_view message, std::string_view code) {
    over = true;
    ++written;
    ob::proxy::sse::append_error_event(out, message, "upstream_error", code);
    event_result r;
    r.terminal = r.error = true;
    return r;
  }

  void role_chunk(std::string& out) {
    started = true;
    open_chunk(out);
    out += R"({"role":"assistant","content":""})";
    out += chunk_tail;
  }

  void finish_chunk(std::string& out) {
    finished = true;
    open_chunk(out);
    out += R"({},"logprobs":null,"finish_reason":")";
    out += finish;
    out += "\"}]}\n\n";
  }

  event_result on_event(std::string_view name, std::string_view data, std::string& out);
  event_result keep_alive(std::string& out);
  event_result on_block_start(dom::element root, std::string& out);
  event_result on_block_delta(dom::element root, std::string& out);
  event_result on_stop(std::string& out);

  // A fragment of a tool's input: an arguments chunk. `escaped`: `part` is JSON string content
  // that needs no further escaping (compact_delta), else the decoded text.
  event_result on_tool_input(std::int64_t index, std::string_view part, bool escaped,
                             std::string& out) {
    block* b = find(index);
    if (!b || b->tool < 0)
      return fail(out, "the provider sent tool input outside a tool_use block",
                  "upstream_bad_response");
    if (part.empty()) return {};
    b->args = true;
    open_chunk(out);
    json_writer w(out);
    w.begin_object().key("tool_calls").begin_array().begin_object().kv_int("index", b->tool);
    w.key("function").begin_object().key("arguments");
    if (escaped) {
      w.raw("\"");  // the string's bytes as they are, closing quote included
      out += part;
      out += '"';
    } else {
      w.string(part);
    }
    w.end_object().end_object().end_array().end_object();
    out += chunk_tail;
    return {};
  }

  // Remembers a block that started (its index, and its tool call or -1).
  event_result add_block(block b, std::string& out) {
    if (blocks.size() >= max_blocks)
      return fail(out, "the provider sent too many content blocks", "upstream_bad_response");
    blocks.push_back(b);
    return {};
  }

  event_result on_block_stop(std::int64_t index, std::string& out) {
    block* b = find(index);
    if (b && b->tool >= 0 && !b->args) {  // a tool without input: its arguments are "{}"
      b->args = true;
      open_chunk(out);
      json_writer w(out);
      w.begin_object().key("tool_calls").begin_array().begin_object().kv_int("index", b->tool);
      w.key("function").begin_object().kv("arguments", "{}").end_object();
      w.end_object().end_array().end_object();
      out += chunk_tail;
    }
    return {};
  }
};

// A provider keep-alive (a ping, an SSE comment) through a long prefill: an OpenAI client has
// no ping event, so it gets a comment, which SSE parsers skip. It is no client event (events
// stays 0): the exchange may let it out before the first one (timeouts.stream_hold).
event_result anthropic_stream_to_openai::state::keep_alive(std::string& out) {
  if (!over) out += ": ping\n\n";
  return {};
}

event_result anthropic_stream_to_openai::state::on_event(std::string_view name,
                                                         std::string_view data, std::string& out) {
  event_result r;
  if (over) return r;
  if (name == "ping") return keep_alive(out);
  std::int64_t index;
  if (std::string_view t; compact_delta(data, text_delta, index, t)) {
    if (!started) role_chunk(out);
    if (!t.empty()) {
      open_chunk(out);
      out += R"({"content":")";
      out += t;
      out += "\"}";
      out += chunk_tail;
    }
    return r;
  }
  if (std::string_view part; compact_delta(data, json_delta, index, part)) {
    if (!started) role_chunk(out);
    return on_tool_input(index, part, true, out);
  }
  if (compact_text_block_start(data, index)) {
    if (!started) role_chunk(out);
    return add_block(block{index, -1}, out);  // an empty text: nothing to send yet
  }
  if (compact_block_stop(data, index)) {
    if (!started) role_chunk(out);
    return on_block_stop(index, out);
  }
  if (data == compact_message_stop) {
    if (!started) role_chunk(out);
    return on_stop(out);
  }
  dom::element root;
  // The event's DOM is read within this call: the thread's parser serves every stream.
  if (!parse(thread_parser(), data, root) || !is_object(root)) {
    if (data.empty() && name.empty()) return r;  // a comment or a blank event
    return fail(out, "the provider sent a malformed stream event", "upstream_bad_response");
  }
  std::string_view type = get_str(root, "type");
  if (type.empty()) type = name;
  if (type == "ping") return keep_alive(out);
  if (type == "message_start") {
    member m = get(root, "message");
    if (m.found) {
      make_head(get_str(m.value, "id"));
      member u = get(m.value, "usage");
      if (u.found && is_object(u.value)) take_usage(u.value);
    }
    // The role chunk waits for the first event after message_start (and its pings): an
    // error there (Anthropic's overloaded_error after accepting a stream) is then the
    // answer's first client event, and the exchange fails over.
    return r;
  }
  // Before the role chunk: an error that opens the stream is the answer's first client event,
  // so the exchange fails over as for an OpenAI stream that opens with an error.
  if (type == "error") {
    member e = get(root, "error");
    std::string_view et = e.found ? get_str(e.value, "type") : std::string_view{};
    std::string_view msg = e.found ? get_str(e.value, "message") : std::string_view{};
    over = true;
    ++written;
    ob::proxy::sse::append_error_event(out, msg.empty() ? "the provider reported an error" : msg,
                                       "upstream_error", et.empty() ? "upstream_error" : et);
    r.terminal = r.error = true;
    return r;
  }
  if (!started) role_chunk(out);  // tolerate a stream without message_start
  if (type == "content_block_start") return on_block_start(root, out);
  if (type == "content_block_delta") return on_block_delta(root, out);
  if (type == "content_block_stop") return on_block_stop(get_count(root, "index"), out);
  if (type == "message_delta") {
    member d = get(root, "delta");
    if (d.found) {
      std::string_view sr = get_str(d.value, "stop_reason");
      if (!sr.empty()) finish = finish_reason(sr);
    }
    member u = get(root, "usage");
    if (u.found && is_object(u.value)) take_usage(u.value);
    if (!finished) finish_chunk(out);
    return r;
  }
  if (type == "message_stop") return on_stop(out);
  return r;  // unknown event types are ignored, as Anthropic asks of clients
}

event_result anthropic_stream_to_openai::state::on_block_start(dom::element root,
                                                               std::string& out) {
  event_result r;
  member cb = get(root, "content_block");
  std::int64_t index = get_count(root, "index");
  if (!cb.found || index < 0)
    return fail(out, "the provider sent a malformed content block", "upstream_bad_response");
  if (blocks.size() >= max_blocks)
    return fail(out, "the provider sent too many content blocks", "upstream_bad_response");
  std::string_view type = get_str(cb.value, "type");
  block b{index, -1};
  if (type == "tool_use") {
    b.tool = tools++;
    open_chunk(out);
    json_writer w(out);
    w.begin_object().key("tool_calls").begin_array().begin_object().kv_int("index", b.tool);
    w.kv("id", get_str(cb.value, "id")).kv("type", "function");
    w.key("function").begin_object().kv("name", get_str(cb.value, "name"));
    member in = get(cb.value, "input");
    dom::object o;
    if (in.found && !in.value.get_object().get(o) && o.size() > 0) {
      w.kv("arguments", simdjson::minify(in.value));  // input given whole (not streamed)
      b.args = true;
    } else {
      w.kv("arguments", "");
    }
    w.end_object().end_object().end_array().end_object();
    out += chunk_tail;
  } else if (type == "text") {
    std::string_view t = get_str(cb.value, "text");
    if (!t.empty()) {
      open_chunk(out);
      json_writer(out).begin_object().kv("content", t).end_object();
      out += chunk_tail;
    }
  }
  blocks.push_back(b);
  return r;
}

event_result anthropic_stream_to_openai::state::on_block_delta(dom::element root,
                                                               std::string& out) {
  event_result r;
  member d = get(root, "delta");
  if (!d.found) return fail(out, "the provider sent a malformed delta", "upstream_bad_response");
  std::string_view type = get_str(d.value, "type");
  if (type == "text_delta") {
    std::string_view t = get_str(d.value, "text");
    if (t.empty()) return r;
    open_chunk(out);
    json_writer(out).begin_object().kv("content", t).end_object();
    out += chunk_tail;
  } else if (type == "input_json_delta") {
    return on_tool_input(get_count(root, "index"), get_str(d.value, "partial_json"), false, out);
  } else if (type == "thinking_delta") {
    std::string_view t = get_str(d.value, "thinking");
    if (t.empty()) return r;
    open_chunk(out);
    json_writer(out).begin_object().kv("reasoning_content", t).end_object();
    out += chunk_tail;
  }
  // signature_delta, citations_delta and unknown deltas: nothing for an OpenAI client.
  return r;
}

event_result anthropic_stream_to_openai::state::on_stop(std::string& out) {
  event_result r;
  if (!finished) finish_chunk(out);
  if (include_usage) {
    ++written;
    if (head.empty()) make_head("");
    out += head;
    json_writer w(out);
    w.key("choices").begin_array().end_array();
    write_openai_usage(w, usage, cached);
    out += "}\n\n";
  }
  out += "data: [DONE]\n\n";
  ++written;
  over = true;
  r.terminal = true;
  r.usage = usage;
  return r;
}

anthropic_stream_to_openai::anthropic_stream_to_openai(std::string_view group, bool include_usage,
                                                       std::int64_t created)
    : s_(std::make_unique<state>()) {
  s_->reset(group, include_usage, created);
}
anthropic_stream_to_openai::~anthropic_stream_to_openai() = default;
anthropic_stream_to_openai::anthropic_stream_to_openai(anthropic_stream_to_openai&&) noexcept =
    default;
anthropic_stream_to_openai& anthropic_stream_to_openai::operator=(
    anthropic_stream_to_openai&&) noexcept = default;

event_result anthropic_stream_to_openai::on_event(std::string_view name, std::string_view data,
                                                  std::string& out) {
  const int before = s_->written;
  event_result r = s_->on_event(name, data, out);
  r.events = s_->written - before;
  trim_thread_parser();
  return r;
}

void anthropic_stream_to_openai::keep_alive(std::string& out) {
  s_->keep_alive(out);
}

token_usage anthropic_stream_to_openai::usage() const {
  return s_->usage;
}

void anthropic_stream_to_openai::reset(std::string_view group, bool include_usage,
                                       std::int64_t created) {
  s_->reset(group, include_usage, created);
}

}  // namespace ob::dialect::anthropic
