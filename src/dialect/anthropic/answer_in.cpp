// Inbound answer: a chat.completion or OpenAI error -> an Anthropic message or error.
#include "dialect/anthropic/mapping.hpp"

namespace ob::dialect::anthropic {

using namespace detail;

namespace detail {

// OpenAI usage -> accounting counts and the Anthropic usage object (input excludes cached).
token_usage usage_of_openai(dom::element u, std::int64_t& cached) {
  token_usage t;
  t.prompt_tokens = get_count(u, "prompt_tokens");
  t.completion_tokens = get_count(u, "completion_tokens");
  t.total_tokens = get_count(u, "total_tokens");
  member d = get(u, "prompt_tokens_details");
  cached = d.found ? get_count(d.value, "cached_tokens") : -1;
  return t;
}

void write_anthropic_usage(json_writer& w, const token_usage& t, std::int64_t cached) {
  std::int64_t p = std::max<std::int64_t>(t.prompt_tokens, 0);
  std::int64_t c = std::max<std::int64_t>(cached, 0);
  if (c > p) c = p;
  w.key("usage").begin_object().kv_int("input_tokens", p - c);
  w.kv_int("cache_creation_input_tokens", 0).kv_int("cache_read_input_tokens", c);
  w.kv_int("output_tokens", std::max<std::int64_t>(t.completion_tokens, 0)).end_object();
}

std::string_view anthropic_type_of_openai(int status, std::string_view openai_type,
                                          std::string_view code) {
  if (status == 0) {  // in a stream: only the error's own words
    if (openai_type.find("rate") != openai_type.npos || code.find("rate") != code.npos)
      return "rate_limit_error";
    if (openai_type == "invalid_request_error") return "invalid_request_error";
    return code == "overloaded" ? "overloaded_error" : "api_error";
  }
  return anthropic_error_type(status);
}

}  // namespace detail

answer_result openai_answer_to_anthropic(int status, std::string_view body,
                                         std::string_view group) {
  dom::parser p;
  dom::element root;
  bool ok = parse(p, body, root) && is_object(root);
  answer_result r;
  if (status < 200 || status > 299) {
    member e = ok ? get(root, "error") : member{};
    std::string_view msg;
    if (e.found) msg = is_string(e.value) ? str(e.value) : get_str(e.value, "message");
    std::string fallback = "the provider answered " + std::to_string(status);
    r.status = status >= 400 && status <= 599 ? status : 502;
    append_anthropic_error(r.body, anthropic_error_type(r.status),
                           msg.empty() ? std::string_view(fallback) : msg);
    return r;
  }
  member choices = ok ? get(root, "choices") : member{};
  dom::array ca;
  dom::element choice, msg;
  bool shaped = choices.found && !choices.value.get_array().get(ca) && ca.size() > 0 &&
                !ca.at(0).get(choice) && get(choice, "message").found;
  if (!shaped) {
    r.status = 502;
    append_anthropic_error(r.body, "api_error", "the provider's answer is not a chat completion");
    return r;
  }
  msg = get(choice, "message").value;
  json_writer w(r.body);
  w.begin_object().kv("id", get_str(root, "id")).kv("type", "message").kv("role", "assistant");
  w.kv("model", group).key("content").begin_array();
  std::string text;
  member c = get(msg, "content");
  if (c.found && is_string(c.value)) {
    text = str(c.value);
  } else if (c.found && is_array(c.value)) {  // content parts (some servers)
    for (dom::element part : as_array(c.value)) text += get_str(part, "text");
  }
  if (text.empty()) text = get_str(msg, "refusal");
  if (!text.empty()) w.begin_object().kv("type", "text").kv("text", text).end_object();
  member tc = get(msg, "tool_calls");
  dom::array calls;
  bool any_tool = false;
  if (tc.found && !tc.value.get_array().get(calls)) {
    dom::parser args_parser;
    std::size_t j = 0;
    for (dom::element call : calls) {
      member fn = get(call, "function");
      if (!fn.found) continue;
      any_tool = true;
      std::string_view id = get_str(call, "id");
      std::string synth = "toolu_" + std::to_string(j++);
      w.begin_object().kv("type", "tool_use").kv("id", id.empty() ? std::string_view(synth) : id);
      w.kv("name", get_str(fn.value, "name")).key("input");
      dom::element args;
      if (parse(args_parser, get_str(fn.value, "arguments"), args) && is_object(args)) {
        write_value(w, args);
      } else {
        w.raw("{}");  // arguments that are not a JSON object: lossy, documented
      }
      w.end_object();
    }
  }
  w.end_array();
  std::string_view fr = get_str(choice, "finish_reason");
  // A turn that called tools ends in tool_use, also when the provider said "stop" (some
  // OpenAI-compatible ones do; Anthropic's clients loop on stop_reason).
  w.kv("stop_reason", any_tool && (fr.empty() || fr == "stop") ? "tool_use" : stop_reason(fr));
  w.key("stop_sequence").null();
  member u = get(root, "usage");
  std::int64_t cached = -1;
  if (u.found && is_object(u.value)) r.usage = usage_of_openai(u.value, cached);
  write_anthropic_usage(w, r.usage, cached);
  w.end_object();
  return r;
}

}  // namespace ob::dialect::anthropic
