// Usage injection plans: a table of request shapes, then a randomized check of the invariants
// (the edited body is valid JSON, equal to the original plus include_usage:true, and only the
// edited bytes changed), alone and merged with the model splice.
#include "proxy/json/usage.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace ob::proxy::json {
namespace {

struct plan_case {
  const char* name;
  std::string body;
  usage_decision decision;
  std::string expected;  // the edited body (for inject), else unused
};

std::string edited(const std::string& body, const usage_plan& p) {
  std::string out;
  append_edited(out, body, p.edits, p.edit_count);
  return out;
}

usage_plan plan_of(model_finder& f, const std::string& body) {
  request_model r = f.find_request_model(body, body.size());
  return plan_usage_injection(body, r);
}

const std::vector<plan_case> plan_cases = {
    {"no stream_options", R"({"model":"m","stream":true})", usage_decision::inject,
     R"({"stream_options":{"include_usage":true},"model":"m","stream":true})"},
    {"blanks before the root", " \n\t{ \"stream\" : true , \"model\":\"m\"}",
     usage_decision::inject,
     " \n\t{\"stream_options\":{\"include_usage\":true}, \"stream\" : true , \"model\":\"m\"}"},
    {"stream_options null", R"({"model":"m","stream":true,"stream_options":null})",
     usage_decision::inject,
     R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})"},
    {"stream_options null, blanks",
     "{\"model\":\"m\",\"stream\":true,\"stream_options\" : null \n}", usage_decision::inject,
     "{\"model\":\"m\",\"stream\":true,\"stream_options\" : {\"include_usage\":true} \n}"},
    {"stream_options a string", R"({"model":"m","stream":true,"stream_options":"x"})",
     usage_decision::inject,
     R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})"},
    {"stream_options a number", R"({"stream_options":-1.5e3,"model":"m","stream":true})",
     usage_decision::inject,
     R"({"stream_options":{"include_usage":true},"model":"m","stream":true})"},
    {"stream_options false", R"({"stream_options":false,"model":"m","stream":true})",
     usage_decision::inject,
     R"({"stream_options":{"include_usage":true},"model":"m","stream":true})"},
    {"stream_options an array", R"({"stream_options":[1, {"a":[]} ] ,"model":"m","stream":true})",
     usage_decision::inject,
     R"({"stream_options":{"include_usage":true} ,"model":"m","stream":true})"},
    {"stream_options empty", R"({"model":"m","stream":true,"stream_options":{}})",
     usage_decision::inject,
     R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})"},
    {"stream_options empty with blanks",
     "{\"model\":\"m\",\"stream\":true,\"stream_options\":{ \n }}", usage_decision::inject,
     "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true \n }}"},
    {"stream_options other members",
     R"({"model":"m","stream":true,"stream_options":{"x":1,"include_obfuscation":false}})",
     usage_decision::inject,
     R"({"model":"m","stream":true,"stream_options":{"include_usage":true,"x":1,"include_obfuscation":false}})"},
    {"include_usage false",
     R"({"model":"m","stream":true,"stream_options":{"include_usage":false}})",
     usage_decision::inject,
     R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})"},
    {"include_usage null, blanks",
     "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"a\":1, \"include_usage\" :\tnull }}",
     usage_decision::inject,
     "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"a\":1, \"include_usage\" :\ttrue }}"},
    {"escaped keys count",
     R"({"model":"m","str\u0065am":true,"stream_options":{"include_\u0075sage":false}})",
     usage_decision::inject,
     R"({"model":"m","str\u0065am":true,"stream_options":{"include_\u0075sage":true}})"},
    {"include_usage true", R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})",
     usage_decision::client_asked, ""},
    {"include_usage a string",
     R"({"model":"m","stream":true,"stream_options":{"include_usage":"true"}})",
     usage_decision::left_alone, ""},
    {"include_usage duplicated",
     R"({"model":"m","stream":true,"stream_options":{"include_usage":false,"include_usage":true}})",
     usage_decision::left_alone, ""},
    {"stream_options duplicated",
     R"({"model":"m","stream":true,"stream_options":{},"stream_options":{"include_usage":false}})",
     usage_decision::left_alone, ""},
    {"stream absent", R"({"model":"m"})", usage_decision::not_streaming, ""},
    {"stream false", R"({"model":"m","stream":false})", usage_decision::not_streaming, ""},
    {"stream null", R"({"model":"m","stream":null})", usage_decision::not_streaming, ""},
    {"stream a string", R"({"model":"m","stream":"true"})", usage_decision::not_streaming, ""},
    {"stream 1", R"({"model":"m","stream":1})", usage_decision::not_streaming, ""},
    {"stream duplicated", R"({"model":"m","stream":true,"stream":true})",
     usage_decision::not_streaming, ""},
    {"stream nested only", R"({"model":"m","x":{"stream":true}})", usage_decision::not_streaming,
     ""},
    {"model missing", R"({"stream":true})", usage_decision::not_streaming, ""},
    {"not json", R"({"stream":true,"model":"m")", usage_decision::not_streaming, ""},
};

TEST(usage_plan, Table) {
  model_finder f;
  for (const auto& c : plan_cases) {
    SCOPED_TRACE(c.name);
    const usage_plan p = plan_of(f, c.body);
    EXPECT_EQ(p.decision, c.decision) << to_string(p.decision);
    EXPECT_EQ(p.strip_usage_chunk(), c.decision == usage_decision::inject);
    EXPECT_EQ(p.client_asked_usage(), c.decision == usage_decision::client_asked);
    if (c.decision == usage_decision::inject) {
      EXPECT_EQ(p.edit_count, 1);
      EXPECT_EQ(edited(c.body, p), c.expected);
      // And the edited body asks for usage: planning again says the client asked.
      EXPECT_EQ(plan_of(f, c.expected).decision, usage_decision::client_asked);
    } else {
      EXPECT_EQ(p.edit_count, 0);
    }
  }
}

TEST(usage_plan, FinderStillFindsTheModel) {
  model_finder f;
  const std::string body =
      R"({"stream":true,"stream_options":{"include_usage":false},"model":"x"})";
  request_model r = f.find_request_model(body, body.size());
  ASSERT_EQ(r.status, find_status::ok);
  EXPECT_EQ(r.name, "x");
  EXPECT_EQ(r.stream.stream, stream_facts::kind::true_);
  EXPECT_EQ(r.stream.options, stream_facts::kind::object);
  EXPECT_EQ(r.stream.include_usage, stream_facts::kind::false_);
  // A body broken inside stream_options is still invalid, as before.
  const std::string broken =
      R"({"stream":true,"stream_options":{"include_usage":fals},"model":"x"})";
  EXPECT_EQ(f.find_request_model(broken, broken.size()).status, find_status::invalid_json);
}

TEST(usage_plan, Endpoints) {
  EXPECT_TRUE(injects_usage("/v1/chat/completions"));
  EXPECT_TRUE(injects_usage("/v1/completions"));
  EXPECT_FALSE(injects_usage("/v1/responses"));
  EXPECT_FALSE(injects_usage("/v1/embeddings"));
  EXPECT_FALSE(injects_usage("/v1/chat/completions/x"));
}

TEST(usage_plan, MergedWithTheModelSplice) {
  model_finder f;
  for (const auto& c : plan_cases) {
    if (c.decision != usage_decision::inject) continue;
    SCOPED_TRACE(c.name);
    request_model r = f.find_request_model(c.body, c.body.size());
    const usage_plan p = plan_usage_injection(c.body, r);
    edit all[usage_plan::max_edits + 1];
    const int n = merge_edits(p, r.value, R"("real-model")", all);
    ASSERT_EQ(n, 2);
    EXPECT_LE(all[0].offset + all[0].length, all[1].offset);
    std::string out;
    append_edited(out, c.body, all, n);
    EXPECT_EQ(out.size(), edited_size(c.body, all, n));
    request_model again = f.find_request_model(out, out.size());
    ASSERT_EQ(again.status, find_status::ok) << out;
    EXPECT_EQ(again.name, "real-model");
    EXPECT_EQ(plan_usage_injection(out, again).decision, usage_decision::client_asked);
    std::string pieces;
    int calls = 0;
    for_each_piece(c.body, all, n, [&](std::string_view s) {
      EXPECT_FALSE(s.empty());
      pieces.append(s);
      ++calls;
    });
    EXPECT_EQ(pieces, out);
    EXPECT_LE(calls, 2 * n + 1);
  }
}

// ---- randomized invariants ----

// A small JSON tree, to generate bodies and compare parses.
struct jv {
  enum t { null, boolean, number, string, array, object } type = null;
  bool b = false;
  std::string text;  // number or string
  std::vector<jv> items;
  std::vector<std::pair<std::string, jv>> members;
  bool operator==(const jv& o) const {
    if (type != o.type || b != o.b || text != o.text || items != o.items) return false;
    auto sorted = [](auto m) {
      std::stable_sort(m.begin(), m.end(), [](auto& x, auto& y) { return x.first < y.first; });
      return m;
    };
    return sorted(members) == sorted(o.members);
  }
};

jv from_dom(simdjson::dom::element e) {
  jv v;
  switch (e.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
      break;
    case simdjson::dom::element_type::BOOL:
      v.type = jv::boolean, v.b = bool(e);
      break;
    case simdjson::dom::element_type::STRING:
      v.type = jv::string, v.text = std::string(std::string_view(e));
      break;
    case simdjson::dom::element_type::ARRAY:
      v.type = jv::array;
      for (auto x : simdjson::dom::array(e)) v.items.push_back(from_dom(x));
      break;
    case simdjson::dom::element_type::OBJECT:
      v.type = jv::object;
      for (auto m : simdjson::dom::object(e))
        v.members.emplace_back(std::string(m.key), from_dom(m.value));
      break;
    default:
      v.type = jv::number, v.text = std::to_string(double(e));
  }
  return v;
}

struct gen {
  std::mt19937 rng;
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  std::string blanks() {
    static const char* b[] = {"", "", "", " ", "\n", "\t", " \r\n  "};
    return b[pick(7)];
  }
  std::string str() {
    static const char* s[] = {"\"a\"", "\"stream\"",        "\"\\u0041\\n\"", "\"model\"",
                              "\"\"",  "\"include_usage\"", "\"é\""};
    return s[pick(7)];
  }
  std::string scalar() {
    static const char* s[] = {"null", "true", "false", "0", "-12.5e2", "7"};
    return pick(3) == 0 ? str() : s[pick(6)];
  }
  std::string value(int depth) {
    const int k = depth > 2 ? 0 : pick(4);
    if (k <= 1) return scalar();
    std::string out = k == 2 ? "[" : "{";
    const int n = pick(4);
    for (int i = 0; i < n; ++i) {
      if (i) out += "," + blanks();
      if (k == 3) out += str() + blanks() + ":" + blanks();
      out += value(depth + 1);
    }
    return out + blanks() + (k == 2 ? "]" : "}");
  }
  std::string options() {
    switch (pick(7)) {
      case 0:
        return "null";
      case 1:
        return value(1);
      default: {
        std::vector<std::string> members;
        const int n = pick(3);
        for (int i = 0; i < n; ++i) members.push_back("\"x" + std::to_string(i) + "\":" + value(2));
        static const char* iu[] = {"false", "null", "true"};
        if (pick(2))
          members.insert(members.begin() + pick(n + 1),
                         "\"include_usage\"" + blanks() + ":" + blanks() + iu[pick(3)]);
        std::string out = "{" + blanks();
        for (std::size_t i = 0; i < members.size(); ++i) out += (i ? "," : "") + members[i];
        return out + blanks() + "}";
      }
    }
  }
  // A request with a model, usually streaming, with or without stream_options, keys shuffled.
  std::string body() {
    std::vector<std::string> members = {"\"model\":\"gpt-4o\"",
                                        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"};
    static const char* streams[] = {"true", "true", "true", "false", "null", "\"yes\""};
    if (pick(8))
      members.push_back(std::string("\"stream\"") + blanks() + ":" + blanks() + streams[pick(6)]);
    if (pick(3)) members.push_back("\"stream_options\"" + blanks() + ":" + blanks() + options());
    const int extra = pick(4);
    for (int i = 0; i < extra; ++i) members.push_back("\"k" + std::to_string(i) + "\":" + value(0));
    std::shuffle(members.begin(), members.end(), rng);
    std::string out = blanks() + "{" + blanks();
    for (std::size_t i = 0; i < members.size(); ++i) out += (i ? "," + blanks() : "") + members[i];
    return out + blanks() + "}" + blanks();
  }
};

jv* member(jv& obj, std::string_view key) {
  for (auto& m : obj.members)
    if (m.first == key) return &m.second;
  return nullptr;
}

// The original's parse plus stream_options.include_usage = true.
jv with_usage(jv v) {
  jv t;
  t.type = jv::boolean, t.b = true;
  jv* opts = member(v, "stream_options");
  if (!opts) {
    jv o;
    o.type = jv::object;
    o.members.emplace_back("include_usage", t);
    v.members.emplace_back("stream_options", o);
  } else if (opts->type != jv::object) {
    *opts = jv{};
    opts->type = jv::object;
    opts->members.emplace_back("include_usage", t);
  } else if (jv* iu = member(*opts, "include_usage")) {
    *iu = t;
  } else {
    opts->members.emplace_back("include_usage", t);
  }
  return v;
}

TEST(usage_plan, RandomBodiesKeepTheirMeaning) {
  gen g{std::mt19937(20240611)};
  model_finder f;
  simdjson::dom::parser dom;
  int injected = 0, asked = 0, plain = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string body = g.body();
    SCOPED_TRACE(body);
    request_model r = f.find_request_model(body, body.size());
    ASSERT_EQ(r.status, find_status::ok);
    const usage_plan p = plan_usage_injection(body, r);
    const jv before = from_dom(dom.parse(body));
    const jv* stream = member(const_cast<jv&>(before), "stream");
    const bool streams = stream && stream->type == jv::boolean && stream->b;
    if (!streams) {
      EXPECT_EQ(p.decision, usage_decision::not_streaming);
      ++plain;
      continue;
    }
    const jv* opts = member(const_cast<jv&>(before), "stream_options");
    const jv* iu = opts && opts->type == jv::object
                       ? member(const_cast<jv&>(*opts), "include_usage")
                       : nullptr;
    const auto iu_count = opts && opts->type == jv::object
                              ? std::count_if(opts->members.begin(), opts->members.end(),
                                              [](auto& m) { return m.first == "include_usage"; })
                              : 0;
    if (iu_count > 1 || (iu && iu->type != jv::boolean && iu->type != jv::null)) {
      EXPECT_EQ(p.decision, usage_decision::left_alone);
      continue;
    }
    if (iu && iu->type == jv::boolean && iu->b) {
      EXPECT_EQ(p.decision, usage_decision::client_asked);
      ++asked;
      continue;
    }
    ASSERT_EQ(p.decision, usage_decision::inject) << to_string(p.decision);
    ++injected;
    // Only the edited bytes changed: an insertion, an include_usage false/null, or the whole
    // stream_options value.
    ASSERT_EQ(p.edit_count, 1);
    const edit& e = p.edits[0];
    const std::string_view replaced = std::string_view(body).substr(e.offset, e.length);
    if (e.length > 0 && replaced != "false" && replaced != "null") {
      ASSERT_TRUE(opts != nullptr && opts->type != jv::object);
      const jv old = from_dom(dom.parse(std::string(replaced)));
      EXPECT_EQ(old, *opts);
    }
    const std::string out = edited(body, p);
    EXPECT_EQ(out.substr(0, e.offset), body.substr(0, e.offset));
    EXPECT_EQ(out.substr(e.offset + e.replacement.size()), body.substr(e.offset + e.length));
    simdjson::dom::element parsed;
    ASSERT_EQ(dom.parse(out).get(parsed), simdjson::SUCCESS) << out;
    EXPECT_TRUE(from_dom(parsed) == with_usage(before)) << out;
    // Merged with the model splice: still valid, both changes present.
    edit all[usage_plan::max_edits + 1];
    const int n = merge_edits(p, r.value, R"("other")", all);
    std::string both;
    append_edited(both, body, all, n);
    ASSERT_EQ(dom.parse(both).get(parsed), simdjson::SUCCESS) << both;
    jv expected = with_usage(before);
    member(expected, "model")->text = "other";
    EXPECT_TRUE(from_dom(parsed) == expected) << both;
  }
  EXPECT_GT(injected, 5000);
  EXPECT_GT(asked, 500);
  EXPECT_GT(plain, 1000);
}

}  // namespace
}  // namespace ob::proxy::json
