// Outbound request: OpenAI chat completions body -> Anthropic Messages body.
#include <array>
#include <vector>

#include "dialect/anthropic/dom.hpp"
#include "dialect/anthropic/mapping.hpp"
#include "dialect/anthropic/request_fast.hpp"

namespace ob::dialect::anthropic {
namespace {

using namespace detail;

constexpr std::string_view unsupported = "unsupported_parameter";
constexpr std::string_view invalid = "invalid_value";

// Top-level members, collected first (a duplicate is refused), then written in a fixed order.
enum slot : int {
  s_messages,
  s_max_tokens,
  s_max_completion_tokens,
  s_temperature,
  s_top_p,
  s_stop,
  s_stream,
  s_stream_options,
  s_user,
  s_tools,
  s_tool_choice,
  s_parallel_tool_calls,
  s_count
};

struct known_key {
  std::string_view name;
  int slot;  // -1: accepted and dropped (no effect on the result); -2: checked by is_neutral
};

// Keys accepted. Dropped ones change nothing in the answer (storage, routing hints, latency).
constexpr known_key known_keys[] = {
    {"model", -1},
    {"messages", s_messages},
    {"max_tokens", s_max_tokens},
    {"max_completion_tokens", s_max_completion_tokens},
    {"temperature", s_temperature},
    {"top_p", s_top_p},
    {"stop", s_stop},
    {"stream", s_stream},
    {"stream_options", s_stream_options},
    {"user", s_user},
    {"tools", s_tools},
    {"tool_choice", s_tool_choice},
    {"parallel_tool_calls", s_parallel_tool_calls},
    {"store", -1},
    {"metadata", -1},
    {"service_tier", -1},
    {"prediction", -1},
    {"safety_identifier", -1},
    {"prompt_cache_key", -1},
    // Accepted only with their default value (is_neutral), refused otherwise.
    {"n", -2},
    {"logprobs", -2},
    {"top_logprobs", -2},
    {"response_format", -2},
    {"frequency_penalty", -2},
    {"presence_penalty", -2},
    {"logit_bias", -2},
    {"modalities", -2},
    // Refused unless null (the default): each changes the result and has no Anthropic form.
    {"seed", -2},
    {"audio", -2},
    {"reasoning_effort", -2},
    {"verbosity", -2},
    {"web_search_options", -2},
    {"functions", -2},
    {"function_call", -2},
};

// A value that asks for the default behaviour, for the keys whose other values are refused.
bool is_neutral(std::string_view k, dom::element v) {
  if (k == "n") return is_number(v) && num(v) == 1;
  if (k == "logprobs") return is_bool(v) && !bool(v.get_bool().value_unsafe());
  if (k == "top_logprobs") return is_number(v) && num(v) == 0;
  if (k == "response_format") return get_str(v, "type") == "text";
  if (k == "frequency_penalty" || k == "presence_penalty") return is_number(v) && num(v) == 0;
  if (k == "logit_bias") {
    dom::object o;
    return !v.get_object().get(o) && o.size() == 0;
  }
  if (k == "modalities") {
    dom::array a;
    if (v.get_array().get(a)) return false;
    for (dom::element x : a)
      if (str(x) != "text") return false;
    return true;
  }
  return false;
}

class translator {
 public:
  explicit translator(const outbound_options& opt) : opt_(opt) {}

  request_result run(std::string_view body, std::string& out) {
    request_result r;
    dom::element root;
    if (!parse(parser_, body, root)) {
      fail("", "the request body is not valid JSON", "invalid_json");
    } else if (!is_object(root)) {
      fail("", "the request body must be a JSON object", "invalid_json");
    } else if (collect(root.get_object().value_unsafe())) {
      r.stream = stream_;
      r.include_usage = include_usage_;
      const std::size_t start = out.size();
      json_writer w(out);
      if (!write(w)) out.resize(start);
    }
    if (err_.status) {
      r.error = std::move(err_);
      append_openai_error(r.error_body, r.error);
    }
    return r;
  }

 private:
  bool fail(std::string param, std::string message, std::string_view code = unsupported) {
    if (err_.status) return false;  // keep the first
    err_.status = 400;
    err_.type = "invalid_request_error";
    err_.param = std::move(param);
    err_.message = std::move(message);
    err_.code = std::string(code);
    return false;
  }

  bool collect(dom::object root) {
    for (auto [k, v] : root) {
      const known_key* kk = nullptr;
      for (const auto& c : known_keys)
        if (c.name == k) kk = &c;
      if (!kk)
        return fail(std::string(k), "the parameter '" + std::string(k) +
                                        "' is not supported when the target is an Anthropic model");
      if (kk->slot == -1) continue;
      if (is_null(v) && kk->slot != s_messages) continue;  // null: the default
      if (kk->slot == -2) {
        if (!is_neutral(k, v))
          return fail(std::string(k), "the parameter '" + std::string(k) +
                                          "' with this value is not supported when the target "
                                          "is an Anthropic model");
        continue;
      }
      if (have_[kk->slot])
        return fail(std::string(k), "the key '" + std::string(k) + "' appears twice", invalid);
      have_[kk->slot] = true;
      slots_[kk->slot] = v;
    }
    if (!have_[s_messages] || !is_array(slots_[s_messages]))
      return fail("messages", "'messages' must be an array of messages", invalid);
    if (have_[s_stream]) {
      if (!is_bool(slots_[s_stream])) return fail("stream", "'stream' must be a boolean", invalid);
      stream_ = slots_[s_stream].get_bool().value_unsafe();
    }
    if (have_[s_stream_options]) {
      member iu = get(slots_[s_stream_options], "include_usage");
      if (iu.found && is_bool(iu.value)) include_usage_ = iu.value.get_bool().value_unsafe();
    }
    return true;
  }

  bool write(json_writer& w) {
    w.begin_object().kv("model", opt_.target_model);
    if (!write_max_tokens(w)) return false;
    dom::array msgs = slots_[s_messages].get_array().value_unsafe();
    if (!write_system(w, msgs)) return false;
    if (!write_messages(w, msgs)) return false;
    if (!write_sampling(w)) return false;
    if (stream_) w.key("stream").boolean(true);
    if (have_[s_user]) {
      if (!is_string(slots_[s_user])) return fail("user", "'user' must be a string", invalid);
      w.key("metadata").begin_object().kv("user_id", str(slots_[s_user])).end_object();
    }
    if (!write_tools(w)) return false;
    // Anthropic refuses a request without a turn (a system prompt alone, or only empty
    // assistant turns), which OpenAI answers: said here, so another target can take it.
    if (turns_ == 0)
      return fail("messages",
                  "an Anthropic model needs at least one user, assistant or tool message "
                  "besides the system prompt",
                  invalid);
    w.end_object();
    return true;
  }

  bool write_max_tokens(json_writer& w) {
    int s = have_[s_max_completion_tokens] ? s_max_completion_tokens
            : have_[s_max_tokens]          ? s_max_tokens
                                           : -1;
    std::int64_t n = opt_.default_max_tokens;
    if (s >= 0) {
      double d = is_number(slots_[s]) ? num(slots_[s]) : -1;
      if (d < 1 || d > 1e9 || d != static_cast<double>(static_cast<std::int64_t>(d)))
        return fail(s == s_max_tokens ? "max_tokens" : "max_completion_tokens",
                    "the token limit must be a positive integer", invalid);
      n = static_cast<std::int64_t>(d);
    }
    w.kv_int("max_tokens", n);
    return true;
  }

  // Appends the text of a system/developer message's content to system_.
  bool collect_text(dom::element content, const std::string& param, bool allow_refusal) {
    if (is_string(content)) {
      texts_.push_back(str(content));
      return true;
    }
    dom::array parts;
    if (content.get_array().get(parts))
      return fail(param, "content must be a string or an array of text parts", invalid);
    std::size_t j = 0;
    for (dom::element p : parts) {
      std::string_view type = get_str(p, "type");
      if (type == "text") {
        member t = get(p, "text");
        if (!t.found || !is_string(t.value))
          return fail(path_index(param, j) + ".text", "a text part needs a string 'text'", invalid);
        texts_.push_back(str(t.value));
      } else if (allow_refusal && type == "refusal") {
        texts_.push_back(get_str(p, "refusal"));
      } else {
        return fail(path_index(param, j) + ".type",
                    "only text parts are allowed here (Anthropic target)");
      }
      ++j;
    }
    return true;
  }

  bool write_system(json_writer& w, dom::array msgs) {
    std::size_t i = 0;
    for (dom::element m : msgs) {
      std::string_view role = get_str(m, "role");
      if (role == "system" || role == "developer") {
        member c = get(m, "content");
        std::string p = path_index("messages", i) + ".content";
        if (!c.found) return fail(p, "a system message needs 'content'", invalid);
        if (!collect_text(c.value, p, false)) return false;
      }
      ++i;
    }
    if (texts_.empty()) return true;
    w.key("system");
    if (texts_.size() == 1) {
      w.string(texts_[0]);
    } else {
      w.begin_array();
      for (auto t : texts_) {
        if (t.empty()) continue;  // Anthropic refuses empty text blocks
        w.begin_object().kv("type", "text").kv("text", t).end_object();
      }
      w.end_array();
    }
    texts_.clear();
    return true;
  }

  bool write_image(json_writer& w, dom::element part, const std::string& param) {
    member iu = get(part, "image_url");
    std::string_view url;
    if (iu.found) url = is_string(iu.value) ? str(iu.value) : get_str(iu.value, "url");
    if (url.empty())
      return fail(param + ".image_url", "an image part needs image_url.url", invalid);
    w.begin_object().kv("type", "image").key("source").begin_object();
    if (url.starts_with("data:")) {
      std::size_t comma = url.find(',');
      std::string_view meta = url.substr(5, comma == url.npos ? 0 : comma - 5);
      if (comma == url.npos || !meta.ends_with(";base64"))
        return fail(param + ".image_url.url", "a data URL image must be base64-encoded", invalid);
      std::string_view mt = meta.substr(0, meta.size() - 7);
      if (mt != "image/jpeg" && mt != "image/png" && mt != "image/gif" && mt != "image/webp")
        return fail(param + ".image_url.url",
                    "the image type '" + std::string(mt) +
                        "' is not supported by the Anthropic target (jpeg, png, gif, webp)",
                    invalid);
      w.kv("type", "base64").kv("media_type", mt).kv("data", url.substr(comma + 1));
    } else if (url.starts_with("https://") || url.starts_with("http://")) {
      w.kv("type", "url").kv("url", url);
    } else {
      return fail(param + ".image_url.url", "an image URL must be a data: or http(s) URL", invalid);
    }
    w.end_object().end_object();
    return true;
  }

  // User content: a string, or text and image parts.
  bool write_user_content(json_writer& w, dom::element content, const std::string& param) {
    if (is_string(content)) {
      w.string(str(content));
      return true;
    }
    dom::array parts;
    if (content.get_array().get(parts))
      return fail(param, "content must be a string or an array of parts", invalid);
    w.begin_array();
    std::size_t j = 0;
    for (dom::element p : parts) {
      std::string pp = path_index(param, j++);
      std::string_view type = get_str(p, "type");
      if (type == "text") {
        member t = get(p, "text");
        if (!t.found || !is_string(t.value))
          return fail(pp + ".text", "a text part needs a string 'text'", invalid);
        w.begin_object().kv("type", "text").kv("text", str(t.value)).end_object();
      } else if (type == "image_url") {
        if (!write_image(w, p, pp)) return false;
      } else {
        return fail(pp + ".type", "the content part type '" + std::string(type) +
                                      "' is not supported when the target is an Anthropic model");
      }
    }
    w.end_array();
    return true;
  }

  bool write_assistant(json_writer& w, dom::element m, const std::string& param) {
    if (get(m, "function_call").found && !is_null(get(m, "function_call").value))
      return fail(param + ".function_call",
                  "legacy function_call is not supported; use tool_calls");
    if (get(m, "audio").found && !is_null(get(m, "audio").value))
      return fail(param + ".audio", "audio is not supported when the target is an Anthropic model");
    member c = get(m, "content");
    if (c.found && !is_null(c.value)) {
      if (!collect_text(c.value, param + ".content", true)) return false;
    }
    member tc = get(m, "tool_calls");
    dom::array calls;
    bool has_calls = tc.found && !tc.value.get_array().get(calls) && calls.size() > 0;
    if (tc.found && !is_null(tc.value) && !is_array(tc.value))
      return fail(param + ".tool_calls", "'tool_calls' must be an array", invalid);
    bool any_text = false;
    for (auto t : texts_) any_text |= !t.empty();
    if (!any_text && !has_calls) {  // nothing to say: the turn is left out
      texts_.clear();
      return true;
    }
    w.begin_object().kv("role", "assistant").key("content").begin_array();
    ++turns_;
    for (auto t : texts_)
      if (!t.empty()) w.begin_object().kv("type", "text").kv("text", t).end_object();
    texts_.clear();
    if (has_calls) {
      std::size_t j = 0;
      for (dom::element call : calls) {
        std::string cp = path_index(param + ".tool_calls", j++);
        std::string_view type = get_str(call, "type");
        if (!type.empty() && type != "function")
          return fail(cp + ".type", "only function tool calls are supported");
        member fn = get(call, "function");
        std::string_view name = fn.found ? get_str(fn.value, "name") : std::string_view{};
        std::string_view id = get_str(call, "id");
        if (id.empty()) return fail(cp + ".id", "a tool call needs an id", invalid);
        if (name.empty()) return fail(cp + ".function.name", "a tool call needs a name", invalid);
        std::string_view args = get_str(fn.value, "arguments");
        w.begin_object().kv("type", "tool_use").kv("id", id).kv("name", name).key("input");
        if (args.find_first_not_of(" \t\r\n") == args.npos) {
          w.raw("{}");  // no arguments
        } else {
          dom::element parsed;
          if (!parse(args_parser_, args, parsed) || !is_object(parsed))
            return fail(cp + ".function.arguments",
                        "tool call arguments must be a JSON object (the Anthropic target needs "
                        "the parsed input)",
                        invalid);
          write_value(w, parsed);
        }
        w.end_object();
      }
    }
    w.end_array().end_object();
    return true;
  }

  bool write_tool_result(json_writer& w, dom::element m, const std::string& param) {
    std::string_view id = get_str(m, "tool_call_id");
    if (id.empty())
      return fail(param + ".tool_call_id", "a tool message needs tool_call_id", invalid);
    member c = get(m, "content");
    w.begin_object().kv("type", "tool_result").kv("tool_use_id", id).key("content");
    if (!c.found || is_null(c.value)) {
      w.string("");
    } else if (is_string(c.value)) {
      w.string(str(c.value));
    } else {
      if (!collect_text(c.value, param + ".content", false)) return false;
      w.begin_array();
      for (auto t : texts_)
        if (!t.empty()) w.begin_object().kv("type", "text").kv("text", t).end_object();
      w.end_array();
      texts_.clear();
    }
    w.end_object();
    return true;
  }

  bool write_messages(json_writer& w, dom::array msgs) {
    w.key("messages").begin_array();
    bool tool_turn = false;  // a user turn of tool_result blocks is open
    std::size_t i = 0;
    for (dom::element m : msgs) {
      std::string param = path_index("messages", i++);
      if (!is_object(m)) return fail(param, "a message must be an object", invalid);
      std::string_view role = get_str(m, "role");
      if (role == "system" || role == "developer") continue;  // hoisted
      if (role == "tool") {
        if (!tool_turn) {
          w.begin_object().kv("role", "user").key("content").begin_array();
          tool_turn = true;
          ++turns_;
        }
        if (!write_tool_result(w, m, param)) return false;
        continue;
      }
      if (tool_turn) {
        w.end_array().end_object();
        tool_turn = false;
      }
      if (role == "user") {
        member c = get(m, "content");
        if (!c.found) return fail(param + ".content", "a user message needs 'content'", invalid);
        w.begin_object().kv("role", "user").key("content");
        if (!write_user_content(w, c.value, param + ".content")) return false;
        w.end_object();
        ++turns_;
      } else if (role == "assistant") {
        if (!write_assistant(w, m, param)) return false;
      } else {
        return fail(param + ".role", "the role '" + std::string(role) +
                                         "' is not supported when the target is an Anthropic "
                                         "model (system, developer, user, assistant, tool)");
      }
    }
    if (tool_turn) w.end_array().end_object();
    w.end_array();
    return true;
  }

  bool write_sampling(json_writer& w) {
    double t = 0, p = 0;
    if (have_[s_temperature]) {
      dom::element v = slots_[s_temperature];
      if (!is_number(v)) return fail("temperature", "'temperature' must be a number", invalid);
      t = num(v);
      if (t < 0 || t > 1)
        return fail("temperature",
                    "temperature " + std::string(simdjson::minify(v)) +
                        " is outside 0..1, the range of the Anthropic target (OpenAI's 0..2 "
                        "scale is not converted)",
                    invalid);
    }
    if (have_[s_top_p]) {
      dom::element v = slots_[s_top_p];
      if (!is_number(v) || num(v) < 0 || num(v) > 1)
        return fail("top_p", "'top_p' must be a number in 0..1", invalid);
      p = num(v);
    }
    const sampling_kept kept = keep_sampling(have_[s_temperature], t, have_[s_top_p], p);
    if (kept.temperature) w.key("temperature").raw(simdjson::minify(slots_[s_temperature]));
    if (kept.top_p) w.key("top_p").raw(simdjson::minify(slots_[s_top_p]));
    if (have_[s_stop]) {
      dom::element v = slots_[s_stop];
      // Anthropic refuses a stop sequence with nothing but whitespace in it (400); said here,
      // with the parameter's name, rather than as the provider's error.
      auto blank = [](std::string_view s) {
        return s.find_first_not_of(" \t\n\r\f\v") == std::string_view::npos;
      };
      constexpr std::string_view blank_refused =
          "a stop sequence of whitespace only (e.g. \"\\n\") is refused by Anthropic models";
      if (is_string(v)) {
        if (blank(str(v))) return fail("stop", std::string(blank_refused), invalid);
        w.key("stop_sequences").begin_array().string(str(v)).end_array();
      } else if (is_array(v)) {
        dom::array a = v.get_array().value_unsafe();
        if (a.size() > 0) {
          w.key("stop_sequences").begin_array();
          for (dom::element s : a) {
            if (!is_string(s)) return fail("stop", "'stop' must be a string or strings", invalid);
            if (blank(str(s))) return fail("stop", std::string(blank_refused), invalid);
            w.string(str(s));
          }
          w.end_array();
        }
      } else {
        return fail("stop", "'stop' must be a string or an array of strings", invalid);
      }
    }
    return true;
  }

  bool write_tools(json_writer& w) {
    bool parallel_off = false;
    if (have_[s_parallel_tool_calls]) {
      if (!is_bool(slots_[s_parallel_tool_calls]))
        return fail("parallel_tool_calls", "'parallel_tool_calls' must be a boolean", invalid);
      parallel_off = !slots_[s_parallel_tool_calls].get_bool().value_unsafe();
    }
    bool any_tool = false;
    if (have_[s_tools]) {
      dom::array tools;
      if (slots_[s_tools].get_array().get(tools))
        return fail("tools", "'tools' must be an array", invalid);
      std::size_t j = 0;
      for (dom::element t : tools) {
        std::string tp = path_index("tools", j++);
        if (get_str(t, "type") != "function")
          return fail(tp + ".type", "only function tools are supported");
        member fn = get(t, "function");
        std::string_view name = fn.found ? get_str(fn.value, "name") : std::string_view{};
        if (name.empty()) return fail(tp + ".function.name", "a tool needs a name", invalid);
        if (!any_tool) w.key("tools").begin_array();
        any_tool = true;
        w.begin_object().kv("name", name);
        member d = get(fn.value, "description");
        if (d.found && is_string(d.value)) w.kv("description", str(d.value));
        w.key("input_schema");
        member ps = get(fn.value, "parameters");
        if (ps.found && is_object(ps.value)) {
          write_value(w, ps.value);
        } else if (ps.found && !is_null(ps.value)) {
          return fail(tp + ".function.parameters", "'parameters' must be a JSON schema object",
                      invalid);
        } else {
          w.raw(R"({"type":"object","properties":{}})");
        }
        w.end_object();
      }
      if (any_tool) w.end_array();
    }
    if (have_[s_tool_choice]) {
      dom::element v = slots_[s_tool_choice];
      std::string_view s = str(v);
      w.key("tool_choice").begin_object();
      if (s == "auto") {
        w.kv("type", "auto");
      } else if (s == "none") {
        w.kv("type", "none");
        parallel_off = false;  // no tool call to parallelize
      } else if (s == "required") {
        w.kv("type", "any");
      } else if (is_object(v) && get_str(v, "type") == "function") {
        member fn = get(v, "function");
        std::string_view name = fn.found ? get_str(fn.value, "name") : std::string_view{};
        if (name.empty())
          return fail("tool_choice.function.name", "a tool name is needed", invalid);
        w.kv("type", "tool").kv("name", name);
      } else {
        return fail("tool_choice", "tool_choice must be auto, none, required or a function",
                    invalid);
      }
      if (parallel_off) w.key("disable_parallel_tool_use").boolean(true);
      w.end_object();
    } else if (parallel_off && any_tool) {
      w.key("tool_choice").begin_object().kv("type", "auto");
      w.key("disable_parallel_tool_use").boolean(true).end_object();
    }
    return true;
  }

  const outbound_options& opt_;
  dom::parser& parser_ = thread_parser();  // the request's DOM, read until run() returns
  dom::parser args_parser_;  // tool call arguments (the request's DOM must stay valid)
  std::size_t turns_ = 0;    // messages written (system ones are hoisted, not counted)
  std::array<dom::element, s_count> slots_{};
  std::array<bool, s_count> have_{};
  std::vector<std::string_view> texts_;
  bool stream_ = false;
  bool include_usage_ = false;
  failure err_;
};

}  // namespace

request_result openai_request_to_anthropic(std::string_view body, const outbound_options& opt,
                                           std::string& out) {
  request_result r;
  if (!opt.general_only && single_pass(body, opt, out, r)) return r;
  {
    translator t(opt);
    r = t.run(body, out);
  }
  trim_thread_parser();
  return r;
}

request_result openai_request_to_anthropic(std::string_view body, const outbound_options& opt) {
  std::string out;
  request_result r = openai_request_to_anthropic(body, opt, out);
  r.body = std::move(out);
  return r;
}

}  // namespace ob::dialect::anthropic
