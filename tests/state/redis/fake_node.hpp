// A stand-in Redis node for the client's tests: accepts connections on 127.0.0.1 (one at a time,
// again after a close), reads RESP commands (arrays of bulk strings, as the client writes them)
// and answers each with what `answer` returns, after that answer's delay, in order.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace ob::test {

class fake_node {
 public:
  struct answer_t {
    std::string bytes;  // the raw reply, e.g. "+OK\r\n"
    std::chrono::milliseconds delay{0};
  };
  // argv of the command and its index among every command received (0-based).
  using answer_fn = std::function<answer_t(const std::vector<std::string>& argv, std::size_t n)>;

  fake_node(boost::asio::io_context& io, answer_fn answer)
      : io_(io),
        acceptor_(io, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        answer_(std::move(answer)) {
    accept();
  }
  ~fake_node() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    if (conn_) conn_->close();
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  const std::vector<std::vector<std::string>>& received() const { return received_; }
  std::size_t count(std::string_view name) const {
    std::size_t n = 0;
    for (auto& c : received_)
      if (!c.empty() && c[0] == name) ++n;
    return n;
  }

 private:
  struct conn : std::enable_shared_from_this<conn> {
    conn(boost::asio::io_context& io, fake_node* n) : sock(io), timer(io), node(n) {}
    boost::asio::ip::tcp::socket sock;
    boost::asio::steady_timer timer;
    fake_node* node;
    std::string in;
    std::array<char, 4096> buf;
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> out;
    bool writing = false;
    bool closed = false;
    void close() {
      closed = true;
      boost::system::error_code ec;
      sock.close(ec);
      timer.cancel();
    }
    void read() {
      sock.async_read_some(
          boost::asio::buffer(buf),
          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            if (ec || self->closed) return;
            self->in.append(self->buf.data(), n);
            self->parse();
            self->read();
          });
    }
    // Whole commands off the front of `in`.
    void parse() {
      for (;;) {
        std::size_t at = 0;
        std::vector<std::string> argv;
        if (!take_command(at, argv)) return;
        in.erase(0, at);
        auto a = node->answer_(argv, node->received_.size());
        node->received_.push_back(std::move(argv));
        auto when = std::chrono::steady_clock::now() + a.delay;
        if (!out.empty() && out.back().first > when) when = out.back().first;  // in order
        out.emplace_back(when, std::move(a.bytes));
        pump();
      }
    }
    bool take_command(std::size_t& at, std::vector<std::string>& argv) {
      auto line = [&](std::string& s) {
        auto eol = in.find("\r\n", at);
        if (eol == std::string::npos) return false;
        s = in.substr(at, eol - at);
        at = eol + 2;
        return true;
      };
      std::string head;
      if (!line(head) || head.empty() || head[0] != '*') return false;
      const int n = std::stoi(head.substr(1));
      for (int i = 0; i < n; ++i) {
        std::string len;
        if (!line(len) || len.empty() || len[0] != '$') return false;
        const std::size_t l = std::stoul(len.substr(1));
        if (in.size() < at + l + 2) return false;
        argv.push_back(in.substr(at, l));
        at += l + 2;
      }
      return true;
    }
    void pump() {
      if (writing || out.empty() || closed) return;
      writing = true;
      timer.expires_at(out.front().first);
      timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec || self->closed) return;
        auto bytes = std::make_shared<std::string>(std::move(self->out.front().second));
        self->out.pop_front();
        boost::asio::async_write(self->sock, boost::asio::buffer(*bytes),
                                 [self, bytes](boost::system::error_code, std::size_t) {
                                   self->writing = false;
                                   self->pump();
                                 });
      });
    }
  };
  void accept() {
    auto c = std::make_shared<conn>(io_, this);
    acceptor_.async_accept(c->sock, [this, c](boost::system::error_code ec) {
      if (ec) return;
      if (conn_) conn_->close();
      conn_ = c;
      c->read();
      accept();
    });
  }

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  answer_fn answer_;
  std::shared_ptr<conn> conn_;
  std::vector<std::vector<std::string>> received_;
};

}  // namespace ob::test
