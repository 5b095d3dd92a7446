// Planning the include_usage edits from the facts the model finder noted.
#include "proxy/json/usage.hpp"

namespace ob::proxy::json {
namespace {

using kind = stream_facts::kind;

constexpr std::string_view options_member = R"("stream_options":{"include_usage":true},)";
constexpr std::string_view options_object = R"({"include_usage":true})";
constexpr std::string_view usage_member_alone = R"("include_usage":true)";
constexpr std::string_view usage_member_first = R"("include_usage":true,)";
constexpr std::string_view true_token = "true";

usage_plan one_edit(std::size_t offset, std::size_t length, std::string_view replacement) {
  usage_plan p;
  p.decision = usage_decision::inject;
  p.edit_count = 1;
  p.edits[0] = edit{offset, length, replacement};
  return p;
}

usage_plan decided(usage_decision d) {
  usage_plan p;
  p.decision = d;
  return p;
}

// Offset just after the root '{', or npos when the body does not start (after blanks) with one.
std::size_t after_root_brace(std::string_view body) {
  std::size_t i = body.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos || body[i] != '{') return std::string_view::npos;
  return i + 1;
}

usage_plan plan_in_options(const stream_facts& s) {
  switch (s.include_usage) {
    case kind::true_:
      return decided(usage_decision::client_asked);
    case kind::false_:
    case kind::null:
      return one_edit(s.include_usage_value.begin,
                      s.include_usage_value.end - s.include_usage_value.begin, true_token);
    case kind::absent:
      return one_edit(s.options_value.begin + 1, 0,
                      s.options_empty ? usage_member_alone : usage_member_first);
    default:
      return decided(usage_decision::left_alone);
  }
}

}  // namespace

bool injects_usage(std::string_view path) {
  return path == "/v1/chat/completions" || path == "/v1/completions";
}

const char* to_string(usage_decision d) {
  switch (d) {
    case usage_decision::not_streaming:
      return "not_streaming";
    case usage_decision::client_asked:
      return "client_asked";
    case usage_decision::inject:
      return "inject";
    case usage_decision::left_alone:
      return "left_alone";
  }
  return "unknown";
}

usage_plan plan_usage_injection(std::string_view body, const request_model& found) {
  const stream_facts& s = found.stream;
  if (found.status != find_status::ok || s.stream != kind::true_)
    return decided(usage_decision::not_streaming);
  switch (s.options) {
    case kind::absent: {
      const std::size_t at = after_root_brace(body);
      if (at == std::string_view::npos) return decided(usage_decision::left_alone);
      return one_edit(at, 0, options_member);
    }
    case kind::object:
      return plan_in_options(s);
    case kind::duplicate:
      return decided(usage_decision::left_alone);
    default:  // null, a boolean, a string, a number, an array: not what the API takes
      if (s.options_value.end <= s.options_value.begin) return decided(usage_decision::left_alone);
      return one_edit(s.options_value.begin, s.options_value.end - s.options_value.begin,
                      options_object);
  }
}

int merge_edits(const usage_plan& plan, span model, std::string_view model_literal,
                edit out[usage_plan::max_edits + 1]) {
  int n = 0;
  bool model_placed = false;
  for (int i = 0; i < plan.edit_count; ++i) {
    if (!model_placed && model.begin < plan.edits[i].offset) {
      out[n++] = edit{model.begin, model.end - model.begin, model_literal};
      model_placed = true;
    }
    out[n++] = plan.edits[i];
  }
  if (!model_placed) out[n++] = edit{model.begin, model.end - model.begin, model_literal};
  // The spans never overlap, and no insertion lands where the model token starts or ends (an
  // insertion follows a '{'; the model token follows a ':' and precedes a ',' or '}').
  return n;
}

std::size_t edited_size(std::string_view body, const edit* edits, int count) {
  std::size_t size = body.size();
  for (int i = 0; i < count; ++i) size = size - edits[i].length + edits[i].replacement.size();
  return size;
}

void append_edited(std::string& out, std::string_view body, const edit* edits, int count) {
  out.reserve(out.size() + edited_size(body, edits, count));
  for_each_piece(body, edits, count, [&](std::string_view piece) { out.append(piece); });
}

}  // namespace ob::proxy::json
