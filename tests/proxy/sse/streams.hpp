// Recorded-style event streams (shapes as sent by OpenAI-compatible upstreams) and helpers that
// feed them to a framer in arbitrary pieces.
#pragma once

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/sse/framer.hpp"

namespace ob::proxy::sse::test {

inline std::string chat_chunk(std::string_view delta_json, std::string_view finish) {
  return "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion."
         "chunk\",\"created\":1741569952,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":"
         "\"default\",\"system_fingerprint\":\"fp_06737a9306\",\"choices\":[{\"index\":0,"
         "\"delta\":" +
         std::string(delta_json) + ",\"logprobs\":null,\"finish_reason\":" + std::string(finish) +
         "}]}\n\n";
}

// A chat completion stream: role chunk, 8 content chunks, finish chunk, usage chunk, [DONE].
inline std::string chat_stream() {
  std::string s = chat_chunk(R"({"role":"assistant","content":"","refusal":null})", "null");
  const char* words[] = {"Hello", "!", " How", " can", " I", " \\\"help\\\"", " you", " today?"};
  for (int i = 0; i < 8; ++i)
    s += chat_chunk(std::string(R"({"content":")") + words[i] + "\"}", "null");
  s += chat_chunk("{}", "\"stop\"");
  s += "data: {\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion."
       "chunk\",\"created\":1741569952,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],"
       "\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":10,\"total_tokens\":29,"
       "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":"
       "{\"reasoning_tokens\":0}}}\n\n";
  s += "data: [DONE]\n\n";
  return s;
}

inline std::string responses_event(std::string_view type, std::string_view json) {
  return "event: " + std::string(type) + "\ndata: " + std::string(json) + "\n\n";
}

inline std::string response_object(std::string_view status, std::string_view usage) {
  return R"({"id":"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654","object":"response",)"
         R"("created_at":1741290958,"status":")" +
         std::string(status) +
         R"(","error":null,"instructions":null,"model":"gpt-4.1-2025-04-14","output":[],)"
         R"("parallel_tool_calls":true,"temperature":1.0,"usage":)" +
         std::string(usage) + R"(,"metadata":{}})";
}

// A Responses API stream: created, in_progress, N text deltas, completed (nested model, usage).
inline std::string responses_stream(int deltas = 6) {
  std::string s = responses_event("response.created",
                                  R"({"type":"response.created","sequence_number":0,"response":)" +
                                      response_object("in_progress", "null") + "}");
  s += responses_event("response.in_progress",
                       R"({"type":"response.in_progress","sequence_number":1,"response":)" +
                           response_object("in_progress", "null") + "}");
  for (int i = 0; i < deltas; ++i) {
    s += responses_event("response.output_text.delta",
                         R"({"type":"response.output_text.delta","sequence_number":)" +
                             std::to_string(i + 2) +
                             R"(,"item_id":"msg_1","output_index":0,"content_index":0,)"
                             R"("delta":"word)" +
                             std::to_string(i) + R"( "})");
  }
  s += responses_event(
      "response.completed",
      R"({"type":"response.completed","sequence_number":99,"response":)" +
          response_object("completed",
                          R"({"input_tokens":36,"input_tokens_details":{"cached_tokens":0},)"
                          R"("output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},)"
                          R"("total_tokens":123})") +
          "}");
  return s;
}

inline std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size())
    s.replace(p, from.size(), to);
  return s;
}

inline std::string crlf_stream() {
  return replace_all(chat_stream(), "\n", "\r\n");
}
inline std::string cr_stream() {
  return replace_all(responses_stream(3), "\n", "\r");
}

inline std::string keepalive_stream() {
  return ": ping\n\n" + chat_chunk(R"({"content":"a"})", "null") + ": ping\n\n: ping\n\n" +
         ":\n\n" + chat_chunk(R"({"content":"b"})", "null") + ": keep-alive\ndata: [DONE]\n\n";
}

inline std::string multiline_stream() {
  return "id: 1\nevent: message\ndata: {\"model\":\"gpt-4o\",\ndata: \"choices\":[],\n"
         "data:\"x\":1}\nretry: 3000\n\n"
         "data: first\ndata\ndata: third\n\n"
         "data: a\r\ndata: b\rdata: c\n\r\n"
         "event\ndata:  two spaces\n\n";
}

// The last event has no trailing blank line (the connection closed after it).
inline std::string unterminated_stream() {
  return chat_chunk(R"({"content":"x"})", "null") + "data: {\"model\":\"m\",\"usage\":null}";
}

inline std::string mixed_endings_stream() {
  static const char nul_lines[] = "data: nul\0id\nid: a\0b\n\n";
  return "\xEF\xBB\xBF"
         "data: bom\r\n\r\n"
         "data: a\r\r"
         "data: b\n\r"
         "\ndata: c\r\n\n" +
         std::string(nul_lines, sizeof nul_lines - 1) + "\n\n\r\r\n\n";
}

struct recorded {
  std::string raw, type, id, data;
  bool has_data = false;
  std::vector<event::piece> pieces;
  bool meaningless() const {  // a blank line with no fields: nothing a client would see
    return !has_data && type.empty() && id.empty() &&
           raw.find_first_not_of("\r\n") == std::string::npos;
  }
  bool same_meaning(const recorded& o) const {
    return type == o.type && id == o.id && has_data == o.has_data && data == o.data;
  }
};

inline recorded record(const event& ev) {
  recorded r{std::string(ev.raw), std::string(ev.type),
             std::string(ev.id),  std::string(ev.data),
             ev.has_data,         std::vector<event::piece>(ev.pieces, ev.pieces + ev.piece_count)};
  return r;
}

// Feeds `input` split at the given cut positions (ascending) and finishes the stream.
inline std::vector<recorded> feed_cuts(framer& f, std::string_view input,
                                       const std::vector<std::size_t>& cuts) {
  std::vector<recorded> out;
  auto on_event = [&](const event& ev) { out.push_back(record(ev)); };
  std::size_t pos = 0;
  for (std::size_t c : cuts) {
    // Each piece lives in its own allocation so that a view into a dead piece is caught by ASan.
    const std::string piece(input.substr(pos, c - pos));
    f.feed(piece, on_event);
    pos = c;
  }
  const std::string last(input.substr(pos));
  f.feed(last, on_event);
  f.finish(on_event);
  return out;
}

inline std::vector<std::size_t> random_cuts(std::size_t size, std::mt19937& rng,
                                            std::size_t max_piece) {
  std::vector<std::size_t> cuts;
  std::uniform_int_distribution<std::size_t> d(1, max_piece);
  for (std::size_t p = d(rng); p < size; p += d(rng)) cuts.push_back(p);
  return cuts;
}

inline std::vector<recorded> meaningful(const std::vector<recorded>& v) {
  std::vector<recorded> out;
  for (const auto& r : v)
    if (!r.meaningless()) out.push_back(r);
  return out;
}

}  // namespace ob::proxy::sse::test
