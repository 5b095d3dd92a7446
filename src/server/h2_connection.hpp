// An HTTP/2 client connection on the TLS listener (ALPN "h2", tls.http2), with nghttp2.
//
// One coroutine reads TLS records and feeds nghttp2 (mem_recv); writes are a chain of
// completion handlers that drain nghttp2's output (mem_send) one write at a time. The nghttp2
// callbacks only record what arrived. Each request stream, once its request is complete, is
// served by an ordinary HTTP/1.1 client_connection over an in-process pipe
// (proxy/memory_pipe.hpp; no descriptor, no syscall): every gateway feature (auth, admission,
// routing, failover, model rewrite, SSE relay, metrics, access log, request ids, deadlines,
// client-gone detection) runs per stream unchanged. The stream parses each write of the
// HTTP/1.1 answer into its HTTP/2 response and hands the body to nghttp2 as the client's
// flow-control window allows; past ~64 KiB queued a write waits, so the HTTP/1.1 writer waits
// and the exchange stops reading upstream. A stream the client resets resets its pipe: the
// client_connection sees its client leave and closes the upstream connection.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "proxy/client_stream.hpp"
#include "proxy/context.hpp"

namespace ob::server {

class connection_registry;

// Serves `stream` (TLS, handshake done, ALPN h2) as an HTTP/2 connection.
void serve_h2(proxy::worker_context& ctx, proxy::client_stream stream,
              connection_registry& registry);

}  // namespace ob::server
