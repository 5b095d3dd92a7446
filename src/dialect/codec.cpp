#include "dialect/codec.hpp"

#include "dialect/anthropic/codec.hpp"

namespace ob::dialect {

// Where translation codecs plug in: return the codec object of each translated dialect (a
// function-local static, built once). While a dialect returns nullptr here, config check
// refuses providers using it (config/parse.cpp, read_provider).
const codec* codec_for(api a) {
  switch (a) {
    case api::openai:
    case api::azure:
      break;
    case api::anthropic:
      return anthropic::codec_instance();
  }
  return nullptr;
}

}  // namespace ob::dialect
