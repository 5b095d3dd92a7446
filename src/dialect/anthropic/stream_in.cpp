// Inbound stream: chat.completion.chunk events -> Anthropic Messages stream events.
//
// Anthropic content blocks are strictly sequential (start, deltas, stop), so a text run or a
// tool call opens a block and the next one closes it. message_start is sent on the first chunk
// with input_tokens 0 (OpenAI reports usage only at the end); message_delta carries the final
// usage, input tokens included.
#include <string>
#include <vector>

#include "dialect/anthropic/mapping.hpp"

namespace ob::dialect::anthropic {

using namespace detail;

namespace {
constexpr std::size_t max_tools = 4096;
constexpr unsigned reasoning_ping_every = 16;
enum class kind { none, text, tool };
}  // namespace

struct openai_stream_to_anthropic::state {
  std::string group;
  dom::parser parser;
  bool started = false, over = false;
  kind open = kind::none;
  std::int64_t block = -1;      // index of the open block
  std::int64_t next_block = 0;  // index of the next block
  int open_tool = -1;           // the open tool call (its position in `calls`)
  struct call_ref {
    std::int64_t index;  // the provider's, -1 when it sent none
    std::string id;      // the provider's, empty when it sent none
  };
  std::vector<call_ref> calls;  // tool calls that had a block, in order
  std::string_view stop = {};   // Anthropic stop_reason once a finish_reason arrived
  token_usage usage;
  std::int64_t cached = -1;
  unsigned reasoning = 0;  // reasoning deltas since the last client output

  void reset(std::string_view g) {
    group.assign(g);
    started = over = false;
    reasoning = 0;
    open = kind::none;
    block = -1;
    next_block = 0;
    open_tool = -1;
    calls.clear();
    stop = {};
    usage = {};
    cached = -1;
  }

  static void event(std::string& out, std::string_view name) {
    out += "event: ";
    out += name;
    out += "\ndata: ";
  }

  void message_start(std::string& out, std::string_view id) {
    started = true;
    event(out, "message_start");
    json_writer w(out);
    w.begin_object().kv("type", "message_start").key("message").begin_object();
    w.kv("id", id).kv("type", "message").kv("role", "assistant").kv("model", group);
    w.key("content").begin_array().end_array().key("stop_reason").null();
    w.key("stop_sequence").null();
    // Input tokens are not known before the end of an OpenAI stream: 0 here, the real count in
    // message_delta.
    w.key("usage").begin_object().kv_int("input_tokens", 0).kv_int("output_tokens", 0);
    w.end_object().end_object().end_object();
    out += "\n\n";
  }

  // Keep-alives: a comment before message_start (the only thing an Anthropic stream may say
  // before it), Anthropic's own ping event after it.
  void keep_alive(std::string& out) {
    if (over) return;
    if (started)
      out += "event: ping\ndata: {\"type\": \"ping\"}\n\n";
    else
      out += ": ping\n\n";
  }

  void close_block(std::string& out) {
    if (open == kind::none) return;
    event(out, "content_block_stop");
    json_writer(out)
        .begin_object()
        .kv("type", "content_block_stop")
        .kv_int("index", block)
        .end_object();
    out += "\n\n";
    open = kind::none;
    open_tool = -1;
  }

  void start_block(std::string& out) {
    close_block(out);
    block = next_block++;
    event(out, "content_block_start");
  }

  void delta_head(json_writer& w, std::string& out) {
    event(out, "content_block_delta");
    w.begin_object().kv("type", "content_block_delta").kv_int("index", block).key("delta");
  }

  void text(std::string& out, std::string_view t) {
    if (open != kind::text) {
      start_block(out);
      json_writer w(out);
      w.begin_object().kv("type", "content_block_start").kv_int("index", block);
      w.key("content_block").begin_object().kv("type", "text").kv("text", "").end_object();
      w.end_object();
      out += "\n\n";
      open = kind::text;
    }
    json_writer w(out);
    delta_head(w, out);
    w.begin_object().kv("type", "text_delta").kv("text", t).end_object().end_object();
    out += "\n\n";
  }

  event_result fail(std::string& out, std::string_view type, std::string_view message) {
    over = true;
    append_anthropic_error_event(out, type, message);
    event_result r;
    r.terminal = r.error = true;
    return r;
  }

  // The call a tool call delta belongs to (its position in `calls`), -1 for a new one. By
  // `index`, as OpenAI sends it, except that a delta naming another id than the call of its
  // index is another call (providers that send index 0 for every parallel call). Without
  // `index` (Gemini's OpenAI-compatible API, some vLLM and Ollama parsers: each call whole, or
  // its first delta with an id) by id; a delta with neither continues the last call.
  int find_call(std::int64_t idx, std::string_view id) const {
    auto by_id = [&]() -> int {
      for (std::size_t i = 0; i < calls.size(); ++i)
        if (calls[i].id == id) return static_cast<int>(i);
      return -1;
    };
    if (idx >= 0) {
      for (std::size_t i = calls.size(); i-- > 0;)
        if (calls[i].index == idx)
          return id.empty() || calls[i].id.empty() || calls[i].id == id ? static_cast<int>(i)
                                                                        : by_id();
      return -1;
    }
    if (!id.empty()) return by_id();
    return calls.empty() ? -1 : static_cast<int>(calls.size()) - 1;
  }

  event_result tool(std::string& out, dom::element call) {
    event_result r;
    std::int64_t idx = get_count(call, "index");
    if (idx > static_cast<std::int64_t>(max_tools))
      return fail(out, "api_error", "the provider sent a tool call index out of range");
    std::string_view id = get_str(call, "id");
    int k = find_call(idx, id);
    member fn = get(call, "function");
    std::string_view args = fn.found ? get_str(fn.value, "arguments") : std::string_view{};
    if (k < 0 || open != kind::tool || open_tool != k) {
      if (k >= 0)  // a call whose block another one closed
        return fail(out, "api_error",
                    "the provider interleaved the arguments of parallel tool calls");
      if (calls.size() >= max_tools)
        return fail(out, "api_error", "the provider sent too many tool calls");
      k = static_cast<int>(calls.size());
      calls.push_back({idx, std::string(id)});
      start_block(out);
      std::string synth = "toolu_" + std::to_string(k);
      json_writer w(out);
      w.begin_object().kv("type", "content_block_start").kv_int("index", block);
      w.key("content_block").begin_object().kv("type", "tool_use");
      w.kv("id", id.empty() ? std::string_view(synth) : id);
      w.kv("name", fn.found ? get_str(fn.value, "name") : std::string_view{});
      w.key("input").begin_object().end_object().end_object().end_object();
      out += "\n\n";
      open = kind::tool;
      open_tool = k;
    }
    if (!args.empty()) {
      json_writer w(out);
      delta_head(w, out);
      w.begin_object().kv("type", "input_json_delta").kv("partial_json", args);
      w.end_object().end_object();
      out += "\n\n";
    }
    return r;
  }

  event_result end(std::string& out) {
    if (!started) message_start(out, "");
    close_block(out);
    event(out, "message_delta");
    json_writer w(out);
    w.begin_object().kv("type", "message_delta").key("delta").begin_object();
    w.kv("stop_reason", stop.empty() ? std::string_view("end_turn") : stop);
    w.key("stop_sequence").null().end_object();
    write_anthropic_usage(w, usage, cached);
    w.end_object();
    out += "\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    over = true;
    event_result r;
    r.terminal = true;
    r.usage = usage;
    return r;
  }

  event_result on_event(std::string_view name, std::string_view data, std::string& out) {
    event_result r;
    if (over) return r;
    if (data == "[DONE]") return end(out);
    dom::element root;
    if (!parse(parser, data, root) || !is_object(root)) {
      if (data.empty()) return r;  // comments, blank events
      return fail(out, "api_error", "the provider sent a malformed stream event");
    }
    member e = get(root, "error");
    if (e.found && !is_null(e.value)) {
      std::string_view msg = is_string(e.value) ? str(e.value) : get_str(e.value, "message");
      return fail(out,
                  anthropic_type_of_openai(0, get_str(e.value, "type"), get_str(e.value, "code")),
                  msg.empty() ? std::string_view("the provider reported an error") : msg);
    }
    if (!started) message_start(out, get_str(root, "id"));
    const std::size_t before = out.size();
    member u = get(root, "usage");
    if (u.found && is_object(u.value)) usage = usage_of_openai(u.value, cached);
    member choices = get(root, "choices");
    dom::array ca;
    dom::element choice;
    if (!choices.found || choices.value.get_array().get(ca) || ca.size() == 0 ||
        ca.at(0).get(choice))
      return r;
    member delta = get(choice, "delta");
    if (delta.found) {
      std::string_view t = get_str(delta.value, "content");
      if (!t.empty()) text(out, t);
      member tc = get(delta.value, "tool_calls");
      dom::array calls;
      if (tc.found && !tc.value.get_array().get(calls)) {
        for (dom::element call : calls) {
          r = tool(out, call);
          if (r.terminal) return r;
        }
      }
      // Reasoning (reasoning_content, or OpenRouter's reasoning) is dropped: an Anthropic
      // thinking block needs a signature the gateway cannot make. A long reasoning phase
      // would then leave the client without a byte for minutes (an intermediary's idle limit
      // cuts that): a ping on its first delta and every 16th after, while nothing else goes
      // out.
      if (out.size() != before)
        reasoning = 0;
      else if (!get_str(delta.value, "reasoning_content").empty() ||
               !get_str(delta.value, "reasoning").empty())
        if (reasoning++ % reasoning_ping_every == 0) keep_alive(out);
    }
    std::string_view fr = get_str(choice, "finish_reason");
    if (!fr.empty()) {
      // A turn that called tools ends in tool_use, whatever the provider called it: some
      // OpenAI-compatible ones say "stop" (Anthropic's clients loop on stop_reason).
      stop = !calls.empty() && fr == "stop" ? std::string_view("tool_use") : stop_reason(fr);
      close_block(out);
    }
    return r;
  }
};

openai_stream_to_anthropic::openai_stream_to_anthropic(std::string_view group)
    : s_(std::make_unique<state>()) {
  s_->reset(group);
}
openai_stream_to_anthropic::~openai_stream_to_anthropic() = default;
openai_stream_to_anthropic::openai_stream_to_anthropic(openai_stream_to_anthropic&&) noexcept =
    default;
openai_stream_to_anthropic& openai_stream_to_anthropic::operator=(
    openai_stream_to_anthropic&&) noexcept = default;

event_result openai_stream_to_anthropic::on_event(std::string_view name, std::string_view data,
                                                  std::string& out) {
  return s_->on_event(name, data, out);
}

event_result openai_stream_to_anthropic::finish(std::string& out) {
  if (s_->over || s_->stop.empty()) return {};
  return s_->end(out);
}

void openai_stream_to_anthropic::keep_alive(std::string& out) {
  s_->keep_alive(out);
}

token_usage openai_stream_to_anthropic::usage() const {
  return s_->usage;
}

void openai_stream_to_anthropic::reset(std::string_view group) {
  s_->reset(group);
}

}  // namespace ob::dialect::anthropic
