// core/env/log: the text and JSON line formats, checked on what spdlog really writes. JSON lines
// must parse as JSON whatever the message holds (quotes, control bytes, invalid UTF-8 from a
// client id), carry node and component, and lift `key=value` words into fields.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <string>

#include "core/env/log.h"

namespace sluice {
namespace {

// Routes spdlog's default logger to a string for the test's lifetime.
class CapturedLog {
 public:
  explicit CapturedLog(LogFormat format) {
    previous_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("", sink));
    set_log_format(format);
  }
  ~CapturedLog() {
    set_log_format(LogFormat::text);
    spdlog::set_default_logger(previous_);
  }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(LogFormat, parses_its_names) {
  LogFormat format = LogFormat::text;
  EXPECT_TRUE(parse_log_format("json", format));
  EXPECT_EQ(format, LogFormat::json);
  EXPECT_TRUE(parse_log_format("text", format));
  EXPECT_EQ(format, LogFormat::text);
  EXPECT_FALSE(parse_log_format("JSON", format));
  EXPECT_FALSE(parse_log_format("", format));
}

TEST(LogFormat, text_lines_name_node_and_component) {
  CapturedLog captured(LogFormat::text);
  Log("node-3", nullptr, "broker").info("drained in {} ms", 12);
  const std::string line = captured.text();
  EXPECT_NE(line.find("[info] [node-3] [broker] drained in 12 ms"), std::string::npos) << line;
}

TEST(LogFormat, json_lines_are_json_with_key_fields) {
  CapturedLog captured(LogFormat::json);
  Log("node-3", nullptr, "conn 127.0.0.1:5000")
      .warn("request Produce v7 correlation_id=42 client_id=\"odd\\ \x01\xff\xc3\xa9 took_us=17 took_us=99 node=x");
  const std::string line = captured.text();
  ASSERT_FALSE(line.empty());
  ASSERT_EQ(line.back(), '\n');
  const nlohmann::json event = nlohmann::json::parse(line);  // throws (fails the test) if invalid
  EXPECT_EQ(event["level"], "warning");
  EXPECT_EQ(event["node"], "node-3");
  EXPECT_EQ(event["component"], "conn 127.0.0.1:5000");
  EXPECT_EQ(event["correlation_id"], "42");
  EXPECT_EQ(event["took_us"], "17");  // the first of a repeated key
  EXPECT_EQ(event["client_id"], "\"odd\\");
  EXPECT_NE(std::string(event["message"]).find("\xef\xbf\xbd\xc3\xa9"), std::string::npos)
      << "invalid UTF-8 becomes U+FFFD, valid UTF-8 stays";
  EXPECT_TRUE(std::string(event["time"]).ends_with("Z"));
  EXPECT_EQ(event.count("t"), 0u);  // the runtime's lines carry no virtual time
}

}  // namespace
}  // namespace sluice
