// Outbound request, single pass: the common OpenAI chat completions body -> Anthropic Messages
// body, read once with simdjson On-Demand and written straight into the caller's string.
// Every value is read (never left to On-Demand's skipping, which does not validate), and the
// document must end after the root object: so a body is taken only when it is valid JSON.
// Everything it does not handle goes to the general translator (request_out.cpp), which stays
// the reference: for every body this one accepts, the output is byte for byte the general one's
// (tests/dialect and the anthropic_request fuzz target compare the two).
#include "dialect/anthropic/request_fast.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>

#include <simdjson.h>

#include "dialect/anthropic/mapping.hpp"
#include "proxy/json/model.hpp"  // append_json_string

namespace ob::dialect::anthropic::detail {
namespace {

namespace od = simdjson::ondemand;
using simdjson::SUCCESS;

constexpr std::size_t max_body = 64 * 1024;  // larger bodies take the general path
constexpr std::size_t max_system = 8;        // system/developer texts kept without allocating
constexpr std::size_t max_parts = 8;         // text parts of one message

// A string value as the general translator writes it (json_writer::string of the unescaped
// text). `raw` is the token with its quotes when it holds no backslash: stage 1 validated its
// UTF-8 and refused raw control characters, so append_json_string would write those very bytes.
struct text {
  std::string_view s;
  bool raw = false;
  bool empty() const { return raw ? s.size() == 2 : s.empty(); }
};

void append_text(std::string& out, const text& t) {
  if (t.raw) {
    out += t.s;
  } else {
    ob::proxy::json::append_json_string(out, t.s);
  }
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// A string value; false if the value is not a valid string.
bool get_text(od::value v, text& t) {
  od::json_type type;
  if (v.type().get(type) || type != od::json_type::string) return false;
  std::string_view tok = trim_right(v.raw_json_token());
  if (tok.size() >= 2 && tok.front() == '"' && tok.back() == '"' &&
      std::memchr(tok.data() + 1, '\\', tok.size() - 2) == nullptr) {
    // Consumed all the same: On-Demand skips an unread value without validating what follows
    // it (a string followed by ':' is taken for a key), so every value is read.
    od::raw_json_string consumed;
    if (v.get_raw_json_string().get(consumed)) return false;
    t.s = tok;
    t.raw = true;
    return true;
  }
  t.raw = false;
  return !v.get_string().get(t.s);
}

// A number token the general translator reads as a number of the same value: at most 17
// significant digits (18 for an integer: larger integers are parsed differently by the DOM, or
// refused) and an exponent of at most 3 digits. Longer tokens go to the general path: the
// portable On-Demand kernel misreads some of them (0.555...55000013499088 with 29 digits came
// out as 6.4e-11), which the DOM's kernel does not.
struct number {
  double d = 0;
  bool integer = false;  // the DOM holds it as an int64 (minify writes it as one)
  std::int64_t i = 0;
};

bool get_number(od::value v, number& n) {
  od::json_type type;
  if (v.type().get(type) || type != od::json_type::number) return false;
  std::string_view tok = trim_right(v.raw_json_token());
  auto digit = [&](std::size_t k) { return k < tok.size() && tok[k] >= '0' && tok[k] <= '9'; };
  std::size_t k = tok.starts_with('-') ? 1 : 0;
  std::size_t digits = 0;
  while (digit(k)) ++k, ++digits;
  if (digits == 0) return false;
  n.integer = k == tok.size();
  if (n.integer) {
    if (digits > 18) return false;
    if (v.get_int64().get(n.i)) return false;  // (read: see get_text)
    n.d = static_cast<double>(n.i);
    return true;
  }
  if (k < tok.size() && tok[k] == '.') {
    ++k;
    while (digit(k)) ++k, ++digits;
  }
  if (digits > 17) return false;
  if (k < tok.size() && (tok[k] == 'e' || tok[k] == 'E')) {
    ++k;
    if (k < tok.size() && (tok[k] == '+' || tok[k] == '-')) ++k;
    std::size_t e = 0;
    while (digit(k)) ++k, ++e;
    if (e == 0 || e > 3) return false;
  }
  if (k != tok.size()) return false;
  return !v.get_double().get(n.d);
}

// What simdjson::minify writes for the number (the general path re-serializes it).
void append_number(std::string& out, const number& n) {
  char buf[32];
  char* end = n.integer ? std::to_chars(buf, buf + sizeof buf, n.i).ptr
                        : simdjson::internal::to_chars(buf, nullptr, n.d);
  out.append(buf, end);
}

bool get_bool(od::value v, bool& b) {
  od::json_type type;
  if (v.type().get(type) || type != od::json_type::boolean) return false;
  return !v.get_bool().get(b);
}

// Key of a field; a key with a backslash is unescaped (as the DOM compares them).
bool key_of(simdjson::simdjson_result<od::field>& f, std::string_view& out) {
  od::raw_json_string raw;
  if (f.key().get(raw)) return false;
  const char* begin = raw.raw();
  const char* p = begin;
  while (*p != '"' && *p != '\\') ++p;
  if (*p == '"') {
    out = std::string_view(begin, static_cast<std::size_t>(p - begin));
    return true;
  }
  return !f.unescaped_key().get(out);
}

enum key_id : int {
  k_model,
  k_messages,
  k_max_tokens,
  k_max_completion_tokens,
  k_temperature,
  k_top_p,
  k_stream,
  k_stream_options,
  k_user,
  k_other
};

key_id top_key(std::string_view k) {
  switch (k.size()) {
    case 4:
      return k == "user" ? k_user : k_other;
    case 5:
      if (k == "model") return k_model;
      return k == "top_p" ? k_top_p : k_other;
    case 6:
      return k == "stream" ? k_stream : k_other;
    case 8:
      return k == "messages" ? k_messages : k_other;
    case 10:
      return k == "max_tokens" ? k_max_tokens : k_other;
    case 11:
      return k == "temperature" ? k_temperature : k_other;
    case 14:
      return k == "stream_options" ? k_stream_options : k_other;
    case 21:
      return k == "max_completion_tokens" ? k_max_completion_tokens : k_other;
    default:
      return k_other;
  }
}

struct pass {
  explicit pass(std::string& m) : msgs(m) {}

  std::array<text, max_system> system{};
  std::size_t systems = 0;
  std::string& msgs;  // the messages array's items, written as they are read
  number max_tokens, max_completion_tokens, temperature, top_p;
  text user;
  unsigned have = 0;  // bit per key_id
  bool stream = false, include_usage = false;

  bool seen(key_id k) {
    if (have & (1u << k)) return true;
    have |= 1u << k;
    return false;
  }
  bool has(key_id k) const { return have & (1u << k); }

  // A message's content: a string, or text parts (an array of {"type":"text","text":...}).
  struct content {
    text s;
    bool parts = false;
    std::array<text, max_parts> part{};
    std::size_t n = 0;
  };

  static bool get_content(od::value v, content& c) {
    od::json_type type;
    if (v.type().get(type)) return false;
    if (type == od::json_type::string) return get_text(v, c.s);
    od::array a;
    if (type != od::json_type::array || v.get_array().get(a)) return false;
    c.parts = true;
    for (auto e : a) {
      od::object o;
      if (e.get_object().get(o) || c.n == max_parts) return false;
      bool has_type = false, has_text = false;
      for (auto f : o) {
        std::string_view k;
        if (f.error() || !key_of(f, k)) return false;
        od::value pv;
        if (f.value().get(pv)) return false;
        if (k == "type" && !has_type) {
          has_type = true;
          od::json_type t;
          std::string_view name;
          if (pv.type().get(t) || t != od::json_type::string || pv.get_string().get(name) ||
              name != "text")
            return false;
        } else if (k == "text" && !has_text) {
          has_text = true;
          if (!get_text(pv, c.part[c.n])) return false;
        } else {
          return false;
        }
      }
      if (!has_type || !has_text) return false;
      ++c.n;
    }
    return true;
  }

  bool message(od::value m) {
    od::object o;
    if (m.get_object().get(o)) return false;
    std::string_view role;
    content c;
    bool has_role = false, has_content = false;
    for (auto f : o) {
      std::string_view k;
      if (f.error() || !key_of(f, k)) return false;
      od::value v;
      if (f.value().get(v)) return false;
      if (k == "role" && !has_role) {
        has_role = true;
        od::json_type type;
        if (v.type().get(type) || type != od::json_type::string || v.get_string().get(role))
          return false;
      } else if (k == "content" && !has_content) {
        has_content = true;
        if (!get_content(v, c)) return false;
      } else {
        return false;
      }
    }
    if (!has_role || !has_content) return false;
    const text* texts = c.parts ? c.part.data() : &c.s;
    const std::size_t n = c.parts ? c.n : 1;
    if (role == "system" || role == "developer") {  // hoisted: each text in order
      if (systems + n > max_system) return false;
      for (std::size_t i = 0; i < n; ++i) system[systems++] = texts[i];
      return true;
    }
    if (role == "user") {
      if (!msgs.empty()) msgs += ',';
      msgs += R"({"role":"user","content":)";
      if (c.parts) {
        msgs += '[';
        for (std::size_t i = 0; i < n; ++i) {
          if (i) msgs += ',';
          msgs += R"({"type":"text","text":)";
          append_text(msgs, texts[i]);
          msgs += '}';
        }
        msgs += ']';
      } else {
        append_text(msgs, c.s);
      }
      msgs += '}';
      return true;
    }
    if (role == "assistant") {
      bool any = false;
      for (std::size_t i = 0; i < n; ++i) any |= !texts[i].empty();
      if (!any) return true;  // nothing to say: the turn is left out
      if (!msgs.empty()) msgs += ',';
      msgs += R"({"role":"assistant","content":[)";
      bool first = true;
      for (std::size_t i = 0; i < n; ++i) {
        if (texts[i].empty()) continue;  // Anthropic refuses empty text blocks
        if (!first) msgs += ',';
        first = false;
        msgs += R"({"type":"text","text":)";
        append_text(msgs, texts[i]);
        msgs += '}';
      }
      msgs += "]}";
      return true;
    }
    return false;
  }

  bool field(key_id k, od::value v) {
    if (k == k_model) {  // dropped, but the value must be valid (a string, as always)
      text t;
      return get_text(v, t);
    }
    if (seen(k)) return false;  // a duplicate: refused by the general path
    switch (k) {
      case k_messages: {
        od::array a;
        if (v.get_array().get(a)) return false;
        for (auto m : a) {
          od::value mv;
          if (m.get(mv) || !message(mv)) return false;
        }
        return true;
      }
      case k_max_tokens:
        return get_number(v, max_tokens);
      case k_max_completion_tokens:
        return get_number(v, max_completion_tokens);
      case k_temperature:
        return get_number(v, temperature) && temperature.d >= 0 && temperature.d <= 1;
      case k_top_p:
        return get_number(v, top_p) && top_p.d >= 0 && top_p.d <= 1;
      case k_stream:
        return get_bool(v, stream);
      case k_stream_options: {
        od::object o;
        if (v.get_object().get(o)) return false;
        bool iu = false;
        for (auto f : o) {
          std::string_view key;
          if (f.error() || !key_of(f, key) || key != "include_usage" || iu) return false;
          od::value b;
          if (f.value().get(b) || !get_bool(b, include_usage)) return false;
          iu = true;
        }
        return true;
      }
      case k_user:
        return get_text(v, user);
      default:
        return false;
    }
  }
};

// This thread's On-Demand parser (capacity up to max_body) and padded copy of the body.
od::parser& thread_od_parser() {
  thread_local od::parser p(max_body);
  return p;
}

}  // namespace

bool single_pass(std::string_view body, const outbound_options& opt, std::string& out,
                 request_result& r) {
  if (body.empty() || body.size() > max_body) return false;
  const char* base = body.data();
  std::size_t capacity = opt.body_capacity;
  if (capacity < body.size() || capacity - body.size() < simdjson::SIMDJSON_PADDING) {
    // A copy in this thread's buffer, grown once to max_body at most (no zero-fill).
    thread_local std::unique_ptr<char[]> padded;
    thread_local std::size_t padded_size = 0;
    const std::size_t need = body.size() + simdjson::SIMDJSON_PADDING;
    if (padded_size < need) {
      padded_size =
          std::max(need, std::min(padded_size * 2, max_body + simdjson::SIMDJSON_PADDING));
      padded.reset(new char[padded_size]);
    }
    std::memcpy(padded.get(), body.data(), body.size());
    std::memset(padded.get() + body.size(), 0, simdjson::SIMDJSON_PADDING);
    base = padded.get();
    capacity = padded_size;
  }
  thread_local std::string msgs;
  msgs.clear();
  pass p(msgs);
  {
    od::document doc;
    if (thread_od_parser().iterate(base, body.size(), capacity).get(doc)) return false;
    od::object root;
    if (doc.get_object().get(root)) return false;
    for (auto f : root) {
      std::string_view k;
      if (f.error() || !key_of(f, k)) return false;
      key_id id = top_key(k);
      if (id == k_other) return false;
      od::value v;
      if (f.value().get(v) || !p.field(id, v)) return false;
    }
    const char* loc = nullptr;
    if (doc.current_location().get(loc) != simdjson::OUT_OF_BOUNDS) return false;  // trailing
  }
  // No turn besides the system prompt: the general path refuses it.
  if (!p.has(k_messages) || p.msgs.empty()) return false;

  // The token limit, as the general path checks it (a refusal is its to write).
  std::int64_t max_tokens = opt.default_max_tokens;
  const number* limit = p.has(k_max_completion_tokens) ? &p.max_completion_tokens
                        : p.has(k_max_tokens)          ? &p.max_tokens
                                                       : nullptr;
  if (limit) {
    double d = limit->d;
    if (d < 1 || d > 1e9 || d != static_cast<double>(static_cast<std::int64_t>(d))) return false;
    max_tokens = static_cast<std::int64_t>(d);
  }

  const std::size_t size = body.size() + opt.target_model.size() + 160;
  if (out.capacity() < out.size() + size) out.reserve(out.size() + size);
  out += R"({"model":)";
  ob::proxy::json::append_json_string(out, opt.target_model);
  out += R"(,"max_tokens":)";
  char digits[24];
  out.append(digits, std::to_chars(digits, digits + sizeof digits, max_tokens).ptr);
  if (p.systems == 1) {
    out += R"(,"system":)";
    append_text(out, p.system[0]);
  } else if (p.systems > 1) {
    out += R"(,"system":[)";
    bool first = true;
    for (std::size_t i = 0; i < p.systems; ++i) {
      if (p.system[i].empty()) continue;  // Anthropic refuses empty text blocks
      if (!first) out += ',';
      first = false;
      out += R"({"type":"text","text":)";
      append_text(out, p.system[i]);
      out += '}';
    }
    out += ']';
  }
  out += R"(,"messages":[)";
  out += msgs;
  out += ']';
  const sampling_kept kept =
      keep_sampling(p.has(k_temperature), p.temperature.d, p.has(k_top_p), p.top_p.d);
  if (kept.temperature) {
    out += R"(,"temperature":)";
    append_number(out, p.temperature);
  }
  if (kept.top_p) {
    out += R"(,"top_p":)";
    append_number(out, p.top_p);
  }
  if (p.stream) out += R"(,"stream":true)";
  if (p.has(k_user)) {
    out += R"(,"metadata":{"user_id":)";
    append_text(out, p.user);
    out += '}';
  }
  out += '}';
  r.stream = p.stream;
  r.include_usage = p.include_usage;
  if (msgs.capacity() > max_body) std::string().swap(msgs);
  return true;
}

}  // namespace ob::dialect::anthropic::detail
