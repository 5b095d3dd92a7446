#include "server/admin_usage.hpp"

#include "proxy/json/model.hpp"

namespace ob::server {
namespace {

std::string bad(std::string_view message, std::string_view param) {
  std::string out = R"({"error":{"message":)";
  proxy::json::append_json_string(out, message);
  out += R"(,"type":"invalid_request_error","param":)";
  proxy::json::append_json_string(out, param);
  out += R"(,"code":"invalid_parameter"}})";
  return out;
}

void append_u(std::string& out, std::uint64_t v) {
  out += std::to_string(v);
}

}  // namespace

std::pair<int, std::string> usage_answer(state::ledger& l, std::string_view query,
                                         state::epoch_ms now) {
  state::usage_query q;
  q.now = now;
  std::string_view period_name = "day";
  bool by_seen = false;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    if (name == "period") {
      if (value == "day")
        q.period = state::ledger_period::day;
      else if (value == "week")
        q.period = state::ledger_period::week;
      else if (value == "month")
        q.period = state::ledger_period::month;
      else
        return {400, bad("period must be day, week or month.", "period")};
      period_name = value;
    } else if (name == "by") {
      by_seen = true;
      q.by_key = q.by_group = q.by_target = false;
      // Comma-separated; "%2C" is a comma too.
      std::string list(value);
      for (std::size_t p; (p = list.find("%2C")) != std::string::npos ||
                          (p = list.find("%2c")) != std::string::npos;)
        list.replace(p, 3, ",");
      std::string_view rest = list;
      while (true) {
        auto c = rest.find(',');
        std::string_view dim = rest.substr(0, c);
        if (dim == "key")
          q.by_key = true;
        else if (dim == "group")
          q.by_group = true;
        else if (dim == "target")
          q.by_target = true;
        else
          return {400, bad("by is a comma-separated list of key, group, target.", "by")};
        if (c == std::string_view::npos) break;
        rest = rest.substr(c + 1);
      }
    } else if (!name.empty()) {
      return {400, bad("Unknown parameter; use by and period.", name)};
    }
  }
  if (!by_seen) q.by_key = true;
  std::string err;
  auto rows = l.query(q, &err);
  if (!err.empty()) return {500, bad("The ledger could not be read: " + err, "")};
  auto [start, end] = state::period_bounds(q.period, now);
  std::string out = R"({"period":")";
  out += period_name;
  out += R"(","start":")" + state::utc_date(start) + R"(","end":")" + state::utc_date(end) +
         R"(","by":[)";
  bool first = true;
  for (auto [on, name] :
       {std::pair{q.by_key, "key"}, {q.by_group, "group"}, {q.by_target, "target"}})
    if (on) {
      out += first ? "\"" : ",\"";
      out += name;
      out += '"';
      first = false;
    }
  out += R"(],"rows":[)";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    out += i ? ",{" : "{";
    if (q.by_key) out += R"("key":)", proxy::json::append_json_string(out, r.key), out += ',';
    if (q.by_group) out += R"("group":)", proxy::json::append_json_string(out, r.group), out += ',';
    if (q.by_target)
      out += R"("target":)", proxy::json::append_json_string(out, r.target), out += ',';
    out += R"("requests":)";
    append_u(out, r.requests);
    out += R"(,"input_tokens":)";
    append_u(out, r.input_tokens);
    out += R"(,"output_tokens":)";
    append_u(out, r.output_tokens);
    out += R"(,"usd_micros":)";
    append_u(out, r.usd_micros);
    out += '}';
  }
  out += "]}";
  return {200, std::move(out)};
}

}  // namespace ob::server
