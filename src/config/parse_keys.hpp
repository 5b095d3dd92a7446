// The "keys" extension and providers' "limits"/"price" (parse_keys.cpp). Not part of the
// module's interface.
#pragma once

#include <boost/json/value.hpp>

#include "config/parse_detail.hpp"

namespace ob::config::detail {

void read_keys(context& c, const boost::json::value& v, const std::string& path, config& cfg);
void read_provider_limits(context& c, const boost::json::value& v, const std::string& path,
                          provider& p);
void read_provider_price(context& c, const boost::json::value& v, const std::string& path,
                         provider& p);
// After the whole file: `security` entries become unlimited keys (first), names are unique,
// groups exist, a USD budget has prices for every provider it may use.
void finish_keys(context& c, config& cfg);

// "2027-01-31T00:00:00Z" (fraction and +00:00 allowed) -> Unix epoch milliseconds.
std::optional<std::int64_t> parse_rfc3339_utc(std::string_view s);

}  // namespace ob::config::detail
