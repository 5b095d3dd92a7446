#include "proxy/http/endpoints.hpp"

namespace ob::proxy::http {

namespace {

// `rest` starts with family `f` followed by its end or '/'. A plain loop: every routed request
// passes here, and a memcmp call per family costs more than the compare itself.
bool is_family(std::string_view rest, std::string_view f) {
  if (rest.size() < f.size()) return false;
  for (std::size_t i = 0; i < f.size(); ++i)
    if (rest[i] != f[i]) return false;
  return rest.size() == f.size() || rest[f.size()] == '/';
}

}  // namespace

std::string_view unroutable_family(std::string_view path) {
  if (path.size() <= 4 || path[0] != '/' || path[1] != 'v' || path[2] != '1' || path[3] != '/')
    return {};
  auto rest = path.substr(4);
  // By first letter, so a routed path (chat/completions, embeddings, ...) costs a compare or two.
  auto one = [&](std::string_view f) { return is_family(rest, f) ? f : std::string_view(); };
  switch (rest[0]) {
    case 'a':
      return one("assistants");
    case 'b':
      return one("batches");
    case 'c':
      if (rest.size() < 3 || rest[1] != 'o' || rest[2] != 'n') {  // chat, completions
        // A stored chat completion (GET, POST or DELETE /v1/chat/completions/<id>[/messages]).
        constexpr std::string_view stored = "chat/completions/";
        return rest.size() > stored.size() && rest.starts_with(stored) ? "chat completions"
                                                                       : std::string_view();
      }
      return is_family(rest, "conversations") ? "conversations" : one("containers");
    case 'e':
      return one("evals");
    case 'f':
      return is_family(rest, "files") ? "files" : one("fine_tuning");
    case 'o':
      return one("organization");
    case 'r':
      // A stored response (GET or DELETE /v1/responses/<id>, its input_items, its cancel);
      // /v1/responses itself is routed, and so are the requests under it that carry a model
      // and store nothing (compact, input_tokens).
      if (constexpr std::string_view stored = "responses/";
          rest.size() > stored.size() && rest.starts_with(stored)) {
        auto sub = rest.substr(stored.size());
        return is_family(sub, "compact") || is_family(sub, "input_tokens") ? std::string_view()
                                                                           : "responses";
      }
      return one("realtime");
    case 't':
      return one("threads");
    case 'u':
      return one("uploads");
    case 'v':
      return one("vector_stores");
  }
  return {};
}

bool counts_tokens_only(std::string_view path) {
  constexpr std::string_view openai = "/v1/responses/input_tokens";
  constexpr std::string_view anthropic = "/v1/messages/count_tokens";
  // Both 26 and 25 bytes long: the length decides for nearly every path.
  return (path.size() == openai.size() && path == openai) ||
         (path.size() == anthropic.size() && path == anthropic);
}

}  // namespace ob::proxy::http
