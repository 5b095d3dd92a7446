// The Anthropic dialect behind the provider codec interface (dialect/codec.hpp): an OpenAI
// client's chat completion request to an api "anthropic" target, and its answer back.
// dialect::codec_for(api::anthropic) should return anthropic::codec_instance().
//
// Compiled once dialect/codec.hpp is in the tree (the interface and these codecs were written
// side by side); until then this file is empty.
#if __has_include("dialect/codec.hpp")

#include "dialect/anthropic/codec.hpp"

#include <ctime>

#include "dialect/anthropic/dom.hpp"

#include <simdjson.h>

namespace ob::dialect::anthropic {
namespace {

bool is_chat_path(std::string_view target) {
  target = target.substr(0, target.find('?'));
  return target == "/v1/chat/completions";
}

// stream_options.include_usage of the client's body (already validated by encode_request).
// Most bodies do not say it (nor escape a key): those are not parsed a second time.
bool asks_usage(std::string_view body) {
  if (body.find("include_usage") == std::string_view::npos &&
      body.find("\\u") == std::string_view::npos)
    return false;
  simdjson::dom::element root;
  bool v = false;
  bool asked = detail::parse(detail::thread_parser(), body, root) &&
               !root["stream_options"]["include_usage"].get(v) && v;
  detail::trim_thread_parser();
  return asked;
}

class translator final : public answer_translator {
 public:
  // Bodies name `model` (the exchange rewrites a body's model); stream events name `group`.
  translator(std::string_view model, std::string_view group, bool include_usage,
             std::int64_t created)
      : model_(model), created_(created), stream_(group, include_usage, created) {}

  // As a new translator, keeping the buffers.
  void reset(std::string_view model, std::string_view group, bool include_usage,
             std::int64_t created) {
    model_.assign(model);
    created_ = created;
    stream_.reset(group, include_usage, created);
    usage_ = {};
    status_ = 0;
  }

  codec_result translate_body(int status, std::string_view body, std::string& out) override {
    answer_result r = anthropic_answer_to_openai(status, body, model_, created_);
    out += r.body;
    usage_ = r.usage;
    status_ = r.status;
    codec_result c;
    if (status >= 200 && status <= 299 && r.status != 200) {
      c.status = codec_status::bad_answer;
      c.message = "the provider's answer is not an Anthropic message";
    }
    return c;
  }

  event_info translate_event(const proxy::sse::event& ev, std::string& out) override {
    event_info info;
    if (!ev.has_data && ev.type.empty()) {  // a comment or a blank event
      if (proxy::sse::is_comment(ev)) stream_.keep_alive(out);
      return info;
    }
    event_result r = stream_.on_event(ev.type, ev.data, out);  // broken: an error event
    info.terminal = r.terminal;
    info.error = r.error;
    info.usage = r.usage;
    info.events = r.events;
    return info;
  }

  // [DONE] is written at message_stop: a stream that ended before it gets nothing here.
  event_info finish(std::string&) override { return {}; }

  int client_status(int upstream_status) const override {
    return status_ ? status_ : upstream_status;
  }

  proxy::json::token_usage usage() const override {
    auto u = stream_.usage();
    return u.present() ? u : usage_;
  }

 private:
  std::string model_;
  std::int64_t created_;
  anthropic_stream_to_openai stream_;
  proxy::json::token_usage usage_;
  int status_ = 0;  // the client's status for the last translated body
};

class anthropic_codec final : public codec {
 public:
  api kind() const override { return api::anthropic; }

  codec_result encode_request(const request_in& in, request_out& out) const override {
    codec_result c;
    if (!is_chat_path(in.target)) {
      c.status = codec_status::unsupported;
      c.message = "an Anthropic target serves only /v1/chat/completions";
      return c;
    }
    outbound_options o;
    o.target_model = in.model;
    o.body_capacity = in.body_capacity;
    // The body is written straight into out.body (the exchange's buffer, reused).
    request_result r = openai_request_to_anthropic(in.body, o, out.body);
    if (r.failed()) {
      c.status = codec_status::bad_request;
      c.message = std::move(r.error.message);
      c.param = std::move(r.error.param);
      c.code = std::move(r.error.code);
      return c;
    }
    out.target = "/v1/messages";
    // anthropic-version is one of the target's fixed headers (dialect/headers.cpp): sent once,
    // unless the provider's configured headers set their own.
    out.stream = r.stream;
    out.include_usage = r.include_usage;
    return c;
  }

  std::unique_ptr<answer_translator> new_translator(const request_in& in, bool client_stream,
                                                    std::string_view group) const override {
    bool usage = client_stream && asks_usage(in.body);
    return std::make_unique<translator>(in.model, group, usage,
                                        static_cast<std::int64_t>(std::time(nullptr)));
  }

  void renew_translator(std::unique_ptr<answer_translator>& tr, const request_in& in,
                        const request_out& out, bool client_stream,
                        std::string_view group) const override {
    const bool usage = client_stream && out.include_usage;
    const auto created = static_cast<std::int64_t>(std::time(nullptr));
    if (auto* t = dynamic_cast<translator*>(tr.get())) {
      t->reset(in.model, group, usage, created);
    } else {
      tr = std::make_unique<translator>(in.model, group, usage, created);
    }
  }
};

}  // namespace

const codec* codec_instance() {
  static const anthropic_codec c;
  return &c;
}

}  // namespace ob::dialect::anthropic

#endif
