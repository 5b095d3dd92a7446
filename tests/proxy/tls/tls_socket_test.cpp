// proxy::tls_socket against a real TLS client (Asio's ssl::stream) over loopback: the
// handshake, gathered writes of every shape arriving whole and in order, reads in small
// pieces, close_notify seen by the client as an orderly end, completions never inline. And
// its client mode (upstream connections) against its server mode. And the server side's reads
// that wait (through its input buffer) against a client whose bytes the test sends as it
// likes: records split, joined, larger than the buffer.
#include "proxy/tls_socket.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <poll.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "net/recv_buffer.hpp"

namespace ob::proxy {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

// A server context as the listener makes it (tls_context.cpp): read-ahead, released buffers.
void use_self_signed(SSL_CTX* ctx) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -86400);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pkey);
  X509_NAME* n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("t"), -1,
                             -1, 0);
  X509_set_issuer_name(x, n);
  X509_sign(x, pkey, EVP_sha256());
  SSL_CTX_use_certificate(ctx, x);
  SSL_CTX_use_PrivateKey(ctx, pkey);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  X509_free(x);
  EVP_PKEY_free(pkey);
}

class TlsSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    use_self_signed(server_ctx_.native_handle());
    client_ctx_.set_verify_mode(ssl::verify_none);
    connect();
  }
  // A new pair: client_ (Asio's TLS client) and server_ (the tls_socket under test).
  void connect() {
    tcp::acceptor acc(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client_.emplace(ioc_, client_ctx_);
    client_->next_layer().connect(acc.local_endpoint());
    tcp::socket s(ioc_);
    acc.accept(s);
    server_.emplace(std::move(s), server_ctx_.native_handle());
  }
  // Runs both sides to completion (bounded: a hang fails the test instead of blocking it).
  // Each side is a coroutine function; co_spawn keeps it (and its captures) alive.
  template <class Server, class Client>
  void run(Server server, Client client) {
    asio::co_spawn(ioc_, std::move(server), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    asio::co_spawn(ioc_, std::move(client), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    ioc_.run_for(std::chrono::seconds(10));
    ASSERT_TRUE(ioc_.stopped()) << "still running after 10 s";
  }

  asio::io_context ioc_;
  ssl::context server_ctx_{ssl::context::tls_server};
  ssl::context client_ctx_{ssl::context::tls_client};
  std::optional<ssl::stream<tcp::socket>> client_;
  std::optional<tls_socket> server_;
};

std::string pattern(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

TEST_F(TlsSocket, GatheredWritesArriveWholeAndInOrder) {
  // Small pieces joined into records, pieces larger than a record, a lone last piece, empty ones.
  std::vector<std::string> pieces = {pattern(5, 'a'),     "",
                                     pattern(20000, 'b'), pattern(3, 'c'),
                                     pattern(1, 'd'),     pattern(40000, 'e')};
  for (int i = 0; i < 300; ++i) pieces.push_back(pattern(100, static_cast<char>('f' + i % 5)));
  pieces.push_back(pattern(7, 'z'));
  std::string want;
  std::vector<asio::const_buffer> bufs;
  for (auto& p : pieces) {
    want += p;
    bufs.push_back(asio::buffer(p));
  }
  std::size_t wrote = 0;
  std::string got(want.size(), '\0');
  run(
      [&]() -> asio::awaitable<void> {
        auto [hs] = co_await server_->async_handshake(tuple);
        EXPECT_FALSE(hs) << hs.message();
        auto [ec, n] = co_await server_->async_write(bufs, tuple);
        EXPECT_FALSE(ec) << ec.message();
        wrote = n;
        // A single buffer goes out without the gather copy.
        auto [ec2, n2] = co_await server_->async_write(asio::buffer(want.data(), 10), tuple);
        EXPECT_FALSE(ec2);
        EXPECT_EQ(n2, 10u);
      },
      [&]() -> asio::awaitable<void> {
        auto [hs] = co_await client_->async_handshake(ssl::stream_base::client, tuple);
        EXPECT_FALSE(hs) << hs.message();
        auto [ec, n] = co_await asio::async_read(*client_, asio::buffer(got), tuple);
        EXPECT_FALSE(ec) << ec.message();
        std::string tail(10, '\0');
        auto [ec2, n2] = co_await asio::async_read(*client_, asio::buffer(tail), tuple);
        EXPECT_FALSE(ec2);
        EXPECT_EQ(tail, want.substr(0, 10));
      });
  EXPECT_EQ(wrote, want.size());
  EXPECT_TRUE(got == want) << "the bytes differ";
}

TEST_F(TlsSocket, ReadsInSmallPiecesWhatTheClientSends) {
  std::string sent = pattern(100000, 'k');
  std::string got;
  run(
      [&]() -> asio::awaitable<void> {
        auto [hs] = co_await server_->async_handshake(tuple);
        EXPECT_FALSE(hs) << hs.message();
        char buf[4096];
        for (int i = 0; i < 1000 && got.size() < sent.size(); ++i) {
          auto [ec, n] = co_await server_->async_read_some(asio::buffer(buf), tuple);
          if (ec) break;
          got.append(buf, n);
        }
        // The client's close_notify reads as the end of the stream.
        auto [ec, n] = co_await server_->async_read_some(asio::buffer(buf), tuple);
        EXPECT_EQ(ec, asio::error::eof) << ec.message();
        server_->close_notify();  // the client's shutdown waits for ours
      },
      [&]() -> asio::awaitable<void> {
        auto [hs] = co_await client_->async_handshake(ssl::stream_base::client, tuple);
        EXPECT_FALSE(hs) << hs.message();
        auto [ec, n] = co_await asio::async_write(*client_, asio::buffer(sent), tuple);
        EXPECT_FALSE(ec);
        auto [sd] = co_await client_->async_shutdown(tuple);
        (void)sd;  // the peer may close first: either end is fine here
      });
  EXPECT_TRUE(got == sent) << got.size() << " of " << sent.size() << " bytes";
}

// With close_notify the client reads an orderly end (eof); without it, a truncation.
TEST_F(TlsSocket, CloseNotifyIsAnOrderlyEnd) {
  for (bool notify : {true, false}) {
    SCOPED_TRACE(notify ? "close_notify" : "no close_notify");
    if (!notify) {  // a second pair for the second case
      ioc_.restart();
      connect();
    }
    boost::system::error_code seen;
    run(
        [&]() -> asio::awaitable<void> {
          auto [hs] = co_await server_->async_handshake(tuple);
          EXPECT_FALSE(hs) << hs.message();
          if (notify) {
            server_->close_notify();
            server_->close_notify();  // sent once only
          }
          boost::system::error_code ec;
          server_->socket().close(ec);
          server_->close_notify();  // closed socket: nothing
        },
        [&]() -> asio::awaitable<void> {
          auto [hs] = co_await client_->async_handshake(ssl::stream_base::client, tuple);
          EXPECT_FALSE(hs) << hs.message();
          char b[16];
          auto [ec, n] = co_await client_->async_read_some(asio::buffer(b), tuple);
          seen = ec;
        });
    if (notify)
      EXPECT_EQ(seen, asio::error::eof) << seen.message();
    else
      EXPECT_EQ(seen, ssl::error::stream_truncated) << seen.message();
  }
}

TEST_F(TlsSocket, CompletionsAreNeverRunInsideTheInitiatingCall) {
  bool handshaken = false, written = false, inline_call = false;
  std::string data = pattern(100, 'q');
  asio::co_spawn(
      ioc_,
      [&]() -> asio::awaitable<void> {
        co_await client_->async_handshake(ssl::stream_base::client, tuple);
      },
      asio::detached);
  bool initiating = true;
  server_->async_handshake([&](boost::system::error_code ec) {
    EXPECT_FALSE(ec) << ec.message();
    handshaken = true;
    // The socket takes 100 bytes at once: the write is done in the initiating call, and its
    // completion still waits for the event loop.
    initiating = true;
    server_->async_write(asio::buffer(data), [&](boost::system::error_code ec, std::size_t n) {
      EXPECT_FALSE(ec);
      EXPECT_EQ(n, data.size());
      if (initiating) inline_call = true;
      written = true;
    });
    initiating = false;
  });
  initiating = false;
  ioc_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(handshaken);
  EXPECT_TRUE(written);
  EXPECT_FALSE(inline_call);
}

// An allocator that counts what it allocates: the operations use the handler's.
template <class T>
struct counting_allocator {
  using value_type = T;
  int* count;
  explicit counting_allocator(int* c) : count(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& o) : count(o.count) {}
  T* allocate(std::size_t n) {
    ++*count;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const counting_allocator<U>& o) const {
    return count == o.count;
  }
};

// A read that finds its bytes already there and one that has to wait for them: both complete
// on the handler's executor (another io_context here), never inside the initiating call, and
// allocate with the handler's allocator.
TEST_F(TlsSocket, CompletionsRunOnTheHandlersExecutorWithItsAllocator) {
  std::string first = "ping", second = "pong!";
  run([&]() -> asio::awaitable<void> { co_await server_->async_handshake(tuple); },
      [&]() -> asio::awaitable<void> {
        co_await client_->async_handshake(ssl::stream_base::client, tuple);
        co_await asio::async_write(*client_, asio::buffer(first), tuple);
      });
  ioc_.restart();
  asio::io_context other;
  for (bool waits : {false, true}) {
    SCOPED_TRACE(waits ? "waits for the bytes" : "bytes already there");
    int allocations = 0;
    bool called = false, on_other = false;
    boost::system::error_code seen;
    std::size_t got = 0;
    char buf[64];
    server_->async_read_some(
        asio::buffer(buf),
        asio::bind_allocator(
            counting_allocator<void>(&allocations),
            asio::bind_executor(other, [&](boost::system::error_code ec, std::size_t n) {
              called = true;
              on_other = other.get_executor().running_in_this_thread();
              seen = ec;
              got = n;
            })));
    EXPECT_FALSE(called);
    if (waits)
      asio::async_write(*client_, asio::buffer(second),
                        [](boost::system::error_code ec, std::size_t) { EXPECT_FALSE(ec); });
    for (int i = 0; i < 2000 && !called; ++i) {  // both loops in turn, each until it idles
      ioc_.restart();
      ioc_.run_one_for(std::chrono::milliseconds(5));
      other.restart();
      other.poll();
    }
    ASSERT_TRUE(called);
    EXPECT_TRUE(on_other);
    EXPECT_FALSE(seen) << seen.message();
    EXPECT_EQ(std::string(buf, got), waits ? second : first);
    EXPECT_GT(allocations, 0);
  }
}

// Closing the socket completes a waiting read with operation_aborted (after a read that
// completed at once, outside its initiating call).
TEST_F(TlsSocket, ClosingTheSocketAbortsAWaitingRead) {
  std::string data = "ping";
  run([&]() -> asio::awaitable<void> { co_await server_->async_handshake(tuple); },
      [&]() -> asio::awaitable<void> {
        co_await client_->async_handshake(ssl::stream_base::client, tuple);
        co_await asio::async_write(*client_, asio::buffer(data), tuple);
      });
  ioc_.restart();
  char buf[64];
  bool initiating = true, inline_call = false, first_done = false, second_done = false;
  boost::system::error_code second;
  server_->async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
    if (initiating) inline_call = true;
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(std::string(buf, n), data);
    first_done = true;
    server_->async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
      second = ec;
      EXPECT_EQ(n, 0u);
      second_done = true;
    });
    // Nothing more comes: the read waits until the socket closes.
    asio::post(ioc_, [&] {
      boost::system::error_code ignored;
      server_->socket().close(ignored);
    });
  });
  initiating = false;
  ioc_.run_for(std::chrono::seconds(10));
  EXPECT_TRUE(ioc_.stopped());
  EXPECT_FALSE(inline_call);
  EXPECT_TRUE(first_done);
  EXPECT_TRUE(second_done);
  EXPECT_EQ(second, asio::error::operation_aborted) << second.message();
}

// Client mode: reads through the input buffer. Bytes received and not handed out yet count as
// buffered input (a pooled connection with such bytes must not carry another request); the
// server's close_notify reads as eof, and so does a close without it.
TEST_F(TlsSocket, ClientModeReadsWholeAndReportsBufferedInput) {
  for (bool notify : {true, false}) {
    SCOPED_TRACE(notify ? "close_notify" : "no close_notify");
    tcp::acceptor acc(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket cs(ioc_);
    cs.connect(acc.local_endpoint());
    tcp::socket ss(ioc_);
    acc.accept(ss);
    tls_socket client(std::move(cs), client_ctx_.native_handle(), tls_socket::client);
    tls_socket server(std::move(ss), server_ctx_.native_handle());
    std::string sent = pattern(100000, 'm');
    std::string got;
    bool buffered_mid = false, buffered_end = true, server_done = false;
    boost::system::error_code last;
    ioc_.restart();
    run(
        [&]() -> asio::awaitable<void> {
          auto [hs] = co_await server.async_handshake(tuple);
          EXPECT_FALSE(hs) << hs.message();
          auto [ec, n] = co_await server.async_write(asio::buffer(sent), tuple);
          EXPECT_FALSE(ec) << ec.message();
          // The end only once the client has read everything: its last check must see no byte.
          asio::steady_timer t(ioc_);
          for (int i = 0; i < 1000 && got.size() < sent.size(); ++i) {
            t.expires_after(std::chrono::milliseconds(5));
            co_await t.async_wait(tuple);
          }
          server_done = true;
          if (notify) server.close_notify();
          boost::system::error_code cec;
          server.socket().close(cec);
        },
        [&]() -> asio::awaitable<void> {
          auto [hs] = co_await client.async_handshake(tuple);
          EXPECT_FALSE(hs) << hs.message();
          EXPECT_FALSE(client.has_buffered_input());
          char buf[1000];
          for (int i = 0; i < 1000 && got.size() < sent.size(); ++i) {
            auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), tuple);
            if (ec) {
              last = ec;
              co_return;
            }
            got.append(buf, n);
            // 1,000 of a 16 KiB record: the rest waits inside OpenSSL or the input buffer.
            if (got.size() == 1000) buffered_mid = client.has_buffered_input();
          }
          buffered_end = client.has_buffered_input();
          auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), tuple);
          last = ec;
        });
    EXPECT_TRUE(server_done);
    EXPECT_TRUE(got == sent) << got.size() << " of " << sent.size() << " bytes";
    EXPECT_TRUE(buffered_mid);
    EXPECT_FALSE(buffered_end);
    EXPECT_EQ(last, asio::error::eof) << last.message();
  }
}

// A TLS client over memory BIOs on a blocking socket: the test seals records and sends their
// bytes in the pieces it wants, and reads the server's records on its own turn.
class raw_client {
 public:
  raw_client(SSL_CTX* ctx, tcp::socket s)
      : sock_(std::move(s)),
        ssl_(SSL_new(ctx)),
        rbio_(BIO_new(BIO_s_mem())),
        wbio_(BIO_new(BIO_s_mem())) {
    SSL_set_bio(ssl_, rbio_, wbio_);
    SSL_set_connect_state(ssl_);
  }
  ~raw_client() { SSL_free(ssl_); }
  tcp::socket& socket() { return sock_; }
  // One handshake step: what OpenSSL wrote goes out; true once done.
  bool handshake_step() {
    int r = SSL_do_handshake(ssl_);
    send(take_output());
    return r == 1;
  }
  // Moves what arrived on the socket (without blocking) into OpenSSL.
  void receive_available() {
    boost::system::error_code ec;
    sock_.non_blocking(true);
    char b[16384];
    for (int i = 0; i < 1000; ++i) {
      auto n = sock_.read_some(asio::buffer(b), ec);
      if (ec) break;
      BIO_write(rbio_, b, static_cast<int>(n));
    }
    sock_.non_blocking(false);
  }
  // The bytes of one record of `plain` (one SSL_write of at most 16 KiB makes one record).
  std::string seal(const std::string& plain) {
    EXPECT_EQ(SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())),
              static_cast<int>(plain.size()));
    return take_output();
  }
  std::string close_notify_bytes() {
    SSL_shutdown(ssl_);
    return take_output();
  }
  bool received_close_notify() const {
    return (SSL_get_shutdown(ssl_) & SSL_RECEIVED_SHUTDOWN) != 0;
  }
  // Plaintext of the records received so far.
  std::string open_available() {
    receive_available();
    std::string out;
    char b[16384];
    for (int i = 0; i < 1000; ++i) {
      int r = SSL_read(ssl_, b, sizeof b);
      if (r <= 0) break;
      out.append(b, static_cast<std::size_t>(r));
    }
    return out;
  }
  void send(const std::string& bytes) {
    if (!bytes.empty()) asio::write(sock_, asio::buffer(bytes));
  }

 private:
  std::string take_output() {
    std::string out;
    char b[16384];
    for (int n; (n = BIO_read(wbio_, b, sizeof b)) > 0;) out.append(b, static_cast<std::size_t>(n));
    return out;
  }
  tcp::socket sock_;
  SSL* ssl_;
  BIO* rbio_;
  BIO* wbio_;
};

// The server side's reads that wait, against raw_client: a new pair, handshaken.
class TlsSocketWaits : public TlsSocket {
 protected:
  void SetUp() override {
    TlsSocket::SetUp();
    handshaken_pair(server_, raw_);
  }
  // A new server tls_socket and its raw_client, handshaken.
  void handshaken_pair(std::optional<tls_socket>& server, std::optional<raw_client>& raw) {
    tcp::acceptor acc(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket cs(ioc_);
    cs.connect(acc.local_endpoint());
    tcp::socket ss(ioc_);
    acc.accept(ss);
    server.emplace(std::move(ss), server_ctx_.native_handle());
    raw.emplace(client_ctx_.native_handle(), std::move(cs));
    bool done = false;
    server->async_handshake([&](boost::system::error_code ec) {
      EXPECT_FALSE(ec) << ec.message();
      done = true;
    });
    bool client_done = false;
    for (int i = 0; i < 200 && !(done && client_done); ++i) {
      if (!client_done) client_done = raw.value().handshake_step();
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds(5));
      raw->receive_available();
    }
    ASSERT_TRUE(done && client_done);
    raw->open_available();  // the server's session tickets (TLS 1.3)
  }
  // Runs the event loop until `until` holds (at most ~2 s).
  template <class F>
  void turn(F until) {
    for (int i = 0; i < 400 && !until(); ++i) {
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds(5));
    }
  }
  // Lets a waiting read see what was sent, without waiting for anything in particular.
  void settle() {
    ioc_.restart();
    ioc_.run_for(std::chrono::milliseconds(20));
  }
  struct read_result {
    bool done = false;
    boost::system::error_code ec;
    std::string data;
  };
  // A server read into a 16 KiB buffer; `r` holds its result.
  void start_read(read_result& r) {
    r = {};
    r.data.resize(16 * 1024);
    server_->async_read_some(asio::buffer(r.data),
                             [&r](boost::system::error_code ec, std::size_t n) {
                               r.ec = ec;
                               r.data.resize(n);
                               r.done = true;
                             });
  }
  std::optional<raw_client> raw_;
};

// A read that waits and then gets a whole record larger than the input buffer (the rest is read
// from the socket directly): the first completion is the whole record.
TEST_F(TlsSocketWaits, ARecordLargerThanTheInputBufferReadsWhole) {
  for (std::size_t size : {tls_socket::listener_input_size - 40, tls_socket::listener_input_size,
                           std::size_t{12000}, std::size_t{16384}}) {
    SCOPED_TRACE(size);
    read_result r;
    start_read(r);
    settle();
    EXPECT_FALSE(r.done);  // nothing sent yet: the read waits
    std::string req = pattern(size, 'r');
    raw_->send(raw_->seal(req));
    turn([&] { return r.done; });
    ASSERT_TRUE(r.done);
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_TRUE(r.data == req) << r.data.size() << " of " << req.size() << " bytes";
    EXPECT_FALSE(server_->has_buffered_input());
  }
}

// One record in several TCP segments (in the header, after it, in the body), each seen by the
// waiting read before the next is sent: the read completes once, with the whole record.
TEST_F(TlsSocketWaits, ARecordSplitAcrossSegmentsReadsWhole) {
  std::string req = pattern(6000, 's');
  std::string bytes = raw_->seal(req);
  read_result r;
  start_read(r);
  std::size_t at = 0;
  for (std::size_t piece :
       {std::size_t{1}, std::size_t{3}, std::size_t{1}, std::size_t{100}, std::size_t{5000}}) {
    raw_->send(bytes.substr(at, piece));
    at += piece;
    settle();
    EXPECT_FALSE(r.done) << "after " << at << " of " << bytes.size() << " bytes";
  }
  raw_->send(bytes.substr(at));
  turn([&] { return r.done; });
  ASSERT_TRUE(r.done);
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_TRUE(r.data == req) << r.data.size() << " of " << req.size() << " bytes";
}

// Closing the socket while the read waits, before anything or after part of a record arrived:
// operation_aborted, and the connection sends nothing more.
TEST_F(TlsSocketWaits, ClosingWhileWaitingAborts) {
  for (bool partial : {false, true}) {
    SCOPED_TRACE(partial ? "part of a record received" : "nothing received");
    if (partial) SetUp();
    read_result r;
    start_read(r);
    if (partial) raw_->send(raw_->seal(pattern(3000, 'c')).substr(0, 1500));
    settle();
    EXPECT_FALSE(r.done);
    boost::system::error_code ignored;
    server_->socket().close(ignored);
    turn([&] { return r.done; });
    ASSERT_TRUE(r.done);
    EXPECT_EQ(r.ec, asio::error::operation_aborted) << r.ec.message();
    EXPECT_TRUE(r.data.empty());
    server_->close_notify();  // a closed socket: nothing, no crash
  }
}

// Two requests (two records) arriving together while the read waits: the first read gives the
// first request, the second is buffered input and reads without waiting for the client.
TEST_F(TlsSocketWaits, APipelinedRequestIsBufferedInput) {
  std::string first = pattern(1200, 'p'), second = pattern(900, 'q');
  read_result r;
  start_read(r);
  settle();
  EXPECT_FALSE(server_->has_buffered_input());
  std::string both = raw_->seal(first);
  both += raw_->seal(second);  // sealed in order: each record has its sequence number
  raw_->send(both);
  turn([&] { return r.done; });
  ASSERT_TRUE(r.done);
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_TRUE(r.data == first) << r.data.size() << " bytes";
  EXPECT_TRUE(server_->has_buffered_input());
  start_read(r);
  turn([&] { return r.done; });  // the client sends nothing more
  ASSERT_TRUE(r.done);
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_TRUE(r.data == second) << r.data.size() << " bytes";
  EXPECT_FALSE(server_->has_buffered_input());
}

// The peer ends while the read waits: its close_notify, or a close without it, reads as eof.
// After close_notify the gateway's own close_notify goes out; after a bare close it does not
// (as when OpenSSL itself reads the end: the connection is broken). A read after the end does
// not wait for the socket (the client sent close_notify and keeps its socket open).
TEST_F(TlsSocketWaits, PeerEndWhileWaitingReadsAsEof) {
  for (bool notify : {true, false}) {
    SCOPED_TRACE(notify ? "close_notify" : "no close_notify");
    if (!notify) SetUp();
    read_result r;
    start_read(r);
    settle();
    EXPECT_FALSE(r.done);
    if (notify)
      raw_->send(raw_->close_notify_bytes());
    else
      raw_->socket().shutdown(tcp::socket::shutdown_send);
    turn([&] { return r.done; });
    ASSERT_TRUE(r.done);
    EXPECT_EQ(r.ec, asio::error::eof) << r.ec.message();
    start_read(r);
    turn([&] { return r.done; });
    ASSERT_TRUE(r.done);
    EXPECT_TRUE(r.ec) << "a read after the end";
    server_->close_notify();
    bool sent = (SSL_get_shutdown(server_->native_handle()) & SSL_SENT_SHUTDOWN) != 0;
    EXPECT_EQ(sent, notify);
  }
}

// Whether `s` has something to read (bytes, an end or a reset) within 2 s.
bool readable(tcp::socket& s) {
  pollfd p{s.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 2000) == 1;
}

// The gateway ends a connection: close_notify, then a close. A client answers the alert with
// its own close_notify, and if that is in before the close (the gateway's thread lost the CPU
// between the two), a close with unread bytes sends a reset, not a FIN: a proxy in front then
// sees an abortive end. The FIN goes right behind the alert, so the stream ends in order
// whatever the close meets.
TEST_F(TlsSocketWaits, CloseNotifyIsFollowedByTheFinEvenIfThePeersAnswerIsUnread) {
  server_->close_notify();
  ASSERT_TRUE(readable(raw_->socket()));
  raw_->open_available();
  ASSERT_TRUE(raw_->received_close_notify());
  raw_->send(raw_->close_notify_bytes());
  ASSERT_TRUE(readable(server_->socket()));  // the answer is in, unread
  boost::system::error_code ec;
  server_->socket().close(ec);
  ASSERT_TRUE(readable(raw_->socket()));
  char b[64];
  raw_->socket().read_some(asio::buffer(b), ec);
  EXPECT_EQ(ec, asio::error::eof) << "the stream ended with " << ec.message();
}

// Bytes that are no TLS record while the read waits: a TLS error, and the next read fails at
// once instead of waiting for the socket (the client keeps it open).
TEST_F(TlsSocketWaits, GarbageWhileWaitingFailsAndStaysFailed) {
  read_result r;
  start_read(r);
  settle();
  raw_->send(std::string(64, 'x'));
  turn([&] { return r.done; });
  ASSERT_TRUE(r.done);
  EXPECT_TRUE(r.ec);
  EXPECT_NE(r.ec, asio::error::eof);
  start_read(r);
  turn([&] { return r.done; });
  ASSERT_TRUE(r.done);
  EXPECT_TRUE(r.ec);
  server_->close_notify();
  EXPECT_EQ(SSL_get_shutdown(server_->native_handle()) & SSL_SENT_SHUTDOWN, 0);
}

// As an HTTP/2 connection: a read always waiting while large writes wait for the client to
// take them, and the client sending its records in pieces meanwhile. Every byte arrives, in
// order, both ways.
TEST_F(TlsSocketWaits, ReadingAndWritingAtOnce) {
  std::string down = pattern(2 * 1024 * 1024, 'd');
  std::string up;
  std::string wire;
  for (int i = 0; i < 40; ++i) {
    std::string req = pattern(100 + 97 * i, static_cast<char>('A' + i % 20));
    up += req;
    wire += raw_->seal(req);
  }
  std::string got_up, got_down;
  bool wrote = false, read_failed = false;
  std::function<void()> read_more;
  char buf[4096];
  read_more = [&] {
    server_->async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        read_failed = true;
        return;
      }
      got_up.append(buf, n);
      if (got_up.size() < up.size()) read_more();
    });
  };
  read_more();
  server_->async_write(asio::buffer(down), [&](boost::system::error_code ec, std::size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(n, down.size());
    wrote = true;
  });
  // The client sends a piece, then takes what the server wrote, in turns.
  std::size_t at = 0;
  for (int i = 0;
       i < 4000 && !(wrote && got_up.size() >= up.size() && got_down.size() >= down.size()); ++i) {
    if (at < wire.size()) {
      std::size_t piece = std::min<std::size_t>(wire.size() - at, 777);
      raw_->send(wire.substr(at, piece));
      at += piece;
    }
    ioc_.restart();
    ioc_.run_for(std::chrono::milliseconds(2));
    got_down += raw_->open_available();
  }
  EXPECT_FALSE(read_failed);
  EXPECT_TRUE(wrote);
  EXPECT_TRUE(got_up == up) << got_up.size() << " of " << up.size() << " bytes";
  EXPECT_TRUE(got_down == down) << got_down.size() << " of " << down.size() << " bytes";
}

// Records are gathered in one buffer per thread: a write that waits in the middle of a
// gathered record (its client not reading) keeps that record's bytes while another connection
// of the thread gathers its own. With small records (a client's max_fragment_length), OpenSSL
// reads the rest of the record's bytes again on the retry, so they must still be there.
TEST_F(TlsSocketWaits, AWriteWaitingInAGatheredRecordKeepsItsBytes) {
  SSL_set_max_send_fragment(server_->native_handle(), 512);
  server_->socket().set_option(asio::socket_base::send_buffer_size(8192));
  raw_->socket().set_option(asio::socket_base::receive_buffer_size(8192));
  // 256 KB in 1000-byte pieces: gathered into 16 KiB records; the client reads nothing at
  // first, so the write stops inside one of them once the (small) socket buffers are full.
  std::vector<std::string> pieces;
  std::vector<asio::const_buffer> bufs;
  std::string want;
  for (int i = 0; i < 256; ++i) pieces.push_back(pattern(1000, static_cast<char>('a' + i % 7)));
  for (auto& p : pieces) {
    want += p;
    bufs.push_back(asio::buffer(p));
  }
  bool wrote = false;
  server_->async_write(bufs, [&](boost::system::error_code ec, std::size_t n) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(n, want.size());
    wrote = true;
  });
  settle();
  ASSERT_FALSE(wrote) << "the write did not have to wait: the test proves nothing";

  // Another connection of the same thread writes gathered records of other bytes, whole.
  std::optional<tls_socket> other;
  std::optional<raw_client> other_raw;
  handshaken_pair(other, other_raw);
  std::vector<std::string> other_pieces(40, std::string(1000, 'Z'));
  std::vector<asio::const_buffer> other_bufs;
  for (auto& p : other_pieces) other_bufs.push_back(asio::buffer(p));
  bool other_wrote = false;
  other->async_write(other_bufs, [&](boost::system::error_code ec, std::size_t) {
    EXPECT_FALSE(ec) << ec.message();
    other_wrote = true;
  });
  std::string other_got;
  for (int i = 0; i < 400 && !(other_wrote && other_got.size() >= 40000); ++i) {
    ioc_.restart();
    ioc_.run_for(std::chrono::milliseconds(2));
    other_got += other_raw->open_available();
  }
  EXPECT_TRUE(other_wrote);
  EXPECT_EQ(other_got, std::string(40000, 'Z'));
  ASSERT_FALSE(wrote) << "the first write finished before the other one ran";

  // Now the first client reads (with room to read fast): every byte as written.
  raw_->socket().set_option(asio::socket_base::receive_buffer_size(1 << 20));
  std::string got;
  for (int i = 0; i < 4000 && !(wrote && got.size() >= want.size()); ++i) {
    ioc_.restart();
    ioc_.run_for(std::chrono::milliseconds(1));
    got += raw_->open_available();
  }
  EXPECT_TRUE(wrote);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "the bytes differ from " << got.find_first_of('Z');
}

// Client mode's fill_now, the read of the socket a provider read falls back on when its wait
// found the socket readable after all (proxy::exchange::check_stalled_read): the bytes go to
// the input buffer and the next reads hand them out from there; nothing there is no error;
// the peer's end is eof, and the read after it says so too. (Draining reads themselves are
// counted end to end: tests/e2e/socket_reads.test.mjs.)
TEST_F(TlsSocket, ClientModeFillNowTakesBytesAndTheEnd) {
  tcp::acceptor acc(ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket cs(ioc_);
  cs.connect(acc.local_endpoint());
  tcp::socket ss(ioc_);
  acc.accept(ss);
  ASSERT_TRUE(net::enable_drain_hint(cs));
  tls_socket client(std::move(cs), client_ctx_.native_handle(), tls_socket::client);
  tls_socket server(std::move(ss), server_ctx_.native_handle());
  ioc_.restart();
  run(
      [&]() -> asio::awaitable<void> {
        auto [hs] = co_await server.async_handshake(tuple);
        EXPECT_FALSE(hs) << hs.message();
      },
      [&]() -> asio::awaitable<void> {
        auto [hs] = co_await client.async_handshake(tuple);
        EXPECT_FALSE(hs) << hs.message();
      });
  std::string got;
  boost::system::error_code read_ec, fill_ec, nothing_ec, end_ec, after_end;
  std::size_t filled = 0, nothing = 1, at_end = 1;
  bool served = false;
  ioc_.restart();
  run(
      [&]() -> asio::awaitable<void> {
        auto [ec, n] = co_await server.async_write(asio::buffer("hello", 5), tuple);
        EXPECT_FALSE(ec) << ec.message();
        served = true;
      },
      [&]() -> asio::awaitable<void> {
        client.set_draining(true);
        asio::steady_timer t(ioc_);
        while (!served) {  // the write is out once its completion ran
          t.expires_after(std::chrono::milliseconds(1));
          co_await t.async_wait(tuple);
        }
        EXPECT_TRUE(readable(client.socket()));
        filled = client.fill_now(fill_ec);
        EXPECT_TRUE(client.has_buffered_input());
        char buf[64];
        // The session tickets and the record are all in the input buffer: no wait.
        while (got.size() < 5) {
          auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), tuple);
          if (ec) {
            read_ec = ec;
            break;
          }
          got.append(buf, n);
        }
        EXPECT_FALSE(client.has_buffered_input());
        nothing = client.fill_now(nothing_ec);
        boost::system::error_code cec;
        server.socket().close(cec);  // a FIN without close_notify
        EXPECT_TRUE(readable(client.socket()));
        at_end = client.fill_now(end_ec);
        auto [ec, n] = co_await client.async_read_some(asio::buffer(buf), tuple);
        after_end = ec;
      });
  // The record alone is 5 bytes + 22 of header and tag; the session tickets came before it.
  EXPECT_GE(filled, 27u);
  EXPECT_FALSE(fill_ec) << fill_ec.message();
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(nothing, 0u);
  EXPECT_FALSE(nothing_ec) << nothing_ec.message();
  EXPECT_EQ(at_end, 0u);
  EXPECT_EQ(end_ec, asio::error::eof) << end_ec.message();
  EXPECT_EQ(after_end, asio::error::eof) << after_end.message();
}

}  // namespace
}  // namespace ob::proxy
