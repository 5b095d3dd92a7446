// Anthropic Messages API clients (POST /v1/messages, /v1/messages/count_tokens) behind the
// client codec interface (dialect/client.hpp):
//   to an api "anthropic" target   pass-through: the client's body with the model spliced; the
//                                  answer's "model" (and message_start's message.model) becomes
//                                  the group name; usage is read for accounting
//   to an OpenAI-dialect target    translated both ways (translate.hpp, inbound direction);
//                                  count_tokens is answered here with an estimate
// docs/ANTHROPIC.md ("Inbound") lists every rule.
#include "dialect/anthropic/client.hpp"

#include <algorithm>

#include <simdjson.h>

#include "dialect/anthropic/writer.hpp"

namespace ob::dialect::anthropic {
namespace {

using proxy::json::token_usage;

constexpr std::string_view messages_path = "/v1/messages";
constexpr std::string_view count_tokens_path = "/v1/messages/count_tokens";

std::string_view path_only(std::string_view target) {
  return target.substr(0, target.find('?'));
}

std::int64_t int_or(simdjson::dom::element obj, std::string_view key) {
  std::int64_t v = 0;
  if (obj[key].get(v)) return 0;
  return v < 0 ? 0 : v;
}

// Anthropic usage -> the gateway's accounting: prompt = every input token (cache reads and writes
// included), completion = output tokens. `input_seen`: the object had input counts (a
// message_delta may carry only output_tokens).
void read_usage(simdjson::dom::element u, token_usage& acc) {
  if (!u.is_object()) return;
  std::int64_t v = 0;
  bool has_input = !u["input_tokens"].get(v) || !u["cache_read_input_tokens"].get(v) ||
                   !u["cache_creation_input_tokens"].get(v);
  if (has_input)
    acc.prompt_tokens = int_or(u, "input_tokens") + int_or(u, "cache_read_input_tokens") +
                        int_or(u, "cache_creation_input_tokens");
  if (!u["output_tokens"].get(v)) acc.completion_tokens = v < 0 ? 0 : v;
  if (acc.prompt_tokens >= 0 || acc.completion_tokens >= 0)
    acc.total_tokens = std::max<std::int64_t>(acc.prompt_tokens, 0) +
                       std::max<std::int64_t>(acc.completion_tokens, 0);
}

// Pass-through to an Anthropic target: bytes go to the client unchanged except message_start's
// message.model (the buffered answer's top-level "model" is rewritten by the exchange).
class passthrough_translator final : public client_translator {
 public:
  explicit passthrough_translator(std::string_view group) : group_(group) {}

  codec_result translate_body(int status, std::string_view body, std::string& out) override {
    out += body;
    simdjson::dom::element root;
    if (status >= 200 && status <= 299 && !body.empty() &&
        !parser_.parse(body.data(), body.size(), true).get(root) && root.is_object()) {
      simdjson::dom::element u;
      if (!root["usage"].get(u)) read_usage(u, usage_);
    }
    return {};
  }

  event_info translate_event(const proxy::sse::event& ev, std::string& out) override {
    event_info info;
    if (done_) return info;  // nothing after the final or an error event
    // message_start, and the pings (and comments) after it, wait for the next event: an error there
    // (overloaded_error after the stream was accepted) is then the stream's first, and the
    // exchange fails over to the group's next target.
    // Once the exchange stopped waiting (release_held: a long prefill), they go out as they
    // come, and still do not count as the stream's first event.
    if (ev.type == "message_start" && ev.has_data) {
      held_.clear();
      auto& to = released_ ? out : held_;
      if (!rewrite_start(ev.data, to)) to += ev.raw;
      holding_ = !released_;
      opening_ = info.held = true;
      return info;
    }
    if (opening_ && (ev.type == "ping" || !ev.has_data)) {  // a comment is no event either
      (holding_ ? held_ : out) += ev.raw;
      info.held = true;
      return info;
    }
    opening_ = false;
    flush_held(out);
    out += ev.raw;
    if (ev.type == "message_delta" && ev.has_data) {
      simdjson::dom::element root, u;
      if (!parser_.parse(ev.data.data(), ev.data.size(), true).get(root) && !root["usage"].get(u)) {
        read_usage(u, usage_);
        info.usage = usage_;
      }
    } else if (ev.type == "message_stop") {
      done_ = info.terminal = true;
      info.usage = usage_;
    } else if (ev.type == "error") {
      done_ = info.terminal = info.error = true;
    }
    return info;
  }

  event_info finish(std::string& out) override {
    flush_held(out);  // a stream that ended right after message_start: what came, as it came
    return {};
  }
  token_usage usage() const override { return usage_; }
  std::size_t held_size() const override { return holding_ ? held_.size() : 0; }
  void release_held(std::string& out) override {
    released_ = true;
    flush_held(out);
  }

 private:
  void flush_held(std::string& out) {
    if (!holding_) return;
    holding_ = false;
    // The last one held may have been the stream's last event, without its blank line: ended
    // here, as the exchange ends an event it relays (an error event may follow).
    if (!held_.empty() && held_.back() != '\n')
      held_ += "\n\n";
    else if (held_.size() >= 2 && held_[held_.size() - 2] != '\n')
      held_ += '\n';
    out += held_;
    held_.clear();
  }

  // message_start re-written with message.model = the group (the event is small and comes once).
  bool rewrite_start(std::string_view data, std::string& out) {
    simdjson::dom::element root;
    if (data.empty() || parser_.parse(data.data(), data.size(), true).get(root) ||
        !root.is_object())
      return false;
    simdjson::dom::element u;
    if (!root["message"]["usage"].get(u)) read_usage(u, usage_);
    simdjson::dom::object top;
    if (root.get_object().get(top)) return false;
    out += "event: message_start\ndata: ";
    json_writer w(out);
    w.begin_object();
    for (const auto& field : top) {
      w.key(field.key);
      simdjson::dom::object message;
      if (field.key != "message" || field.value.get_object().get(message)) {
        w.raw(simdjson::to_string(field.value));
        continue;
      }
      w.begin_object();
      for (const auto& f : message) {
        w.key(f.key);
        if (f.key == "model")
          w.string(group_);
        else
          w.raw(simdjson::to_string(f.value));
      }
      w.end_object();
    }
    w.end_object();
    out += "\n\n";
    return true;
  }

  std::string group_;
  simdjson::dom::parser parser_;
  token_usage usage_;
  bool done_ = false;
  std::string held_;       // message_start (rewritten) and pings, until the next event
  bool holding_ = false;   // held_ waits for the next event
  bool opening_ = false;   // message_start came, no event but pings after it yet
  bool released_ = false;  // the exchange stopped waiting: nothing is held any more
};

// An OpenAI-dialect target: its chat completion answer or chunks become a Messages answer.
class openai_translator final : public client_translator {
 public:
  explicit openai_translator(std::string_view group) : group_(group), stream_(group) {}

  codec_result translate_body(int status, std::string_view body, std::string& out) override {
    answer_result r = openai_answer_to_anthropic(status, body, group_);
    out += r.body;
    usage_ = r.usage;
    status_ = r.status;
    codec_result c;
    if (status >= 200 && status <= 299 && (r.status < 200 || r.status > 299)) {
      c.status = codec_status::bad_answer;
      c.message = "the provider's answer is not a chat completion";
    }
    return c;
  }

  int client_status(int upstream_status) const override {
    return status_ ? status_ : upstream_status;
  }

  event_info translate_event(const proxy::sse::event& ev, std::string& out) override {
    if (!ev.has_data) {
      if (proxy::sse::is_comment(ev)) stream_.keep_alive(out);  // a keep-alive, not an event
      return {};
    }
    return convert(stream_.on_event(ev.type, ev.data, out));
  }

  event_info finish(std::string& out) override { return convert(stream_.finish(out)); }

  token_usage usage() const override {
    auto u = stream_.usage();
    return u.present() ? u : usage_;
  }

 private:
  static event_info convert(const event_result& r) {
    event_info i;
    i.terminal = r.terminal;
    i.error = r.error;
    i.usage = r.usage;
    return i;
  }

  std::string group_;
  openai_stream_to_anthropic stream_;
  token_usage usage_;
  int status_ = 0;
};

// The status a gateway error gets as an Anthropic error type: the seven types the SDKs know.
std::string_view gateway_error_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

class messages_codec final : public client_codec {
 public:
  codec_result encode_request(const request_in& in, api to,
                              client_request_out& out) const override {
    codec_result c;
    auto path = path_only(in.target);
    if (to == api::anthropic) {
      out.passthrough = true;
      return c;
    }
    if (path == count_tokens_path) {
      // No OpenAI endpoint counts tokens: an estimate, a quarter of the body's bytes.
      out.local = true;
      json_writer w(out.req.body);
      w.begin_object().kv_int("input_tokens", estimate_tokens(in.body)).end_object();
      return c;
    }
    inbound_options o;
    o.target_model = in.model;
    o.max_completion_tokens = in.max_completion_tokens;
    request_result r = anthropic_request_to_openai(in.body, o);
    if (r.failed()) {
      c.status = codec_status::bad_request;
      c.message = std::move(r.error.message);
      c.param = std::move(r.error.param);
      c.code = std::move(r.error.code);
      return c;
    }
    out.req.target = "/v1/chat/completions";
    out.req.body = std::move(r.body);
    out.req.stream = r.stream;
    return c;
  }

  std::unique_ptr<client_translator> new_translator(const request_in&, api to,
                                                    std::string_view group) const override {
    if (to == api::anthropic) return std::make_unique<passthrough_translator>(group);
    return std::make_unique<openai_translator>(group);
  }

  void append_error_body(std::string& out, int status, std::string_view message) const override {
    append_anthropic_error(out, gateway_error_type(status), message);
  }

  void append_error_event(std::string& out, int status, std::string_view message) const override {
    append_anthropic_error_event(out, gateway_error_type(status), message);
  }
};

}  // namespace

std::int64_t estimate_tokens(std::string_view body) {
  return static_cast<std::int64_t>((body.size() + 3) / 4);
}

const client_codec* messages_codec_instance() {
  static const messages_codec c;
  return &c;
}

bool is_messages_path(std::string_view path) {
  // "/v1/messages" (12) or "/v1/messages/count_tokens" (25): the length decides first.
  return (path.size() == messages_path.size() && path == messages_path) ||
         (path.size() == count_tokens_path.size() && path == count_tokens_path);
}

}  // namespace ob::dialect::anthropic

namespace ob::dialect {

const client_codec* client_codec_for_path(std::string_view path) {
  return anthropic::is_messages_path(path) ? anthropic::messages_codec_instance() : nullptr;
}

}  // namespace ob::dialect
