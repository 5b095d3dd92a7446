// A throwaway redis-server for tests: a free port on 127.0.0.1, a temporary directory, no
// persistence; stopped (SIGTERM, then SIGKILL) by the destructor or stop(). start() can be
// called again after stop() on the same port (a restart). Tests skip when redis-server is not
// installed (scripts/setup --test installs it).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

namespace ob::test {

class redis_server {
 public:
  redis_server() {
    char tmpl[] = "/tmp/ob-redis-XXXXXX";
    dir_ = mkdtemp(tmpl);
    port_ = free_port();
  }
  ~redis_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static bool available() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

  // extra: more redis-server arguments, e.g. {"--requirepass", "secret"}.
  bool start(std::vector<std::string> extra = {}) {
    if (!extra.empty()) extra_ = std::move(extra);
    std::vector<std::string> args{"redis-server",
                                  "--port",
                                  std::to_string(port_),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--dir",
                                  dir_,
                                  "--enable-debug-command",
                                  "local"};
    for (auto& e : extra_) args.push_back(e);
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::freopen("/dev/null", "w", stdout);
      execvp("redis-server", argv.data());
      _exit(127);
    }
    // Ready when it answers (bounded: 5 s).
    for (int i = 0; i < 250; ++i) {
      if (ping()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 250; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  void pause() { kill(pid_, SIGSTOP); }  // a server that stops answering
  void resume() { kill(pid_, SIGCONT); }

  unsigned short port() const { return port_; }
  std::string url(const std::string& auth = "", int db = 0) const {
    return "redis://" + (auth.empty() ? "" : ":" + auth + "@") +
           "127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
  }

  // A blocking command for test set-up and checks (inline protocol; returns the raw answer
  // of one simple line or bulk).
  std::string command(const std::vector<std::string>& argv, const std::string& auth = "") {
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    boost::system::error_code ec;
    s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    if (ec) return "";
    std::string out;
    auto add = [&](const std::vector<std::string>& a) {
      out += "*" + std::to_string(a.size()) + "\r\n";
      for (auto& x : a) out += "$" + std::to_string(x.size()) + "\r\n" + x + "\r\n";
    };
    if (!auth.empty()) add({"AUTH", auth});
    add(argv);
    add({"QUIT"});  // the server writes every reply, then +OK, then closes
    asio::write(s, asio::buffer(out), ec);
    std::string all;
    char buf[4096];
    for (;;) {
      std::size_t n = s.read_some(asio::buffer(buf), ec);
      all.append(buf, n);
      if (ec) break;
    }
    if (!auth.empty()) all = all.substr(all.find("\r\n") + 2);
    if (all.size() >= 5 && all.compare(all.size() - 5, 5, "+OK\r\n") == 0)
      all.resize(all.size() - 5);
    return all;
  }
  bool ping() {
    return command({"PING"}).rfind("+PONG", 0) == 0 || command({"PING"}).rfind("-NOAUTH", 0) == 0;
  }

 private:
  static unsigned short free_port() {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    return a.local_endpoint().port();
  }
  std::string dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
  std::vector<std::string> extra_;
};

}  // namespace ob::test
