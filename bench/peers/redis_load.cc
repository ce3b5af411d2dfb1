// sluice-redis-load: the Redis Streams load client of ci/bench.sh (hiredis).
//   produce: --producers connections pipeline XADDs (one field "v" holding the message, plus "k"
//            with --keys) into --partitions streams "<run-id>:<n>", at --rate or as fast as
//            --window unanswered commands per connection allow; each reply is the ack (with
//            appendfsync always Redis answers only after the AOF is fsynced). With --end-to-end a
//            second connection XREADs the streams and times each message from its intended send
//            time. Afterwards the streams' XLEN must sum to the acknowledged count.
//   consume: XRANGEs every stream from its start (a catch-up read of a backlog).
// One thread drives every producer connection (non-blocking sockets, ppoll).

#include "bench/peers/load_common.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>

#include <atomic>
#include <deque>
#include <memory>
#include <thread>

namespace sluice::bench {
namespace {

constexpr std::size_t kDefaultWindow = 1000;
constexpr int kReadCountMax = 10'000;

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::int64_t maxlen = 0;  // > 0: XADD MAXLEN ~ N (retention)
};

struct RedisFree {
  void operator()(redisContext* context) const { redisFree(context); }
};
using RedisContext = std::unique_ptr<redisContext, RedisFree>;

struct ReplyFree {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

RedisContext connect(const RedisOptions& redis) {
  RedisContext context(redisConnect(redis.host.c_str(), redis.port));
  if (context == nullptr || context->err != 0) {
    std::fprintf(stderr, "sluice-redis-load: connect %s:%d: %s\n", redis.host.c_str(), redis.port,
                 context ? context->errstr : "out of memory");
    return nullptr;
  }
  return context;
}

Reply command(redisContext* context, const std::vector<std::string>& words) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& word : words) {
    argv.push_back(word.data());
    lengths.push_back(word.size());
  }
  return Reply(static_cast<redisReply*>(
      redisCommandArgv(context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
}

std::string stream_name(const LoadOptions& options, std::size_t index) {
  return options.run_id + ":" + std::to_string(index);
}

// A pipelining producer connection. The intended send times of its unanswered commands wait in
// order: Redis answers a connection's commands in the order it sent them.
struct Producer {
  RedisContext context;
  std::deque<std::int64_t> intended_ns;
  bool output_pending = false;
};

void append_xadd(Producer& producer, const LoadOptions& options, const RedisOptions& redis, std::uint64_t index,
                 std::string& payload, std::int64_t intended_ns) {
  stamp_payload(payload, intended_ns);
  const std::string stream = stream_name(options, partition_of(options, index));
  const std::string maxlen = std::to_string(redis.maxlen);
  const std::string key = options.keys > 0 ? key_of(options, index) : std::string();
  std::vector<const char*> argv = {"XADD", stream.c_str()};
  std::vector<std::size_t> lengths = {4, stream.size()};
  if (redis.maxlen > 0) {
    argv.insert(argv.end(), {"MAXLEN", "~", maxlen.c_str()});
    lengths.insert(lengths.end(), {6, 1, maxlen.size()});
  }
  argv.push_back("*");
  lengths.push_back(1);
  if (!key.empty()) {
    argv.insert(argv.end(), {"k", key.data()});
    lengths.insert(lengths.end(), {1, key.size()});
  }
  argv.insert(argv.end(), {"v", payload.data()});
  lengths.insert(lengths.end(), {1, payload.size()});
  redisAppendCommandArgv(producer.context.get(), static_cast<int>(argv.size()), argv.data(), lengths.data());
  producer.intended_ns.push_back(intended_ns);
  producer.output_pending = true;
}

bool make_non_blocking(redisContext* context) {
  const int flags = fcntl(context->fd, F_GETFL);
  if (flags < 0 || fcntl(context->fd, F_SETFL, flags | O_NONBLOCK) < 0) return false;
  context->flags &= ~REDIS_BLOCK;  // hiredis then treats EAGAIN as "nothing yet", not an error
  return true;
}

// Reads whatever replies arrived on a producer's connection; false on a connection error.
bool read_replies(Producer& producer, RunResult& result) {
  if (redisBufferRead(producer.context.get()) != REDIS_OK) return false;
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(producer.context.get(), &raw) != REDIS_OK) return false;
    if (raw == nullptr) return true;
    const Reply reply(static_cast<redisReply*>(raw));
    assert(!producer.intended_ns.empty());
    const std::int64_t now = now_ns();
    if (reply->type == REDIS_REPLY_ERROR) {
      if (result.failed++ == 0) result.first_error = std::string(reply->str, reply->len);
    } else {
      ++result.acked;
      result.ack_latency.record(now - producer.intended_ns.front());
    }
    result.last_ack_ns = now;
    producer.intended_ns.pop_front();
  }
}

// The e2e reader: XREAD over every stream from the start, until told to stop and caught up.
void read_end_to_end(const LoadOptions& options, const RedisOptions& redis, RunResult& result,
                     const std::atomic<bool>& sending_done, const std::atomic<std::uint64_t>& acked_total,
                     std::int64_t deadline_ns) {
  RedisContext context = connect(redis);
  if (context == nullptr) return;
  std::vector<std::string> last_ids(options.partitions, "0-0");
  while (now_ns() < deadline_ns) {
    if (sending_done.load(std::memory_order_acquire) &&
        result.consumed >= acked_total.load(std::memory_order_acquire)) {
      break;
    }
    std::vector<std::string> words = {"XREAD", "COUNT", std::to_string(kReadCountMax), "BLOCK", "100", "STREAMS"};
    for (std::size_t index = 0; index < options.partitions; ++index) words.push_back(stream_name(options, index));
    words.insert(words.end(), last_ids.begin(), last_ids.end());
    const Reply reply = command(context.get(), words);
    if (reply == nullptr) return;
    if (reply->type != REDIS_REPLY_ARRAY) continue;  // nil: nothing new within the block time
    const std::int64_t now = now_ns();
    for (std::size_t s = 0; s < reply->elements; ++s) {
      const redisReply* stream = reply->element[s];
      const std::string name(stream->element[0]->str, stream->element[0]->len);
      const std::size_t index = std::stoul(name.substr(name.rfind(':') + 1));
      const redisReply* entries = stream->element[1];
      for (std::size_t e = 0; e < entries->elements; ++e) {
        const redisReply* entry = entries->element[e];
        last_ids[index].assign(entry->element[0]->str, entry->element[0]->len);
        const redisReply* fields = entry->element[1];
        const redisReply* value = fields->element[fields->elements - 1];  // "v" is the last field
        result.end_to_end_latency.record(now - payload_stamp(value->str, value->len));
        ++result.consumed;
      }
    }
  }
}

std::int64_t stored_count(const LoadOptions& options, const RedisOptions& redis) {
  RedisContext context = connect(redis);
  if (context == nullptr) return -1;
  std::int64_t stored = 0;
  for (std::size_t index = 0; index < options.partitions; ++index) {
    const Reply reply = command(context.get(), {"XLEN", stream_name(options, index)});
    if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) return -1;
    stored += reply->integer;
  }
  return stored;
}

// The producer event loop: queue due commands, write, wait (ppoll) for replies or the next due time.
void drive_producers(const LoadOptions& options, const RedisOptions& redis, std::vector<Producer>& producers,
                     std::size_t window, RunResult& result) {
  std::string payload = make_payload(options.message_bytes);
  const Pacer pacer(options.rate, result.first_send_ns);
  const auto end_ns = result.first_send_ns + static_cast<std::int64_t>(options.duration_s * 1e9);
  const auto drain_end_ns = end_ns + static_cast<std::int64_t>(options.drain_timeout_s * 1e9);
  std::vector<pollfd> polled(producers.size());
  std::uint64_t index = 0;
  bool sending = true;
  std::size_t outstanding = 0;
  for (;;) {
    std::int64_t now = now_ns();
    if (sending && (now >= end_ns || (options.count > 0 && index >= options.count))) sending = false;
    std::int64_t wake_ns = now + 100'000'000;
    if (sending && pacer.paced()) {
      while (pacer.due_ns(index) <= now && (options.count == 0 || index < options.count)) {
        append_xadd(producers[index % producers.size()], options, redis, index, payload, pacer.due_ns(index));
        ++index;
      }
      wake_ns = std::min(pacer.wake_ns(index, now), end_ns);
    } else if (sending) {
      for (std::size_t p = 0; p < producers.size(); ++p) {
        while (producers[p].intended_ns.size() < window && (options.count == 0 || index < options.count)) {
          append_xadd(producers[p], options, redis, index++, payload, now);
        }
      }
      wake_ns = end_ns;
    }
    outstanding = 0;
    for (std::size_t p = 0; p < producers.size(); ++p) {
      Producer& producer = producers[p];
      if (producer.output_pending) {
        int done = 0;
        if (redisBufferWrite(producer.context.get(), &done) != REDIS_OK) {
          result.first_error = producer.context->errstr;
          result.sent = index;
          return;
        }
        producer.output_pending = done == 0;
      }
      outstanding += producer.intended_ns.size();
      polled[p] = pollfd{producer.context->fd, static_cast<short>(POLLIN | (producer.output_pending ? POLLOUT : 0)), 0};
    }
    if (!sending && outstanding == 0) break;
    if (now >= drain_end_ns) break;
    const std::int64_t wait_ns = std::max<std::int64_t>(std::min(wake_ns, drain_end_ns) - now_ns(), 0);
    const timespec timeout{wait_ns / 1'000'000'000, wait_ns % 1'000'000'000};
    if (ppoll(polled.data(), polled.size(), &timeout, nullptr) < 0 && errno != EINTR) break;
    for (std::size_t p = 0; p < producers.size(); ++p) {
      if ((polled[p].revents & (POLLIN | POLLERR | POLLHUP)) == 0) continue;
      if (!read_replies(producers[p], result)) {
        result.first_error = producers[p].context->errstr;
        result.sent = index;
        return;
      }
    }
  }
  result.sent = index;
}

int produce(const LoadOptions& options, const RedisOptions& redis) {
  const std::size_t window = options.window > 0 ? options.window : kDefaultWindow;
  std::vector<Producer> producers(options.producers);
  for (Producer& producer : producers) {
    producer.context = connect(redis);
    if (producer.context == nullptr || !make_non_blocking(producer.context.get())) return kExitFailure;
  }
  RunResult result;
  std::atomic<bool> sending_done{false};
  std::atomic<std::uint64_t> acked_total{0};
  std::thread reader;
  result.first_send_ns = now_ns();
  if (options.end_to_end) {
    const auto deadline = result.first_send_ns + static_cast<std::int64_t>((options.duration_s + options.drain_timeout_s) * 1e9);
    reader = std::thread([&, deadline] { read_end_to_end(options, redis, result, sending_done, acked_total, deadline); });
  }
  drive_producers(options, redis, producers, window, result);
  acked_total.store(result.acked, std::memory_order_release);
  sending_done.store(true, std::memory_order_release);
  if (reader.joinable()) reader.join();
  result.stored = stored_count(options, redis);
  return report("sluice-redis-load", options, result, {{"window", window}, {"maxlen", redis.maxlen}});
}

int consume(LoadOptions options, const RedisOptions& redis) {
  RedisContext context = connect(redis);
  if (context == nullptr) return kExitFailure;
  RunResult result;
  result.stored = stored_count(options, redis);
  result.sent = result.acked = static_cast<std::uint64_t>(std::max<std::int64_t>(result.stored, 0));
  std::uint64_t bytes = 0;
  result.first_send_ns = now_ns();
  for (std::size_t index = 0; index < options.partitions; ++index) {
    std::string from = "-";
    for (;;) {
      const Reply reply =
          command(context.get(), {"XRANGE", stream_name(options, index), from, "+", "COUNT", std::to_string(kReadCountMax)});
      if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) return kExitFailure;
      if (reply->elements == 0) break;
      for (std::size_t e = 0; e < reply->elements; ++e) {
        const redisReply* fields = reply->element[e]->element[1];
        bytes += fields->element[fields->elements - 1]->len;
        ++result.consumed;
      }
      const redisReply* last = reply->element[reply->elements - 1]->element[0];
      from.assign(1, '(');  // an exclusive range (Redis >= 6.2)
      from.append(last->str, last->len);
    }
  }
  result.last_ack_ns = now_ns();
  return report_consume("sluice-redis-load", options, result, bytes);
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  CLI::App app{"sluice-redis-load: Redis Streams load for ci/bench.sh (hiredis)", "sluice-redis-load"};
  std::string mode;
  LoadOptions options;
  RedisOptions redis;
  app.add_option("mode", mode, "produce or consume")->required()->check(CLI::IsMember({"produce", "consume"}));
  app.add_option("--host", redis.host, "Redis host")->capture_default_str();
  app.add_option("--port", redis.port, "Redis port")->capture_default_str();
  app.add_option("--maxlen", redis.maxlen, "XADD MAXLEN ~ N (0: unbounded)")->capture_default_str();
  add_load_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }
  keep_timer_slack_small();
  return mode == "produce" ? produce(options, redis) : consume(options, redis);
}
