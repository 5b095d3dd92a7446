// Answer inspection + splice (src/proxy/json/model.*: inspect_answer, append_spliced), as the
// gateway rewrites a JSON answer body or one SSE event's data.
// Invariants: a document Boost.JSON accepts as an object is inspected as one; the spans are
// ascending, disjoint string tokens, at most max_models; the splice replaces exactly those
// tokens; for a valid document, the result is valid JSON in which the top-level "model" and
// "response"."model" strings (and nothing else) became the literal, and the usage read agrees.
#include <algorithm>
#include <boost/json.hpp>
#include <memory>
#include <string>

#include "fuzz/split.hpp"
#include "proxy/json/model.hpp"

namespace {

using namespace ob::proxy::json;

std::unique_ptr<boost::json::value> reference_parse(std::string_view doc) {
  boost::system::error_code ec;
  boost::json::parse_options opt;
  opt.max_depth = 1024;
  auto v = boost::json::parse(doc, ec, {}, opt);
  if (ec) return nullptr;
  return std::make_unique<boost::json::value>(std::move(v));
}

int string_models(const boost::json::object& o) {
  int n = 0;
  for (const auto& kv : o) n += kv.key() == "model" && kv.value().is_string();
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static model_finder finder;
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  const answer_info info = finder.inspect_answer(doc, doc.size());
  auto ref = reference_parse(doc);
  if (ref) OB_FUZZ_CHECK(info.is_object == ref->is_object());
  if (!info.is_object) {
    OB_FUZZ_CHECK(info.model_count == 0);
    return 0;
  }
  OB_FUZZ_CHECK(info.model_count >= 0 && info.model_count <= answer_info::max_models);
  for (int i = 0; i < info.model_count; ++i) {
    const span& s = info.models[i];
    OB_FUZZ_CHECK(ob::fuzz::string_token_end(doc, s.begin) == s.end);
    if (i > 0) OB_FUZZ_CHECK(info.models[i - 1].end <= s.begin);
  }
  const std::string literal = ob::fuzz::unused_literal(doc);
  std::string out;
  append_spliced(out, doc, info.models, info.model_count, literal);
  int replaced = 0;
  OB_FUZZ_CHECK(ob::fuzz::only_strings_replaced(doc, out, literal, replaced));
  OB_FUZZ_CHECK(replaced == info.model_count);
  if (!ref) return 0;

  const auto& obj = ref->as_object();
  int expected = string_models(obj);
  const auto* resp = obj.if_contains("response");
  if (resp && resp->is_object()) expected += string_models(resp->as_object());
  // Boost.JSON keeps only the last of duplicated keys, so it may see fewer.
  OB_FUZZ_CHECK(info.model_count >= std::min(expected, answer_info::max_models));

  auto after = reference_parse(out);
  OB_FUZZ_CHECK(after != nullptr);
  if (info.model_count < answer_info::max_models) {
    // Below the cap every "model" string was replaced, the one Boost.JSON keeps included.
    boost::json::value expect = *ref;
    const boost::json::string group(literal.substr(1, literal.size() - 2));
    auto& eo = expect.as_object();
    if (auto* m = eo.if_contains("model"); m && m->is_string()) *m = group;
    if (auto* r = eo.if_contains("response"); r && r->is_object())
      if (auto* m = r->as_object().if_contains("model"); m && m->is_string()) *m = group;
    OB_FUZZ_CHECK(*after == expect);
  }
  return 0;
}
