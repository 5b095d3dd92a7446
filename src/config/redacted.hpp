// The effective config as JSON for the admin API (/admin/v1/config): every value the gateway
// runs with, defaults included, and no secret. Provider keys, client tokens and the admin token
// are replaced by "[redacted]" (an empty key stays "", so a missing key is still visible).
#pragma once

#include <string>

#include "config/schema.hpp"

namespace ob::config {

std::string redacted_json(const config& cfg);

}  // namespace ob::config
