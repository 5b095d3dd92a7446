#include "dialect/codec.hpp"

namespace ob::dialect {

// Where translation codecs plug in: return the codec object of each translated dialect (a
// function-local static, built once). While a dialect returns nullptr here, config check
// refuses providers using it (config/parse.cpp, read_provider).
const codec* codec_for(api a) {
  switch (a) {
    case api::openai:
    case api::azure:
    case api::anthropic:
      break;
  }
  return nullptr;
}

}  // namespace ob::dialect
