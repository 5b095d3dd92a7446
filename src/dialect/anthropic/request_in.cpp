// Inbound request: Anthropic Messages body -> OpenAI chat completions body.
#include <array>

#include "dialect/anthropic/dom.hpp"

namespace ob::dialect::anthropic {
namespace {

using namespace detail;

enum slot : int {
  s_messages,
  s_system,
  s_max_tokens,
  s_stop_sequences,
  s_temperature,
  s_top_p,
  s_stream,
  s_metadata,
  s_tools,
  s_tool_choice,
  s_count
};

struct known_key {
  std::string_view name;
  int slot;  // -1: dropped (no effect on the answer's content); -2: refused unless null
};

constexpr known_key known_keys[] = {
    {"model", -1},
    {"messages", s_messages},
    {"system", s_system},
    {"max_tokens", s_max_tokens},
    {"stop_sequences", s_stop_sequences},
    {"temperature", s_temperature},
    {"top_p", s_top_p},
    {"stream", s_stream},
    {"metadata", s_metadata},
    {"tools", s_tools},
    {"tool_choice", s_tool_choice},
    {"service_tier", -1},
    // Extended thinking: the OpenAI-dialect model reasons (or not) its own way; nothing in a
    // chat completion can carry Anthropic's signed thinking blocks back. Dropped (lossy).
    {"thinking", -1},
    // Server-side context editing (Claude Code sends it): the chat target keeps the whole
    // conversation instead. Dropped (lossy).
    {"context_management", -1},
    {"top_k", -2},
    {"container", -2},
    {"mcp_servers", -2},
};

class translator {
 public:
  explicit translator(const inbound_options& opt) : opt_(opt) {}

  request_result run(std::string_view body) {
    request_result r;
    dom::element root;
    if (!parse(parser_, body, root)) {
      fail("", "the request body is not valid JSON");
    } else if (!is_object(root)) {
      fail("", "the request body must be a JSON object");
    } else if (collect(root.get_object().value_unsafe())) {
      r.stream = stream_;
      json_writer w(r.body);
      if (!write(w)) r.body.clear();
    }
    if (err_.status) {
      r.error = std::move(err_);
      append_anthropic_error(r.error_body, r.error.type, r.error.message);
    }
    return r;
  }

 private:
  bool fail(std::string param, std::string message) {
    if (err_.status) return false;
    err_.status = 400;
    err_.type = "invalid_request_error";
    err_.param = std::move(param);
    err_.message = err_.param.empty() ? std::move(message) : err_.param + ": " + message;
    return false;
  }

  bool collect(dom::object root) {
    for (auto [k, v] : root) {
      const known_key* kk = nullptr;
      for (const auto& c : known_keys)
        if (c.name == k) kk = &c;
      if (!kk)
        return fail(std::string(k), "not supported when the target is an OpenAI-dialect model");
      if (kk->slot == -1 || (is_null(v) && kk->slot != s_messages)) continue;
      if (kk->slot == -2)
        return fail(std::string(k), "not supported when the target is an OpenAI-dialect model");
      if (have_[kk->slot]) return fail(std::string(k), "the key appears twice");
      have_[kk->slot] = true;
      slots_[kk->slot] = v;
    }
    if (!have_[s_messages] || !is_array(slots_[s_messages]))
      return fail("messages", "must be an array of messages");
    if (have_[s_stream]) {
      if (!is_bool(slots_[s_stream])) return fail("stream", "must be a boolean");
      stream_ = slots_[s_stream].get_bool().value_unsafe();
    }
    return true;
  }

  bool write(json_writer& w) {
    w.begin_object().kv("model", opt_.target_model);
    w.key("messages").begin_array();
    if (have_[s_system] && !write_system(w, slots_[s_system])) return false;
    std::size_t i = 0;
    for (dom::element m : as_array(slots_[s_messages])) {
      if (!write_message(w, m, path_index("messages", i++))) return false;
    }
    w.end_array();
    if (have_[s_max_tokens]) {
      dom::element v = slots_[s_max_tokens];
      double d = is_number(v) ? num(v) : -1;
      if (d < 1 || d > 1e9 || d != static_cast<double>(static_cast<std::int64_t>(d)))
        return fail("max_tokens", "must be a positive integer");
      w.kv_int(opt_.max_completion_tokens ? "max_completion_tokens" : "max_tokens",
               static_cast<std::int64_t>(d));
    }
    for (auto [s, name] : {std::pair{s_temperature, "temperature"}, std::pair{s_top_p, "top_p"}}) {
      if (!have_[s]) continue;
      if (!is_number(slots_[s])) return fail(name, "must be a number");
      w.key(name).raw(simdjson::minify(slots_[s]));
    }
    if (have_[s_stop_sequences]) {
      dom::array a;
      if (slots_[s_stop_sequences].get_array().get(a))
        return fail("stop_sequences", "must be an array of strings");
      if (a.size() > 0) {
        w.key("stop").begin_array();
        for (dom::element s : a) {
          if (!is_string(s)) return fail("stop_sequences", "must be an array of strings");
          w.string(str(s));
        }
        w.end_array();
      }
    }
    if (stream_) {
      w.key("stream").boolean(true);
      w.key("stream_options").begin_object().key("include_usage").boolean(true).end_object();
    }
    if (have_[s_metadata]) {
      std::string_view user = get_str(slots_[s_metadata], "user_id");
      if (!user.empty()) w.kv("user", user);
    }
    if (!write_tools(w)) return false;
    w.end_object();
    return true;
  }

  // Joins the text of a string or an array of text blocks (system, tool_result content).
  bool join_text(dom::element v, const std::string& param, std::string& out) {
    if (is_string(v)) {
      out += str(v);
      return true;
    }
    dom::array a;
    if (v.get_array().get(a)) return fail(param, "must be a string or an array of text blocks");
    std::size_t j = 0;
    for (dom::element b : a) {
      if (get_str(b, "type") != "text")
        return fail(path_index(param, j) + ".type",
                    "only text blocks are supported here when the target is an OpenAI-dialect "
                    "model");
      if (j++ > 0) out += '\n';
      out += get_str(b, "text");
    }
    return true;
  }

  bool write_system(json_writer& w, dom::element v) {
    std::string text;
    if (!join_text(v, "system", text)) return false;
    if (!text.empty()) w.begin_object().kv("role", "system").kv("content", text).end_object();
    return true;
  }

  bool write_image(json_writer& w, dom::element b, const std::string& param) {
    member src = get(b, "source");
    std::string_view type = src.found ? get_str(src.value, "type") : std::string_view{};
    std::string url;
    if (type == "base64") {
      url = "data:";
      url += get_str(src.value, "media_type");
      url += ";base64,";
      url += get_str(src.value, "data");
    } else if (type == "url") {
      url = get_str(src.value, "url");
    } else {
      return fail(param + ".source", "only base64 and url image sources are supported");
    }
    w.begin_object().kv("type", "image_url").key("image_url").begin_object();
    w.kv("url", url).end_object().end_object();
    return true;
  }

  bool write_user(json_writer& w, dom::element content, const std::string& param) {
    if (is_string(content)) {
      w.begin_object().kv("role", "user").kv("content", str(content)).end_object();
      return true;
    }
    dom::array blocks;
    if (content.get_array().get(blocks)) return fail(param, "must be a string or an array");
    // tool_result blocks first, each its own tool message (they answer the previous turn)
    bool others = false;
    std::size_t j = 0;
    for (dom::element b : blocks) {
      std::string bp = path_index(param, j++);
      std::string_view type = get_str(b, "type");
      if (type != "tool_result") {
        others = true;
        continue;
      }
      std::string_view id = get_str(b, "tool_use_id");
      if (id.empty()) return fail(bp + ".tool_use_id", "is required");
      std::string text;
      member c = get(b, "content");
      if (c.found && !is_null(c.value) && !join_text(c.value, bp + ".content", text)) return false;
      w.begin_object().kv("role", "tool").kv("tool_call_id", id).kv("content", text).end_object();
    }
    if (!others) return true;
    w.begin_object().kv("role", "user").key("content").begin_array();
    j = 0;
    for (dom::element b : blocks) {
      std::string bp = path_index(param, j++);
      std::string_view type = get_str(b, "type");
      if (type == "tool_result") continue;
      if (type == "text") {
        w.begin_object().kv("type", "text").kv("text", get_str(b, "text")).end_object();
      } else if (type == "image") {
        if (!write_image(w, b, bp)) return false;
      } else {
        return fail(bp + ".type", "the block type '" + std::string(type) +
                                      "' is not supported when the target is an OpenAI-dialect "
                                      "model");
      }
    }
    w.end_array().end_object();
    return true;
  }

  bool write_assistant(json_writer& w, dom::element content, const std::string& param) {
    if (is_string(content)) {
      w.begin_object().kv("role", "assistant").kv("content", str(content)).end_object();
      return true;
    }
    dom::array blocks;
    if (content.get_array().get(blocks)) return fail(param, "must be a string or an array");
    std::string text;
    bool any_text = false, any_tool = false;
    std::size_t j = 0;
    for (dom::element b : blocks) {
      std::string_view type = get_str(b, "type");
      if (type == "text") {
        text += get_str(b, "text");
        any_text = true;
      } else if (type == "tool_use") {
        any_tool = true;
      } else if (type != "thinking" && type != "redacted_thinking") {
        return fail(path_index(param, j) + ".type",
                    "the block type '" + std::string(type) +
                        "' is not supported in an assistant turn for an OpenAI-dialect model");
      }
      ++j;
    }
    if (!any_text && !any_tool) return true;  // only thinking: nothing to send
    w.begin_object().kv("role", "assistant").key("content");
    if (any_text) {
      w.string(text);
    } else {
      w.null();
    }
    if (any_tool) {
      w.key("tool_calls").begin_array();
      j = 0;
      for (dom::element b : blocks) {
        std::string bp = path_index(param, j++);
        if (get_str(b, "type") != "tool_use") continue;
        std::string_view id = get_str(b, "id"), name = get_str(b, "name");
        if (id.empty() || name.empty()) return fail(bp, "a tool_use block needs an id and a name");
        member in = get(b, "input");
        w.begin_object().kv("id", id).kv("type", "function").key("function").begin_object();
        w.kv("name", name);
        w.kv("arguments",
             in.found && is_object(in.value) ? simdjson::minify(in.value) : std::string("{}"));
        w.end_object().end_object();
      }
      w.end_array();
    }
    w.end_object();
    return true;
  }

  bool write_message(json_writer& w, dom::element m, const std::string& param) {
    std::string_view role = get_str(m, "role");
    member c = get(m, "content");
    if (!c.found) return fail(param + ".content", "is required");
    if (role == "user") return write_user(w, c.value, param + ".content");
    if (role == "assistant") return write_assistant(w, c.value, param + ".content");
    return fail(param + ".role", "must be user or assistant");
  }

  bool write_tools(json_writer& w) {
    bool any = false;
    if (have_[s_tools]) {
      dom::array tools;
      if (slots_[s_tools].get_array().get(tools)) return fail("tools", "must be an array");
      std::size_t j = 0;
      for (dom::element t : tools) {
        std::string tp = path_index("tools", j++);
        std::string_view type = get_str(t, "type");
        if (!type.empty() && type != "custom")
          return fail(tp + ".type", "the server tool '" + std::string(type) +
                                        "' is not available on an OpenAI-dialect model");
        std::string_view name = get_str(t, "name");
        if (name.empty()) return fail(tp + ".name", "is required");
        if (!any) w.key("tools").begin_array();
        any = true;
        w.begin_object().kv("type", "function").key("function").begin_object().kv("name", name);
        member d = get(t, "description");
        if (d.found && is_string(d.value)) w.kv("description", str(d.value));
        member s = get(t, "input_schema");
        if (s.found && is_object(s.value)) {
          w.key("parameters");
          write_value(w, s.value);
        }
        w.end_object().end_object();
      }
      if (any) w.end_array();
    }
    if (have_[s_tool_choice]) {
      dom::element v = slots_[s_tool_choice];
      std::string_view type = get_str(v, "type");
      const bool known = type == "auto" || type == "any" || type == "none" ||
                         (type == "tool" && !get_str(v, "name").empty());
      if (!known) return fail("tool_choice.type", "must be auto, any, tool (with a name) or none");
      // Without tools it says nothing, and OpenAI refuses a tool_choice without tools (400).
      if (!any) return true;
      w.key("tool_choice");
      if (type == "auto") {
        w.string("auto");
      } else if (type == "any") {
        w.string("required");
      } else if (type == "none") {
        w.string("none");
      } else if (type == "tool" && !get_str(v, "name").empty()) {
        w.begin_object().kv("type", "function").key("function").begin_object();
        w.kv("name", get_str(v, "name")).end_object().end_object();
      } else {
        return fail("tool_choice.type", "must be auto, any, tool (with a name) or none");
      }
      member dp = get(v, "disable_parallel_tool_use");
      if (any && type != "none" && dp.found && is_bool(dp.value) &&
          dp.value.get_bool().value_unsafe())
        w.key("parallel_tool_calls").boolean(false);
    }
    return true;
  }

  const inbound_options& opt_;
  dom::parser parser_;
  std::array<dom::element, s_count> slots_{};
  std::array<bool, s_count> have_{};
  bool stream_ = false;
  failure err_;
};

}  // namespace

request_result anthropic_request_to_openai(std::string_view body, const inbound_options& opt) {
  translator t(opt);
  return t.run(body);
}

}  // namespace ob::dialect::anthropic
