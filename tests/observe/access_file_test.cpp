// Access log to a file: created 0640, appended to, and reopened (logrotate's rename + create)
// while workers log, without losing, duplicating or splitting a line.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "observe/events.hpp"
#include "observe/log.hpp"

namespace ob::observe {
namespace {

namespace fs = std::filesystem;

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/ob_access_log_XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    access_log_options stderr_again;
    configure_access_log(stderr_again, nullptr);
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> read_lines(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(AccessLogFile, CreatedWith0640AndAppended) {
  temp_dir dir;
  const auto file = dir.path / "access.log";
  { std::ofstream(dir.path / "keep.log") << "earlier\n"; }
  const auto old_mask = ::umask(022);
  std::string error;
  ASSERT_TRUE(configure_access_log({access_format::text, file.string()}, &error)) << error;
  ::umask(old_mask);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640);

  request_record r;
  r.method = "GET";
  r.path = "/v1/models";
  access_log(r);
  flush_access_log();
  // An existing file is appended to, not truncated.
  ASSERT_TRUE(
      configure_access_log({access_format::json, (dir.path / "keep.log").string()}, &error));
  access_log(r);
  flush_access_log();
  auto kept = read_lines(dir.path / "keep.log");
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0], "earlier");
  EXPECT_EQ(kept[1].rfind("{\"time\":", 0), 0u);
  auto first = read_lines(file);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_NE(first[0].find(" access method=GET path=/v1/models "), std::string::npos);
}

TEST(AccessLogFile, OpenFailureKeepsTheCurrentOutput) {
  temp_dir dir;
  const auto file = dir.path / "a.log";
  std::string error;
  ASSERT_TRUE(configure_access_log({access_format::text, file.string()}, &error));
  EXPECT_FALSE(
      configure_access_log({access_format::json, (dir.path / "no/such/dir.log").string()}, &error));
  EXPECT_NE(error.find("no/such/dir.log"), std::string::npos) << error;
  EXPECT_EQ(current_access_format(), access_format::text);
  request_record r;
  r.method = "GET";
  r.path = "/still-here";
  access_log(r);
  flush_access_log();
  EXPECT_EQ(read_lines(file).size(), 1u);
}

TEST(AccessLogFile, ReopenWhileWorkersLogLosesAndSplitsNothing) {
  temp_dir dir;
  const auto file = dir.path / "access.log";
  std::string error;
  ASSERT_TRUE(configure_access_log({access_format::text, file.string()}, &error)) << error;

  // Writers keep logging until every rotation is done (and at least min_per_writer lines), so
  // all rotations happen under load however the threads are scheduled.
  constexpr int writers = 3, min_per_writer = 5000, max_per_writer = 2'000'000, rotations = 300;
  std::atomic<bool> rotations_done{false};
  std::atomic<std::size_t> written{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([w, &rotations_done, &written] {
      request_record r;
      r.method = "POST";
      r.path = "/v1/chat/completions";
      r.outcome = "ok";
      std::string id;
      int i = 0;
      for (; i < max_per_writer && (i < min_per_writer || !rotations_done.load()); ++i) {
        id = "w" + std::to_string(w) + "-" + std::to_string(i);
        r.request_id = id;
        access_log(r);
        if (i % 97 == 0) {  // batches of many sizes, as the 20 ms timer makes
          flush_access_log();
          std::this_thread::yield();  // 2 cores: leave the rotating thread room to run
        }
      }
      flush_access_log();
      written.fetch_add(static_cast<std::size_t>(i));
    });
  // Rename the live file away, then reopen by name, as logrotate + SIGUSR1 do.
  for (int n = 0; n < rotations; ++n) {
    std::error_code ec;
    fs::rename(file, dir.path / ("access.log." + std::to_string(n)), ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(reopen_access_log(&error)) << error;
  }
  rotations_done = true;
  for (auto& t : threads) t.join();

  std::set<std::string> seen;
  std::size_t lines = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    for (const auto& line : read_lines(entry.path())) {
      ++lines;
      // Whole: starts with the time, ends with the last field.
      ASSERT_EQ(line.find(" access method=POST path=/v1/chat/completions "), 24u) << line;
      const auto at = line.find(" request_id=");
      ASSERT_NE(at, std::string::npos) << line;
      const auto id = line.substr(at + 12);
      ASSERT_EQ(id.find(' '), std::string::npos) << line;
      EXPECT_TRUE(seen.insert(id).second) << "twice: " << id;
    }
  }
  EXPECT_EQ(lines, written.load());
  EXPECT_EQ(seen.size(), written.load());
}

// "access": "errors" keeps the lines of failed requests (status >= 400, or an outcome other
// than ok, such as a client that went away during a 200 stream); "off" keeps none. The live
// event feed gets every request either way.
TEST(AccessLogFile, ModesKeepAllFailedOrNoLines) {
  temp_dir dir;
  events().set_enabled(true);
  events().read_after(events().last_sequence());  // a viewer: the ring keeps every record
  struct case_ {
    const char* id;
    int status;
    const char* outcome;
  };
  const case_ cases[] = {{"ok200", 200, "ok"},
                         {"ok201", 201, "ok"},
                         {"cancelled200", 200, "client_cancelled"},
                         {"refused401", 401, "unauthorized"},
                         {"failed502", 502, "upstream_error"},
                         {"status429", 429, "ok"}};
  auto run = [&](access_mode mode) {
    const auto file = dir.path / ("access." + std::to_string(static_cast<int>(mode)) + ".log");
    std::string error;
    EXPECT_TRUE(configure_access_log({access_format::json, file.string(), mode}, &error)) << error;
    const auto start = events().last_sequence();
    for (const auto& c : cases) {
      request_record r;
      r.method = "POST";
      r.path = "/v1/chat/completions";
      r.request_id = c.id;
      r.status = c.status;
      r.outcome = c.outcome;
      access_log(r);
    }
    flush_access_log();
    EXPECT_EQ(events().last_sequence() - start, std::size(cases)) << static_cast<int>(mode);
    std::string ids;
    for (const auto& line : read_lines(file)) {
      const auto at = line.find("\"request_id\":\"");
      EXPECT_NE(at, std::string::npos) << line;
      if (at == std::string::npos) continue;
      const auto from = at + 14;
      ids += line.substr(from, line.find('"', from) - from) + " ";
    }
    return ids;
  };
  EXPECT_EQ(run(access_mode::all), "ok200 ok201 cancelled200 refused401 failed502 status429 ");
  EXPECT_EQ(run(access_mode::errors), "cancelled200 refused401 failed502 status429 ");
  EXPECT_EQ(run(access_mode::off), "");
  events().set_enabled(false);
}

TEST(AccessLogFile, ReopenOnStderrIsANoOp) {
  access_log_options stderr_only;
  ASSERT_TRUE(configure_access_log(stderr_only, nullptr));
  EXPECT_TRUE(reopen_access_log());
}

}  // namespace
}  // namespace ob::observe
