// The "keys" extension (named client keys with limits and budgets), providers' "limits" and
// "price", and the checks across them that need the whole file (parse.cpp calls these).
#include <algorithm>
#include <cmath>
#include <set>

#include "auth/token_check.hpp"
#include "config/civil_date.hpp"
#include "config/parse_keys.hpp"
#include "config/parse_read.hpp"

namespace ob::config::detail {
namespace {

// A key's limits and budget come from the file, its digest from "token" or "token_sha256".
struct key_draft {
  client_key key;
  bool has_token = false, has_digest = false;
};

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

constexpr std::uint64_t max_limit = 1'000'000'000'000ULL;

constexpr field<key_limits> key_limit_fields[] = {
    {"rpm", read_integer<&key_limits::rpm, 0, max_limit>},
    {"rpd", read_integer<&key_limits::rpd, 0, max_limit>},
    {"tpm", read_integer<&key_limits::tpm, 0, max_limit>},
    {"tpd", read_integer<&key_limits::tpd, 0, max_limit>},
    {"concurrency", read_integer<&key_limits::concurrency, 0, max_limit>},
    {"burst", read_integer<&key_limits::burst, 0, max_limit>},
    {"default_output_tokens", read_integer<&key_limits::default_output_tokens, 1, 10'000'000>},
    {"max_wait", read_wait<&key_limits::max_wait>},
};

// USD amounts -> micro-dollars, rounded up (a price of 0.0000001 still costs something).
std::optional<std::uint64_t> as_micro_usd(context& c, const json::value& v,
                                          const std::string& path) {
  auto d = as_number_in(c, v, path, 0, 1e9, "between 0 and 1e9");
  if (!d) return std::nullopt;
  return static_cast<std::uint64_t>(std::ceil(*d * 1e6 - 1e-6));
}

void read_budget(context& c, const json::value& v, const std::string& path, client_key& k) {
  const auto* o = as_object(c, v, path);
  if (!o) return;
  auto& b = k.budget;
  for (const auto& dup : c.duplicates_of(path))
    c.warn(join(path, dup), "key appears more than once; the last value wins");
  for (const auto& kv : *o) {
    std::string sub = join(path, kv.key());
    if (kv.key() == "tokens") {
      if (auto n = as_integer(c, kv.value(), sub, 1, max_limit)) {
        b.unit = key_budget::unit_kind::tokens;
        b.amount = *n;
      }
    } else if (kv.key() == "usd") {
      auto m = as_micro_usd(c, kv.value(), sub);
      if (m && *m == 0) c.error(sub, "must be > 0");
      if (m && *m > 0) {
        b.unit = key_budget::unit_kind::usd;
        b.amount = *m;
      }
    } else if (kv.key() == "period") {
      const auto* s = as_string(c, kv.value(), sub);
      if (!s) continue;
      if (*s == "day")
        b.period = key_budget::period_kind::day;
      else if (*s == "week")
        b.period = key_budget::period_kind::week;
      else if (*s == "month")
        b.period = key_budget::period_kind::month;
      else
        c.error(sub, "must be one of \"day\", \"week\", \"month\", got " + json::serialize(*s));
    } else {
      c.warn(sub, "unknown key (ignored)");
    }
  }
  if (o->contains("tokens") && o->contains("usd"))
    c.error(path, "set either \"tokens\" or \"usd\", not both");
  else if (!o->contains("tokens") && !o->contains("usd"))
    c.error(path, "needs \"tokens\" or \"usd\"");
}

void read_token(context& c, const json::value& v, const std::string& path, key_draft& d) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  auto token = expand_env(c, *s, path);
  if (!token) return;
  if (token->empty()) return c.error(path, "must not be empty");
  if (has_control_char(*token) || token->front() == ' ' || token->back() == ' ')
    return c.error(path, "must not start/end with a space or contain control characters");
  d.key.digest = auth::sha256_digest(*token);
  d.has_token = true;
}

void read_token_sha256(context& c, const json::value& v, const std::string& path, key_draft& d) {
  const auto* s = as_string(c, v, path);
  if (!s) return;
  bool ok = s->size() == 64;
  for (std::size_t i = 0; ok && i < 32; ++i) {
    int hi = hex_value((*s)[2 * i]), lo = hex_value((*s)[2 * i + 1]);
    ok = hi >= 0 && lo >= 0;
    if (ok) d.key.digest[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  // The value is a secret's digest: never echoed back.
  if (!ok) return c.error(path, "must be 64 hexadecimal digits (a SHA-256 digest)");
  d.has_digest = true;
}

void read_groups_list(context& c, const json::value& v, const std::string& path, key_draft& d) {
  const auto* a = v.if_array();
  if (!a) return type_error(c, path, "an array of group names", v);
  d.key.all_groups = false;
  for (std::size_t i = 0; i < a->size(); ++i) {
    std::string name;
    read_required_text(c, (*a)[i], index_path(path, i), name);
    if (!name.empty()) d.key.groups.push_back(std::move(name));
  }
}

void read_labels(context& c, const json::value& v, const std::string& path, key_draft& d) {
  const auto* o = as_object(c, v, path);
  if (!o) return;
  for (const auto& kv : *o) {
    std::string sub = join(path, kv.key());
    std::string value;
    const auto* s = as_string(c, kv.value(), sub);
    if (!s) continue;
    if (has_control_char(*s)) {
      c.error(sub, "must not contain control characters");
      continue;
    }
    d.key.labels[std::string(kv.key())] = std::string(*s);
  }
}

constexpr field<key_draft> key_fields[] = {
    {"name",
     [](context& c, const json::value& v, const std::string& path, key_draft& d) {
       read_required_text(c, v, path, d.key.name);
       if (d.key.name.size() > 128) c.error(path, "must be at most 128 characters");
     }},
    {"token", read_token},
    {"token_sha256", read_token_sha256},
    {"groups", read_groups_list},
    {"limits",
     [](context& c, const json::value& v, const std::string& path, key_draft& d) {
       if (const auto* o = as_object(c, v, path))
         walk<key_limits>(c, *o, path, key_limit_fields, d.key.limits);
     }},
    {"budget", [](context& c, const json::value& v, const std::string& path,
                  key_draft& d) { read_budget(c, v, path, d.key); }},
    {"expires",
     [](context& c, const json::value& v, const std::string& path, key_draft& d) {
       const auto* s = as_string(c, v, path);
       if (!s) return;
       auto ms = parse_rfc3339_utc(*s);
       if (!ms)
         return c.error(path, "must be an RFC 3339 UTC time like \"2027-01-31T00:00:00Z\", got " +
                                  json::serialize(*s));
       d.key.expires_ms = *ms;
     }},
    {"disabled",
     [](context& c, const json::value& v, const std::string& path, key_draft& d) {
       if (!v.is_bool()) return type_error(c, path, "a boolean", v);
       d.key.disabled = v.get_bool();
     }},
    {"labels", read_labels},
};

std::optional<client_key> read_key_entry(context& c, const json::value& v,
                                         const std::string& path) {
  const auto* o = as_object(c, v, path);
  if (!o) return std::nullopt;
  key_draft d;
  walk<key_draft>(c, *o, path, key_fields, d);
  if (!o->contains("name")) c.error(join(path, "name"), "is required");
  if (o->contains("token") && o->contains("token_sha256"))
    c.error(path, "set either \"token\" or \"token_sha256\", not both");
  else if (!o->contains("token") && !o->contains("token_sha256"))
    c.error(join(path, "token"), "is required (or token_sha256)");
  return std::move(d.key);
}

constexpr field<provider_limits> provider_limit_fields[] = {
    {"rpm", read_integer<&provider_limits::rpm, 0, max_limit>},
    {"tpm", read_integer<&provider_limits::tpm, 0, max_limit>},
    {"concurrency", read_integer<&provider_limits::concurrency, 0, max_limit>},
};

template <std::uint64_t provider_price::*member>
void read_price_field(context& c, const json::value& v, const std::string& path,
                      provider_price& p) {
  if (auto m = as_micro_usd(c, v, path)) p.*member = *m;
}

constexpr field<provider_price> price_fields[] = {
    {"input", read_price_field<&provider_price::input>},
    {"output", read_price_field<&provider_price::output>},
};

}  // namespace

std::optional<std::int64_t> parse_rfc3339_utc(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z (or +00:00); 't'/'z' and a space separator accepted (RFC 3339).
  auto digits = [&](std::size_t pos, std::size_t n) -> std::optional<int> {
    if (pos + n > s.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':') return {};
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return {};
  auto y = digits(0, 4), mo = digits(5, 2), d = digits(8, 2), h = digits(11, 2), mi = digits(14, 2),
       se = digits(17, 2);
  if (!y || !mo || !d || !h || !mi || !se) return {};
  if (*mo < 1 || *mo > 12 || *d < 1 || *h > 23 || *mi > 59 || *se > 59) return {};
  if (*d > static_cast<int>(civil::days_in_month(*y, static_cast<unsigned>(*mo)))) return {};
  std::size_t pos = 19;
  int ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    int scale = 100;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      ms += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return {};
  }
  auto zone = s.substr(pos);
  if (zone != "Z" && zone != "z" && zone != "+00:00" && zone != "-00:00") return {};
  std::int64_t days =
      civil::days_from_civil(*y, static_cast<unsigned>(*mo), static_cast<unsigned>(*d));
  return ((days * 24 + *h) * 60 + *mi) * 60'000LL + *se * 1000LL + ms;
}

void read_keys(context& c, const json::value& v, const std::string& path, config& cfg) {
  const auto* a = v.if_array();
  if (!a) return type_error(c, path, "an array of key objects", v);
  for (std::size_t i = 0; i < a->size(); ++i)
    if (auto k = read_key_entry(c, (*a)[i], index_path(path, i))) cfg.keys.push_back(std::move(*k));
  // keys[i] is cfg.keys[i] only while no entry failed; paths are only needed when all parsed.
}

void read_provider_limits(context& c, const json::value& v, const std::string& path, provider& p) {
  if (const auto* o = as_object(c, v, path))
    walk<provider_limits>(c, *o, path, provider_limit_fields, p.limits);
}

void read_provider_price(context& c, const json::value& v, const std::string& path, provider& p) {
  const auto* o = as_object(c, v, path);
  if (!o) return;
  provider_price price;
  walk<provider_price>(c, *o, path, price_fields, price);
  for (const char* k : {"input", "output"})
    if (!o->contains(k)) c.error(join(path, k), "is required");
  p.price = price;
}

void finish_keys(context& c, config& cfg) {
  // The old `security` entries become unlimited keys named after their digest, first.
  std::vector<client_key> all;
  all.reserve(cfg.security.size() + cfg.keys.size());
  // Names are the keys' identity in logs, metrics and /admin/v1/keys: a keys[] entry named
  // like a security entry's automatic name would merge two keys there. By name: a keys[] index,
  // or `automatic` + a security index.
  std::map<std::string, std::size_t, std::less<>> seen;
  const std::size_t automatic = cfg.keys.size();
  for (std::size_t s = 0; s < cfg.security.size(); ++s) {
    const auto& token = cfg.security[s];
    if (token.empty()) continue;
    client_key k;
    k.digest = auth::sha256_digest(token);
    k.name = auth::digest_name(k.digest);
    k.from_security = true;
    seen.emplace(k.name, automatic + s);
    all.push_back(std::move(k));
  }
  std::set<std::string, std::less<>> group_names;
  for (const auto& p : cfg.providers) group_names.insert(p.group);
  for (std::size_t i = 0; i < cfg.keys.size(); ++i) {
    auto& k = cfg.keys[i];
    std::string path = index_path("keys", i);
    if (k.name.empty()) continue;  // already an error
    auto [it, added] = seen.emplace(k.name, i);
    if (!added && it->second >= automatic)
      c.error(join(path, "name"), json::serialize(json::string(k.name)) +
                                      " is the name the security entry [" +
                                      std::to_string(it->second - automatic) +
                                      "] gets (\"key-\" and its digest); choose another");
    else if (!added)
      c.error(join(path, "name"), json::serialize(json::string(k.name)) +
                                      " is already the name of keys[" + std::to_string(it->second) +
                                      "]");
    for (std::size_t g = 0; g < k.groups.size(); ++g)
      if (!cfg.providers.empty() && !group_names.count(k.groups[g]))
        c.error(index_path(join(path, "groups"), g),
                "unknown group " + json::serialize(json::string(k.groups[g])) +
                    " (no provider has it)");
    if (k.budget.unit == key_budget::unit_kind::usd) {
      for (std::size_t p = 0; p < cfg.providers.size(); ++p) {
        const auto& pr = cfg.providers[p];
        bool usable =
            k.all_groups || std::find(k.groups.begin(), k.groups.end(), pr.group) != k.groups.end();
        if (usable && !pr.price)
          c.error(join(path, "budget.usd"), "needs a price for every provider the key may use; " +
                                                index_path("providers", p) + ".price is not set");
      }
    }
  }
  for (auto& k : cfg.keys) all.push_back(std::move(k));
  cfg.keys = std::move(all);
  // A digest twice would let one token match two keys; the last one would silently win.
  for (std::size_t i = 0; i < cfg.keys.size(); ++i)
    for (std::size_t j = i + 1; j < cfg.keys.size(); ++j)
      if (cfg.keys[i].digest == cfg.keys[j].digest && !cfg.keys[j].from_security)
        c.error("keys", "keys \"" + cfg.keys[i].name + "\" and \"" + cfg.keys[j].name +
                            "\" have the same token");
}

}  // namespace ob::config::detail
