// What the metrics cost per request (issue 7: "a registry that costs nothing measurable on the hot
// path"): counting a response's error codes and observing a latency, next to the work every
// request already does — encoding its response. Numbers, not pass/fail (docs/performance.md).
#include <benchmark/benchmark.h>

#include <string>

#include "core/env/metrics.h"
#include "core/kafka/broker_metrics.h"
#include "core/protocol/codec.h"
#include "core/protocol/messages.h"

namespace sluice {
namespace {

using protocol::StructValue;
using protocol::Value;

// A Produce v7 response for `partitions` partitions of one topic, all successful.
StructValue produce_response(int partitions) {
  const protocol::MessageSchema& schema = *protocol::find_schema(protocol::api::kProduce);
  StructValue response = StructValue::with_defaults(schema.response);
  StructValue& topic = response.add("responses");
  topic.set("name", Value(std::string("bench")));
  for (int i = 0; i < partitions; ++i) {
    StructValue& partition = topic.add("partition_responses");
    partition.set("index", protocol::int_value(i));
    partition.set("base_offset", protocol::int_value(1000 + i));
  }
  return response;
}

void BM_CountErrorCodes(benchmark::State& state) {
  const StructValue response = produce_response(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(kafka::count_error_codes(response));
}
BENCHMARK(BM_CountErrorCodes)->Arg(1)->Arg(16);

// The encoding every response already goes through, for scale.
void BM_EncodeProduceResponse(benchmark::State& state) {
  const StructValue response = produce_response(static_cast<int>(state.range(0)));
  const protocol::MessageSchema& schema = *protocol::find_schema(protocol::api::kProduce);
  Bytes out;
  for (auto _ : state) {
    out.clear();
    protocol::encode_struct(schema.response, 7, false, response, out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeProduceResponse)->Arg(1)->Arg(16);

void BM_LatencyHistogramObserve(benchmark::State& state) {
  LatencyHistogram histogram;
  std::int64_t micros = 1;
  for (auto _ : state) {
    histogram.observe(microseconds(micros));
    micros = micros * 7 % 100'003;  // spread over the buckets
  }
  benchmark::DoNotOptimize(histogram.count());
}
BENCHMARK(BM_LatencyHistogramObserve);

}  // namespace
}  // namespace sluice
