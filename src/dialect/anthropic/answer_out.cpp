// Outbound answer: an Anthropic message or error -> a chat.completion or OpenAI error.
#include "dialect/anthropic/dom.hpp"
#include "dialect/anthropic/mapping.hpp"

namespace ob::dialect::anthropic {

using namespace detail;

namespace detail {

std::string_view finish_reason(std::string_view stop_reason) {
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded")
    return "length";
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return "stop";  // end_turn, stop_sequence, pause_turn, absent
}

std::string_view stop_reason(std::string_view finish_reason) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  if (finish_reason == "content_filter") return "refusal";
  return "end_turn";
}

token_usage openai_usage_of_anthropic(dom::element usage) {
  token_usage u;
  std::int64_t in = get_count(usage, "input_tokens");
  std::int64_t read = get_count(usage, "cache_read_input_tokens");
  std::int64_t created = get_count(usage, "cache_creation_input_tokens");
  u.prompt_tokens = add_counts(add_counts(in, read), created);
  u.completion_tokens = get_count(usage, "output_tokens");
  if (u.prompt_tokens >= 0 || u.completion_tokens >= 0)
    u.total_tokens =
        std::max<std::int64_t>(u.prompt_tokens, 0) + std::max<std::int64_t>(u.completion_tokens, 0);
  return u;
}

void write_openai_usage(json_writer& w, const token_usage& u, std::int64_t cached) {
  std::int64_t p = std::max<std::int64_t>(u.prompt_tokens, 0);
  std::int64_t c = std::max<std::int64_t>(u.completion_tokens, 0);
  w.key("usage").begin_object().kv_int("prompt_tokens", p).kv_int("completion_tokens", c);
  w.kv_int("total_tokens", p + c);
  w.key("prompt_tokens_details").begin_object();
  w.kv_int("cached_tokens", std::max<std::int64_t>(cached, 0)).end_object();
  w.end_object();
}

answer_result openai_error_of_anthropic(int status, dom::element* err, std::string_view fallback) {
  // Anthropic's error types (https://docs.anthropic.com/en/api/errors) -> OpenAI's type/code;
  // 529 overloaded has no HTTP meaning to OpenAI clients: 503, which they retry.
  std::string_view atype, message = fallback;
  if (err) {
    atype = get_str(*err, "type");
    std::string_view m = get_str(*err, "message");
    if (!m.empty()) message = m;
  }
  if (atype.empty()) atype = anthropic_error_type(status);
  failure f;
  f.message = std::string(message);
  f.code = std::string(atype);
  answer_result r;
  r.status = status;
  if (status == 529 || atype == "overloaded_error") {
    r.status = 503;
    f.type = "server_error";
  } else if (atype == "rate_limit_error") {
    f.type = "rate_limit_error";
    f.code = "rate_limit_exceeded";
  } else if (atype == "authentication_error") {
    f.type = "authentication_error";
    f.code = "invalid_api_key";
  } else if (atype == "permission_error") {
    f.type = "permission_error";
  } else if (atype == "not_found_error") {
    f.type = "invalid_request_error";
    f.code = "not_found";
  } else if (atype == "api_error" || status >= 500) {
    f.type = "server_error";
  } else {
    f.type = "invalid_request_error";
  }
  if (r.status < 400 || r.status > 599) r.status = 502;
  append_openai_error(r.body, f);
  return r;
}

}  // namespace detail

answer_result anthropic_answer_to_openai(int status, std::string_view body, std::string_view group,
                                         std::int64_t created) {
  dom::parser p;
  dom::element root;
  bool ok = parse(p, body, root) && is_object(root);
  if (status < 200 || status > 299) {
    member e = ok ? get(root, "error") : member{};
    std::string fallback = "the provider answered " + std::to_string(status);
    return openai_error_of_anthropic(status, e.found && is_object(e.value) ? &e.value : nullptr,
                                     fallback);
  }
  member content = ok ? get(root, "content") : member{};
  if (!ok || get_str(root, "type") != "message" || !content.found || !is_array(content.value)) {
    answer_result r;
    r.status = 502;
    failure f{502, "the provider's answer is not an Anthropic message", "", "upstream_error",
              "upstream_bad_response"};
    append_openai_error(r.body, f);
    return r;
  }
  answer_result r;
  json_writer w(r.body);
  w.begin_object().kv("id", get_str(root, "id")).kv("object", "chat.completion");
  w.kv_int("created", created).kv("model", group);
  w.key("choices").begin_array().begin_object().kv_int("index", 0);
  w.key("message").begin_object().kv("role", "assistant");

  // Text blocks joined; thinking joined into reasoning_content; tool_use -> tool_calls.
  std::string text, reasoning;
  bool any_text = false, any_tool = false;
  for (dom::element b : as_array(content.value)) {
    std::string_view type = get_str(b, "type");
    if (type == "text") {
      text += get_str(b, "text");
      any_text = true;
    } else if (type == "thinking") {
      reasoning += get_str(b, "thinking");
    } else if (type == "tool_use") {
      any_tool = true;
    }
  }
  w.key("content");
  if (any_text || !any_tool) {
    w.string(text);
  } else {
    w.null();
  }
  if (!reasoning.empty()) w.kv("reasoning_content", reasoning);
  if (any_tool) {
    w.key("tool_calls").begin_array();
    for (dom::element b : as_array(content.value)) {
      if (get_str(b, "type") != "tool_use") continue;
      w.begin_object().kv("id", get_str(b, "id")).kv("type", "function");
      w.key("function").begin_object().kv("name", get_str(b, "name")).key("arguments");
      member in = get(b, "input");
      w.string(in.found && is_object(in.value) ? simdjson::minify(in.value) : std::string("{}"));
      w.end_object().end_object();
    }
    w.end_array();
  }
  w.key("refusal").null().end_object();
  w.key("logprobs").null();
  w.kv("finish_reason", finish_reason(get_str(root, "stop_reason")));
  w.end_object().end_array();
  member usage = get(root, "usage");
  if (usage.found && is_object(usage.value)) {
    r.usage = openai_usage_of_anthropic(usage.value);
    write_openai_usage(w, r.usage, get_count(usage.value, "cache_read_input_tokens"));
  }
  w.end_object();
  return r;
}

}  // namespace ob::dialect::anthropic
