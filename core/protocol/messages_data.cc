// Data-path APIs: Produce (key 0), Fetch (1), ListOffsets (2) and InitProducerId (22).
#include "core/protocol/messages.h"

namespace sluice::protocol {

namespace {

// ---- Produce: v3-7, not flexible in this range (flexible from 9) ----
// RecordErrors and ErrorMessage (v8+) and the v10+ tagged CurrentLeader / NodeEndpoints are
// outside this range.

constexpr Field kProducePartitionData[] = {
    {.name = "index", .type = FieldType::int32},
    {.name = "records", .type = FieldType::records, .nullable = kAllVersions},
};

constexpr Field kProduceTopicData[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partition_data", .type = FieldType::array, .fields = fields_of(kProducePartitionData)},
};

constexpr Field kProduceRequest[] = {
    {.name = "transactional_id", .type = FieldType::string, .versions = since(3), .nullable = since(3)},
    {.name = "acks", .type = FieldType::int16},
    {.name = "timeout_ms", .type = FieldType::int32},
    {.name = "topic_data", .type = FieldType::array, .fields = fields_of(kProduceTopicData)},
};

constexpr Field kProducePartitionResponse[] = {
    {.name = "index", .type = FieldType::int32},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "base_offset", .type = FieldType::int64},
    {.name = "log_append_time_ms", .type = FieldType::int64, .versions = since(2), .default_int = -1},
    {.name = "log_start_offset", .type = FieldType::int64, .versions = since(5), .default_int = -1},
};

constexpr Field kProduceTopicResponse[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partition_responses", .type = FieldType::array, .fields = fields_of(kProducePartitionResponse)},
};

constexpr Field kProduceResponse[] = {
    {.name = "responses", .type = FieldType::array, .fields = fields_of(kProduceTopicResponse)},
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
};

// ---- Fetch: v4-11, not flexible in this range (flexible from 12) ----
// Topic ids (v13+), LastFetchedEpoch (v12+) and the tagged fields (v12+) are outside this range.

constexpr Field kFetchPartition[] = {
    {.name = "partition", .type = FieldType::int32},
    {.name = "current_leader_epoch", .type = FieldType::int32, .versions = since(9), .default_int = -1},
    {.name = "fetch_offset", .type = FieldType::int64},
    {.name = "log_start_offset", .type = FieldType::int64, .versions = since(5), .default_int = -1},
    {.name = "partition_max_bytes", .type = FieldType::int32},
};

constexpr Field kFetchTopic[] = {
    {.name = "topic", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kFetchPartition)},
};

constexpr Field kFetchForgottenTopic[] = {
    {.name = "topic", .type = FieldType::string, .versions = since(7)},
    {.name = "partitions", .type = FieldType::array, .versions = since(7), .element = FieldType::int32},
};

constexpr Field kFetchRequest[] = {
    {.name = "replica_id", .type = FieldType::int32, .default_int = -1},
    {.name = "max_wait_ms", .type = FieldType::int32},
    {.name = "min_bytes", .type = FieldType::int32},
    {.name = "max_bytes", .type = FieldType::int32, .versions = since(3), .default_int = 0x7fffffff},
    {.name = "isolation_level", .type = FieldType::int8, .versions = since(4)},
    {.name = "session_id", .type = FieldType::int32, .versions = since(7)},
    {.name = "session_epoch", .type = FieldType::int32, .versions = since(7), .default_int = -1},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kFetchTopic)},
    {.name = "forgotten_topics_data", .type = FieldType::array, .versions = since(7),
     .fields = fields_of(kFetchForgottenTopic)},
    {.name = "rack_id", .type = FieldType::string, .versions = since(11)},
};

constexpr Field kFetchAbortedTransaction[] = {
    {.name = "producer_id", .type = FieldType::int64},
    {.name = "first_offset", .type = FieldType::int64},
};

constexpr Field kFetchPartitionData[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "high_watermark", .type = FieldType::int64},
    {.name = "last_stable_offset", .type = FieldType::int64, .versions = since(4), .default_int = -1},
    {.name = "log_start_offset", .type = FieldType::int64, .versions = since(5), .default_int = -1},
    {.name = "aborted_transactions", .type = FieldType::array, .versions = since(4), .nullable = since(4),
     .fields = fields_of(kFetchAbortedTransaction)},
    {.name = "preferred_read_replica", .type = FieldType::int32, .versions = since(11), .default_int = -1},
    {.name = "records", .type = FieldType::records, .nullable = kAllVersions},
};

constexpr Field kFetchTopicResponse[] = {
    {.name = "topic", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kFetchPartitionData)},
};

constexpr Field kFetchResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "error_code", .type = FieldType::int16, .versions = since(7)},
    {.name = "session_id", .type = FieldType::int32, .versions = since(7)},
    {.name = "responses", .type = FieldType::array, .fields = fields_of(kFetchTopicResponse)},
};

// ---- ListOffsets: v1-3, not flexible in this range (flexible from 6) ----
// v0's MaxNumOffsets / OldStyleOffsets and v4+'s leader epochs are outside this range.

constexpr Field kListOffsetsPartition[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "timestamp", .type = FieldType::int64},
};

constexpr Field kListOffsetsTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kListOffsetsPartition)},
};

constexpr Field kListOffsetsRequest[] = {
    {.name = "replica_id", .type = FieldType::int32},
    {.name = "isolation_level", .type = FieldType::int8, .versions = since(2)},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kListOffsetsTopic)},
};

constexpr Field kListOffsetsPartitionResponse[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "timestamp", .type = FieldType::int64, .versions = since(1), .default_int = -1},
    {.name = "offset", .type = FieldType::int64, .versions = since(1), .default_int = -1},
};

constexpr Field kListOffsetsTopicResponse[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kListOffsetsPartitionResponse)},
};

constexpr Field kListOffsetsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(2)},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kListOffsetsTopicResponse)},
};

// ---- InitProducerId: v0-1, not flexible in this range (flexible from 2) ----
// ProducerId / ProducerEpoch in the request are v3+, outside this range.

constexpr Field kInitProducerIdRequest[] = {
    {.name = "transactional_id", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "transaction_timeout_ms", .type = FieldType::int32},
};

constexpr Field kInitProducerIdResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "producer_id", .type = FieldType::int64, .default_int = -1},
    {.name = "producer_epoch", .type = FieldType::int16},
};

}  // namespace

const MessageSchema kProduceSchema{.api_key = api::kProduce,
                                   .name = "Produce",
                                   .valid = between(3, 7),
                                   .flexible_from = 9,
                                   .request = fields_of(kProduceRequest),
                                   .response = fields_of(kProduceResponse)};

const MessageSchema kFetchSchema{.api_key = api::kFetch,
                                 .name = "Fetch",
                                 .valid = between(4, 11),
                                 .flexible_from = 12,
                                 .request = fields_of(kFetchRequest),
                                 .response = fields_of(kFetchResponse)};

const MessageSchema kListOffsetsSchema{.api_key = api::kListOffsets,
                                       .name = "ListOffsets",
                                       .valid = between(1, 3),
                                       .flexible_from = 6,
                                       .request = fields_of(kListOffsetsRequest),
                                       .response = fields_of(kListOffsetsResponse)};

const MessageSchema kInitProducerIdSchema{.api_key = api::kInitProducerId,
                                          .name = "InitProducerId",
                                          .valid = between(0, 1),
                                          .flexible_from = 2,
                                          .request = fields_of(kInitProducerIdRequest),
                                          .response = fields_of(kInitProducerIdResponse)};

}  // namespace sluice::protocol
