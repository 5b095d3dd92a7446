// multipart/form-data requests (audio transcriptions and translations, image edits): routed by
// the `model` form field, replaced in place like a JSON model (the provider's name, unquoted),
// and admitted like a JSON body.
//
// A body that came whole with its head is routed as it is (forward_form). Any other is read
// only until its model part is in (receive_form): then it is routed, and the provider gets
// the head, that prefix with the model replaced, and the rest of the body as the client sends
// it (next(), the exchange's body_source), one piece at a time: memory stays at the prefix
// and one 64 KiB piece whatever the file's size. A form whose model part comes after a file
// is read up to that part first (limits.max_body_bytes bounds it, as for any body).
#include <algorithm>

#include <boost/asio/buffer.hpp>

#include "observe/clock.hpp"
#include "proxy/http/errors.hpp"
#include "proxy/http/request_check.hpp"
#include "server/client_connection.hpp"

namespace ob::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
using proxy::body_status;
using proxy::http::error_kind;
using proxy::http::form_status;
using upstream::use_tuple;

namespace {

// A form's body is read in pieces of this size: the prefix's reads, and each piece relayed.
constexpr std::size_t form_read_chunk = 64 * 1024;
// A prefix past this without its model part (a file came first): the rest of a
// Content-Length body gets its buffer at once (one allocation, no growth copies), as a body
// read whole does.
constexpr std::size_t form_grow_whole = 1 << 20;

// Whether the request's admission needs the form's token estimate: its key has tpm, tpd or a
// budget, or its group provider limits. Read whole then: the estimate counts every text field.
bool counts_text(const proxy::snapshot& snap, int key_index, std::string_view model) {
  const auto& key = snap.keys.keys[static_cast<std::size_t>(key_index)];
  const auto& d = key.demand;
  if (key.limited && (d.limits.tpm || d.limits.tpd || d.budget.unit != limits::budget_unit::none))
    return true;
  const auto* group = snap.routes.find(model);
  return group && group->limited;
}

}  // namespace

asio::awaitable<bool> client_connection::receive_form(const proxy::snapshot& snap,
                                                      observe::request_record& rec, bool keep_alive,
                                                      bool send_continue) {
  if (send_continue && !co_await continue_body(snap)) co_return false;
  proxy::http::form_scanner scan(req_.headers.get(proxy::http::header_id::content_type), "model");
  proxy::http::form_field f{form_status::pending};
  auto got = co_await read_form_prefix(snap, scan, f);
  if (got != head_result::ok) {
    bool keep = co_await refuse_body(got, snap, rec);
    co_return keep;
  }
  bool whole = parser_->chunked() ? parser_->is_done() : req_.body.size() == form_length_;
  if (!whole && f.status == form_status::ok &&
      counts_text(snap, authorized_index_, req_.body.view().substr(f.begin, f.end - f.begin))) {
    // Token limits or a budget: the estimate counts every text field, wherever it is (a
    // prompt after the file, say), so the body is read whole first, as a JSON body is.
    got = co_await read_form_rest();
    if (got != head_result::ok) {
      bool keep = co_await refuse_body(got, snap, rec);
      co_return keep;
    }
    whole = true;
  }
  if (whole) co_return co_await forward(snap, rec, keep_alive);  // checked whole, as always
  // The rest is still with the client: a refusal closes the connection (its lingering close
  // reads the rest away); the exchange keeps it only if the provider took the whole body.
  streaming_ = true;
  form_keep_ = keep_alive;
  chunked = parser_->chunked();
  rest = chunked ? 0 : form_length_ - req_.body.size();
  started = finished = false;
  bytes_read = req_.body.size();
  if (f.status == form_status::ok) {
    form_end_.start(scan.delimiter(), req_.body.view().substr(f.end), "model");
    // What came after the model part may already show a second one (or a broken part).
    if (auto problem = form_end_.problem(); problem != form_status::ok) f = {problem};
  }
  co_return co_await route_form(snap, rec, false, f);
}

client_connection::head_result client_connection::feed_chunked() {
  while (in_.size() > 0 && proxy::ready_to_feed(*parser_, in_.size()) && !parser_->is_done()) {
    beast::error_code ec;
    auto used = parser_->put(in_.data(), ec);
    in_.consume(used);
    if (ec == beast::http::error::body_limit) return head_result::too_large;
    if (ec && ec != beast::http::error::need_more) return head_result::bad;
    if (parser_->is_done()) break;
    if (!proxy::http::chunk_pending_ok({static_cast<const char*>(in_.data().data()), in_.size()}))
      return head_result::bad;  // an endless chunk line, or a bare LF
    if (used == 0) break;
  }
  return head_result::ok;
}

asio::awaitable<client_connection::head_result> client_connection::read_client(
    asio::mutable_buffer into, std::size_t& n) {
  // Each read within client_body, the whole body within client_body_total of the head's end.
  const auto& to = (*snap_ptr_)->cfg.timeouts;
  // The client stream, not its socket: an HTTP/2 stream's pipe is cancelled too.
  deadline_.arm_until(std::min(observe::coarse_deadline(to.client_body), body_until_), &stream_,
                      proxy::deadline::on_expiry::cancel);
  auto [ec, got] = co_await stream_.async_read_more(into, use_tuple);
  bool expired = deadline_.expired();
  deadline_.disarm();
  n = got;
  if (expired) co_return head_result::timeout;
  if (ec) co_return ctx_.stopping ? head_result::shutdown : head_result::closed;
  co_return head_result::ok;
}

asio::awaitable<client_connection::head_result> client_connection::read_form_prefix(
    const proxy::snapshot& snap, proxy::http::form_scanner& scan, proxy::http::form_field& f) {
  body_until_ = observe::coarse_deadline(snap.cfg.timeouts.client_body_total);
  if (!parser_->chunked()) {
    const auto len = static_cast<std::size_t>(parser_->content_length().value_or(0));
    form_length_ = len;
    // The body's bytes that came with the head, then reads straight into the body buffer.
    std::size_t take = std::min(len, in_.size());
    req_.body.reserve_more(std::min(len, std::max(take, form_read_chunk)));
    req_.body.append(std::string_view(static_cast<const char*>(in_.data().data()), take));
    in_.consume(take);
    for (;;) {
      f = scan.scan(req_.body.view());
      if (f.status != form_status::pending || req_.body.size() == len) co_return head_result::ok;
      std::size_t left = len - req_.body.size();
      if (req_.body.spare_size() == 0)
        req_.body.reserve_more(
            req_.body.size() >= form_grow_whole ? left : std::min(left, req_.body.size()));
      std::size_t n = 0;
      auto r = co_await read_client(
          asio::buffer(req_.body.spare(), std::min(req_.body.spare_size(), left)), n);
      req_.body.commit(n);
      if (r != head_result::ok) co_return r;
    }
  }
  parser_->eager(true);
  parser_->body_limit(snap.cfg.limits.max_body_bytes);
  for (;;) {
    if (auto r = feed_chunked(); r != head_result::ok) co_return r;
    f = scan.scan(req_.body.view());
    if (f.status != form_status::pending || parser_->is_done()) co_return head_result::ok;
    std::size_t n = 0;
    auto r = co_await read_client(in_.prepare(form_read_chunk), n);
    in_.commit(n);
    if (r != head_result::ok) co_return r;
  }
}

asio::awaitable<client_connection::head_result> client_connection::read_form_rest() {
  if (!parser_->chunked()) {
    req_.body.reserve_more(form_length_ - req_.body.size());
    while (req_.body.size() < form_length_) {
      std::size_t n = 0;
      auto r = co_await read_client(
          asio::buffer(req_.body.spare(),
                       std::min(req_.body.spare_size(), form_length_ - req_.body.size())),
          n);
      req_.body.commit(n);
      if (r != head_result::ok) co_return r;
    }
    co_return head_result::ok;
  }
  for (;;) {
    if (auto r = feed_chunked(); r != head_result::ok) co_return r;
    if (parser_->is_done()) co_return head_result::ok;
    std::size_t n = 0;
    auto r = co_await read_client(in_.prepare(form_read_chunk), n);
    in_.commit(n);
    if (r != head_result::ok) co_return r;
  }
}

asio::awaitable<proxy::body_piece> client_connection::next() {
  auto failed = [](head_result r) {
    return proxy::body_piece{r == head_result::timeout     ? body_status::timeout
                             : r == head_result::shutdown  ? body_status::shutdown
                             : r == head_result::too_large ? body_status::too_large
                             : r == head_result::bad       ? body_status::bad_framing
                                                           : body_status::gone,
                             {}};
  };
  started = true;
  // The body's last byte is not sent before the form is known to end with its close
  // delimiter: a form cut short reaches the provider cut, never as if whole.
  auto ended = [this] {
    finished = true;
    return proxy::body_piece{form_end_.seen() ? body_status::end : body_status::malformed, {}};
  };
  // A piece that shows a second model part (or a broken part) is not sent: the provider gets
  // a cut form, never one whose last model field the gateway did not route.
  auto refused = [this] {
    finished = true;
    return proxy::body_piece{form_end_.problem() == form_status::duplicate
                                 ? body_status::duplicate_field
                                 : body_status::malformed,
                             {}};
  };
  if (!chunked) {
    if (bytes_read >= form_length_) {
      finished = true;
      co_return proxy::body_piece{body_status::end, {}};
    }
    if (!relay_buf_) relay_buf_.reset(new char[form_read_chunk]);
    std::size_t n = 0;
    auto want = static_cast<std::size_t>(
        std::min<std::uint64_t>(form_read_chunk, form_length_ - bytes_read));
    auto r = co_await read_client(asio::buffer(relay_buf_.get(), want), n);
    if (r != head_result::ok) co_return failed(r);
    bytes_read += n;
    std::string_view piece(relay_buf_.get(), n);
    form_end_.feed(piece);
    if (form_end_.problem() != form_status::ok) co_return refused();
    if (bytes_read == form_length_ && !form_end_.seen()) co_return ended();
    co_return proxy::body_piece{body_status::more, piece};
  }
  // Chunked: the parser appends the de-chunked bytes to req_.body, emptied once relayed.
  req_.body.clear();
  for (;;) {
    if (auto r = feed_chunked(); r != head_result::ok) co_return failed(r);
    if (!req_.body.empty()) {
      bytes_read += req_.body.size();
      form_end_.feed(req_.body.view());
      if (form_end_.problem() != form_status::ok) co_return refused();
      co_return proxy::body_piece{body_status::more, req_.body.view()};
    }
    if (parser_->is_done()) co_return ended();
    std::size_t n = 0;
    auto r = co_await read_client(in_.prepare(form_read_chunk), n);
    in_.commit(n);
    if (r != head_result::ok) co_return failed(r);
  }
}

asio::awaitable<bool> client_connection::forward_form(const proxy::snapshot& snap,
                                                      observe::request_record& rec, bool keep_alive,
                                                      std::string_view content_type) {
  return route_form(snap, rec, keep_alive,
                    proxy::http::find_form_field(content_type, req_.body.view(), "model"));
}

// The token estimate counts the text fields only (a file's bytes are no measure of its
// tokens: audio is priced by duration, an image by its size) plus the key's
// default_output_tokens; the answer's usage settles it when the provider reports it. A form
// relayed as it arrives has a key and group that count no tokens (counts_text).
asio::awaitable<bool> client_connection::route_form(const proxy::snapshot& snap,
                                                    observe::request_record& rec, bool keep_alive,
                                                    const proxy::http::form_field& f) {
  if (f.status != form_status::ok) {
    rec.outcome = "bad_request";
    const char* why = f.status == form_status::no_boundary
                          ? "The multipart/form-data Content-Type has no boundary."
                      : f.status == form_status::malformed
                          ? "The multipart/form-data body is malformed."
                      : f.status == form_status::missing ? "The form has no \"model\" field."
                      : f.status == form_status::duplicate
                          ? "The form has more than one \"model\" field."
                          : "The form's \"model\" field must be a non-empty text value.";
    return exchange_.write_error(f.status == form_status::missing ||
                                         f.status == form_status::duplicate ||
                                         f.status == form_status::bad_value
                                     ? error_kind::bad_model
                                     : error_kind::bad_request,
                                 why, keep_alive, rec);
  }
  auto name = req_.body.view().substr(f.begin, f.end - f.begin);
  const auto* group = snap.routes.find(name);
  if (!group) {
    rec.outcome = "model_not_found";
    return refuse(error_kind::model_not_found,
                  "The model '" + std::string(name) + "' does not exist.", keep_alive, rec);
  }
  rec.group = group->name;
  rec.labels.group = group->metric_group;
  const auto& key = snap.keys.keys[authorized_index_];
  if (!key.may_use(group->name)) {  // as for a JSON body
    rec.outcome = "model_not_allowed";
    return refuse(error_kind::model_not_allowed,
                  "Key '" + key.cfg->name + "' may not use model '" + group->name + "'.",
                  keep_alive, rec);
  }
  if (key.limited || group->limited)
    admission_.estimate(f.text_bytes, -1, key.default_output_tokens);
  return admit(snap, rec, keep_alive, {f.begin, f.end}, {}, *group, true);
}

}  // namespace ob::server
