// simdjson On-Demand walk over the top level of a document: only the keys we care about are
// read, every other value is skipped without being materialized.
#include "proxy/json/model.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ob::proxy::json {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;
using simdjson::SUCCESS;

// The first '"' or '\\' at or after `p`. There is one before the document's end (stage 1
// guaranteed the key's closing quote), and the document is followed by SIMDJSON_PADDING
// readable bytes (find_*'s contract), so 16-byte loads from any key stay in bounds.
const char* quote_or_backslash(const char* p) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  for (;; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const int hits =
        _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (hits) return p + __builtin_ctz(static_cast<unsigned>(hits));
  }
#else
  while (*p != '"' && *p != '\\') ++p;
  return p;
#endif
}

// Key of a field as text. The common unescaped key is a view of the document itself (no copy);
// only a key with a backslash is unescaped (into the parser's string buffer).
error_code key_of(simdjson::simdjson_result<od::field>& f, std::string_view& out) {
  od::raw_json_string raw;
  if (auto e = f.key().get(raw)) return e;
  const char* begin = raw.raw();
  // The first '"' is the closing quote unless a backslash came first.
  const char* p = quote_or_backslash(begin);
  if (*p == '"') {
    out = std::string_view(begin, static_cast<std::size_t>(p - begin));
    return SUCCESS;
  }
  return f.unescaped_key().get(out);
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

span span_of(std::string_view token, const char* doc_begin) {
  std::size_t begin = static_cast<std::size_t>(token.data() - doc_begin);
  return span{begin, begin + trim_right(token).size()};
}

// The raw token of a string value, and the value type; leaves the value unconsumed.
error_code string_token(od::value& v, const char* doc_begin, bool& is_string, span& where) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  is_string = t == od::json_type::string;
  if (is_string) where = span_of(v.raw_json_token(), doc_begin);
  return SUCCESS;
}

// True when the document ended right after the root value (trailing bytes are an error).
bool at_document_end(od::document& doc) {
  const char* loc = nullptr;
  return doc.current_location().get(loc) == simdjson::OUT_OF_BOUNDS;
}

find_status root_status(od::document& doc) {
  od::json_type t;
  if (doc.type().get(t) != SUCCESS) return find_status::invalid_json;
  return t == od::json_type::object ? find_status::ok : find_status::not_object;
}

// ---- streaming facts of a request ----

using kind = stream_facts::kind;

// A scalar's kind (validated when it is true, false or null: those are the tokens we replace).
error_code scalar_kind(od::value& v, od::json_type t, kind& out) {
  if (t == od::json_type::boolean) {
    bool b = false;
    if (auto e = v.get_bool().get(b)) return e;
    out = b ? kind::true_ : kind::false_;
  } else if (t == od::json_type::null) {
    bool is_null = false;
    if (auto e = v.is_null().get(is_null)) return e;
    out = is_null ? kind::null : kind::other;
  } else {
    out = kind::other;
  }
  return SUCCESS;
}

// The whole value token (an array through its closing bracket), leaving objects aside.
error_code whole_token(od::value& v, od::json_type t, const char* doc_begin, span& where) {
  std::string_view raw;
  if (t == od::json_type::array) {
    od::array a;
    if (auto e = v.get_array().get(a)) return e;
    if (auto e = a.raw_json().get(raw)) return e;
  } else {
    raw = v.raw_json_token();
  }
  where = span_of(raw, doc_begin);
  return SUCCESS;
}

error_code read_include_usage(od::value& v, const char* doc_begin, stream_facts& s) {
  if (s.include_usage != kind::absent) {
    s.include_usage = kind::duplicate;
    return SUCCESS;
  }
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  s.include_usage_value = span_of(v.raw_json_token(), doc_begin);
  return scalar_kind(v, t, s.include_usage);
}

error_code read_stream_options(od::value& v, const char* doc_begin, stream_facts& s) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if (t != od::json_type::object) {
    if (auto e = whole_token(v, t, doc_begin, s.options_value)) return e;
    if (t == od::json_type::null) return scalar_kind(v, t, s.options);
    s.options = kind::other;
    return SUCCESS;
  }
  s.options = kind::object;
  s.options_value = span_of(v.raw_json_token().substr(0, 1), doc_begin);
  od::object obj;
  if (auto e = v.get_object().get(obj)) return e;
  s.options_empty = true;
  for (auto f : obj) {
    s.options_empty = false;
    std::string_view key;
    od::value val;
    if (auto e = key_of(f, key)) return e;
    if (auto e = f.value().get(val)) return e;
    if (key == "include_usage") {
      if (auto e = read_include_usage(val, doc_begin, s)) return e;
    }
  }
  return SUCCESS;
}

// Notes "stream" and "stream_options"; every other key costs one length compare.
error_code note_stream_key(std::string_view key, od::value& v, const char* doc_begin,
                           stream_facts& s) {
  if (key.size() == 6 && key == "stream") {
    if (s.stream != kind::absent) {
      s.stream = kind::duplicate;
      return SUCCESS;
    }
    od::json_type t;
    if (auto e = v.type().get(t)) return e;
    return scalar_kind(v, t, s.stream);
  }
  if (key.size() == 14 && key == "stream_options") {
    if (s.options != kind::absent) {
      s.options = kind::duplicate;
      return SUCCESS;
    }
    return read_stream_options(v, doc_begin, s);
  }
  return SUCCESS;
}

// ---- answers ----

void read_int(od::value& v, std::int64_t& out) {
  std::int64_t n;
  if (v.get_int64().get(n) == SUCCESS && n >= 0) out = n;
}

error_code read_usage(od::value& v, token_usage& u) {
  od::object obj;
  if (v.get_object().get(obj) != SUCCESS) return SUCCESS;  // not an object: not usage
  for (auto f : obj) {
    std::string_view key;
    if (auto e = key_of(f, key)) return e;
    od::value val;
    if (auto e = f.value().get(val)) return e;
    if (key == "prompt_tokens" || key == "input_tokens") {
      read_int(val, u.prompt_tokens);
    } else if (key == "completion_tokens" || key == "output_tokens") {
      read_int(val, u.completion_tokens);
    } else if (key == "total_tokens") {
      read_int(val, u.total_tokens);
    }
  }
  return SUCCESS;
}

void add_model(answer_info& info, span s) {
  if (info.model_count < answer_info::max_models) info.models[info.model_count++] = s;
}

error_code read_model(od::value& v, const char* doc_begin, answer_info& info) {
  bool is_string = false;
  span s;
  if (auto e = string_token(v, doc_begin, is_string, s)) return e;
  if (is_string) add_model(info, s);
  return SUCCESS;
}

// Responses API events nest the response object: {"type":"response.created","response":{...}}.
error_code read_response(od::value& v, const char* doc_begin, answer_info& info) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if (t != od::json_type::object) return SUCCESS;
  od::object obj;
  if (auto e = v.get_object().get(obj)) return e;
  for (auto f : obj) {
    std::string_view key;
    if (auto e = key_of(f, key)) return e;
    od::value val;
    if (auto e = f.value().get(val)) return e;
    if (key == "model") {
      if (auto e = read_model(val, doc_begin, info)) return e;
    } else if (key == "usage") {
      if (auto e = read_usage(val, info.usage)) return e;
    }
  }
  return SUCCESS;
}

error_code read_answer_field(std::string_view key, od::value& val, const char* doc_begin,
                             answer_info& info) {
  if (key == "model") return read_model(val, doc_begin, info);
  if (key == "response") return read_response(val, doc_begin, info);
  if (key == "usage") {
    info.usage_object = val.raw_json_token().substr(0, 1) == "{";
    return read_usage(val, info.usage);
  }
  if (key == "choices") {
    // raw_json_token of an array is its '[' and the blanks after it; the byte after those is
    // the next token (the document is padded), so an empty array is seen without iterating.
    const std::string_view tok = val.raw_json_token();
    info.empty_choices = tok.substr(0, 1) == "[" && tok.data()[tok.size()] == ']';
    return SUCCESS;
  }
  if (key == "error") {
    od::json_type t;
    if (auto e = val.type().get(t)) return e;
    if (t != od::json_type::null) info.has_error = true;
    return SUCCESS;
  }
  if (key == "type") {
    od::json_type t;
    if (auto e = val.type().get(t)) return e;
    if (t == od::json_type::string) return val.get_string().get(info.type);
  }
  return SUCCESS;
}

// At most max_models entries: insertion sort (std::sort trips GCC 12's -Warray-bounds here).
void sort_spans(span* s, int n) {
  for (int i = 1; i < n; ++i)
    for (int j = i; j > 0 && s[j].begin < s[j - 1].begin; --j) std::swap(s[j], s[j - 1]);
}

error_code walk_answer(od::document& doc, const char* doc_begin, answer_info& info) {
  od::object obj;
  if (auto e = doc.get_object().get(obj)) return e;
  for (auto f : obj) {
    std::string_view key;
    if (auto e = key_of(f, key)) return e;
    od::value val;
    if (auto e = f.value().get(val)) return e;
    if (auto e = read_answer_field(key, val, doc_begin, info)) return e;
  }
  return SUCCESS;
}

}  // namespace

const char* to_string(find_status s) {
  switch (s) {
    case find_status::ok:
      return "ok";
    case find_status::invalid_json:
      return "invalid_json";
    case find_status::not_object:
      return "not_object";
    case find_status::missing:
      return "missing";
    case find_status::not_string:
      return "not_string";
    case find_status::duplicate:
      return "duplicate";
  }
  return "unknown";
}

struct model_finder::state {
  od::parser parser;
  std::unique_ptr<char[]> scratch;  // padded copy when the caller has no padding
  std::size_t scratch_size = 0;

  // Starts parsing `doc`, in place when the caller's buffer has the padding, else from a copy.
  error_code iterate(std::string_view doc, std::size_t capacity, od::document& d,
                     const char*& base) {
    base = doc.data();
    if (capacity < doc.size() || capacity - doc.size() < simdjson::SIMDJSON_PADDING) {
      base = padded_copy(doc);
      capacity = scratch_size;
    }
    return parser.iterate(base, doc.size(), capacity).get(d);
  }

  const char* padded_copy(std::string_view doc) {
    const std::size_t need = doc.size() + simdjson::SIMDJSON_PADDING;
    if (scratch_size < need) {
      // Grow geometrically, without zero-filling (a std::string resize would touch every byte).
      scratch_size = std::max(need, scratch_size * 2);
      scratch.reset(new char[scratch_size]);
    }
    if (!doc.empty()) std::memcpy(scratch.get(), doc.data(), doc.size());
    std::memset(scratch.get() + doc.size(), 0, simdjson::SIMDJSON_PADDING);
    return scratch.get();
  }
};

model_finder::model_finder() : state_(std::make_unique<state>()) {}
model_finder::~model_finder() = default;
model_finder::model_finder(model_finder&&) noexcept = default;
model_finder& model_finder::operator=(model_finder&&) noexcept = default;

request_model model_finder::find_request_model(std::string_view doc, std::size_t capacity) {
  request_model r;
  if (!state_) state_ = std::make_unique<state>();  // usable again after being moved from
  const char* base = nullptr;
  od::document d;
  if (state_->iterate(doc, capacity, d, base) != SUCCESS) return r;
  if (find_status s = root_status(d); s != find_status::ok) {
    r.status = s;
    return r;
  }
  od::object obj;
  if (d.get_object().get(obj) != SUCCESS) return r;
  int seen = 0;
  bool is_string = false;
  for (auto f : obj) {
    std::string_view key;
    od::value val;
    if (key_of(f, key) != SUCCESS || f.value().get(val) != SUCCESS) return r;
    if (key != "model") {
      // The output cap for the limits' token estimate; each costs one length compare.
      if (key.size() >= 10 && key.size() <= 21 && key.starts_with("max_")) {
        if (key == "max_completion_tokens") read_int(val, r.max_completion_tokens);
        if (key == "max_tokens") read_int(val, r.max_tokens);
        if (key == "max_output_tokens") read_int(val, r.max_output_tokens);
        continue;
      }
      if (note_stream_key(key, val, base, r.stream) != SUCCESS) return r;
      continue;
    }
    if (++seen > 1) continue;  // keep walking: a later parse error still wins
    if (string_token(val, base, is_string, r.value) != SUCCESS) return r;
    if (is_string && val.get_string().get(r.name) != SUCCESS) return r;
  }
  if (!at_document_end(d)) return r;
  r.status = seen == 0    ? find_status::missing
             : seen > 1   ? find_status::duplicate
             : !is_string ? find_status::not_string
                          : find_status::ok;
  if (r.status != find_status::ok) r.value = span{}, r.name = {};
  return r;
}

answer_info model_finder::inspect_answer(std::string_view doc, std::size_t capacity) {
  if (!state_) state_ = std::make_unique<state>();  // usable again after being moved from
  const char* base = nullptr;
  od::document d;
  answer_info info;
  if (state_->iterate(doc, capacity, d, base) != SUCCESS) return info;
  if (root_status(d) != find_status::ok) return info;
  if (walk_answer(d, base, info) != SUCCESS || !at_document_end(d)) return answer_info{};
  info.is_object = true;
  sort_spans(info.models, info.model_count);
  return info;
}

}  // namespace ob::proxy::json
