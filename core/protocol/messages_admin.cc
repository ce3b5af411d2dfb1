// Admin APIs: CreateTopics (key 19), DeleteTopics (20), DeleteRecords (21), DescribeConfigs (32),
// AlterConfigs (33) and CreatePartitions (37). None is flexible within the implemented ranges.
#include "core/protocol/messages.h"

namespace sluice::protocol {

namespace {

// ---- CreateTopics: v0-4 (flexible from 5) ----
// The v5+ response fields (topic config details, tagged TopicConfigErrorCode) and v7's topic id
// are outside this range.

constexpr Field kCreatableReplicaAssignment[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "broker_ids", .type = FieldType::array, .element = FieldType::int32},
};

constexpr Field kCreatableTopicConfig[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "value", .type = FieldType::string, .nullable = kAllVersions},
};

constexpr Field kCreatableTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "num_partitions", .type = FieldType::int32},  // -1: broker default (v4+)
    {.name = "replication_factor", .type = FieldType::int16},  // -1: broker default (v4+)
    {.name = "assignments", .type = FieldType::array, .fields = fields_of(kCreatableReplicaAssignment)},
    {.name = "configs", .type = FieldType::array, .fields = fields_of(kCreatableTopicConfig)},
};

constexpr Field kCreateTopicsRequest[] = {
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kCreatableTopic)},
    {.name = "timeout_ms", .type = FieldType::int32, .default_int = 60000},
    {.name = "validate_only", .type = FieldType::boolean, .versions = since(1)},
};

constexpr Field kCreatableTopicResult[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "error_message", .type = FieldType::string, .versions = since(1), .nullable = since(1)},
};

constexpr Field kCreateTopicsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(2)},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kCreatableTopicResult)},
};

// ---- DeleteTopics: v0-3 (flexible from 4) ----
// v6's Topics (name or id) replaces TopicNames; v5's ErrorMessage: both outside this range.

constexpr Field kDeleteTopicsRequest[] = {
    {.name = "topic_names", .type = FieldType::array, .element = FieldType::string},
    {.name = "timeout_ms", .type = FieldType::int32},
};

constexpr Field kDeletableTopicResult[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "error_code", .type = FieldType::int16},
};

constexpr Field kDeleteTopicsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
    {.name = "responses", .type = FieldType::array, .fields = fields_of(kDeletableTopicResult)},
};

// ---- DeleteRecords: v0-1 (flexible from 2) ----

constexpr Field kDeleteRecordsPartition[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "offset", .type = FieldType::int64},  // -1: the high watermark
};

constexpr Field kDeleteRecordsTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kDeleteRecordsPartition)},
};

constexpr Field kDeleteRecordsRequest[] = {
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kDeleteRecordsTopic)},
    {.name = "timeout_ms", .type = FieldType::int32},
};

constexpr Field kDeleteRecordsPartitionResult[] = {
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "low_watermark", .type = FieldType::int64},
    {.name = "error_code", .type = FieldType::int16},
};

constexpr Field kDeleteRecordsTopicResult[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kDeleteRecordsPartitionResult)},
};

constexpr Field kDeleteRecordsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kDeleteRecordsTopicResult)},
};

// ---- DescribeConfigs: v0-2 (flexible from 4) ----
// v3's IncludeDocumentation, ConfigType and Documentation are outside this range.

constexpr Field kDescribeConfigsResource[] = {
    {.name = "resource_type", .type = FieldType::int8},
    {.name = "resource_name", .type = FieldType::string},
    // null: every configuration key.
    {.name = "configuration_keys", .type = FieldType::array, .nullable = kAllVersions, .element = FieldType::string},
};

constexpr Field kDescribeConfigsRequest[] = {
    {.name = "resources", .type = FieldType::array, .fields = fields_of(kDescribeConfigsResource)},
    {.name = "include_synonyms", .type = FieldType::boolean, .versions = since(1)},
};

constexpr Field kDescribeConfigsSynonym[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "value", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "source", .type = FieldType::int8},
};

constexpr Field kDescribeConfigsResourceResult[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "value", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "read_only", .type = FieldType::boolean},
    {.name = "is_default", .type = FieldType::boolean, .versions = until(0)},
    {.name = "config_source", .type = FieldType::int8, .versions = since(1), .default_int = -1},
    {.name = "is_sensitive", .type = FieldType::boolean},
    {.name = "synonyms", .type = FieldType::array, .versions = since(1), .fields = fields_of(kDescribeConfigsSynonym)},
};

constexpr Field kDescribeConfigsResult[] = {
    {.name = "error_code", .type = FieldType::int16},
    {.name = "error_message", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "resource_type", .type = FieldType::int8},
    {.name = "resource_name", .type = FieldType::string},
    {.name = "configs", .type = FieldType::array, .fields = fields_of(kDescribeConfigsResourceResult)},
};

constexpr Field kDescribeConfigsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32},
    {.name = "results", .type = FieldType::array, .fields = fields_of(kDescribeConfigsResult)},
};

// ---- AlterConfigs: v0-1 (flexible from 2) ----

constexpr Field kAlterableConfig[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "value", .type = FieldType::string, .nullable = kAllVersions},
};

constexpr Field kAlterConfigsResource[] = {
    {.name = "resource_type", .type = FieldType::int8},
    {.name = "resource_name", .type = FieldType::string},
    {.name = "configs", .type = FieldType::array, .fields = fields_of(kAlterableConfig)},
};

constexpr Field kAlterConfigsRequest[] = {
    {.name = "resources", .type = FieldType::array, .fields = fields_of(kAlterConfigsResource)},
    {.name = "validate_only", .type = FieldType::boolean},
};

constexpr Field kAlterConfigsResourceResponse[] = {
    {.name = "error_code", .type = FieldType::int16},
    {.name = "error_message", .type = FieldType::string, .nullable = kAllVersions},
    {.name = "resource_type", .type = FieldType::int8},
    {.name = "resource_name", .type = FieldType::string},
};

constexpr Field kAlterConfigsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32},
    {.name = "responses", .type = FieldType::array, .fields = fields_of(kAlterConfigsResourceResponse)},
};

// ---- CreatePartitions: v0-1 (flexible from 2) ----

constexpr Field kCreatePartitionsAssignment[] = {
    {.name = "broker_ids", .type = FieldType::array, .element = FieldType::int32},
};

constexpr Field kCreatePartitionsTopic[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "count", .type = FieldType::int32},
    // null: the broker assigns the new partitions' replicas.
    {.name = "assignments", .type = FieldType::array, .nullable = kAllVersions,
     .fields = fields_of(kCreatePartitionsAssignment)},
};

constexpr Field kCreatePartitionsRequest[] = {
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kCreatePartitionsTopic)},
    {.name = "timeout_ms", .type = FieldType::int32},
    {.name = "validate_only", .type = FieldType::boolean},
};

constexpr Field kCreatePartitionsTopicResult[] = {
    {.name = "name", .type = FieldType::string},
    {.name = "error_code", .type = FieldType::int16},
    {.name = "error_message", .type = FieldType::string, .nullable = kAllVersions},
};

constexpr Field kCreatePartitionsResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32},
    {.name = "results", .type = FieldType::array, .fields = fields_of(kCreatePartitionsTopicResult)},
};

}  // namespace

const MessageSchema kCreateTopicsSchema{.api_key = api::kCreateTopics,
                                        .name = "CreateTopics",
                                        .valid = between(0, 4),
                                        .flexible_from = 5,
                                        .request = fields_of(kCreateTopicsRequest),
                                        .response = fields_of(kCreateTopicsResponse)};

const MessageSchema kDeleteTopicsSchema{.api_key = api::kDeleteTopics,
                                        .name = "DeleteTopics",
                                        .valid = between(0, 3),
                                        .flexible_from = 4,
                                        .request = fields_of(kDeleteTopicsRequest),
                                        .response = fields_of(kDeleteTopicsResponse)};

const MessageSchema kDeleteRecordsSchema{.api_key = api::kDeleteRecords,
                                         .name = "DeleteRecords",
                                         .valid = between(0, 1),
                                         .flexible_from = 2,
                                         .request = fields_of(kDeleteRecordsRequest),
                                         .response = fields_of(kDeleteRecordsResponse)};

const MessageSchema kDescribeConfigsSchema{.api_key = api::kDescribeConfigs,
                                           .name = "DescribeConfigs",
                                           .valid = between(0, 2),
                                           .flexible_from = 4,
                                           .request = fields_of(kDescribeConfigsRequest),
                                           .response = fields_of(kDescribeConfigsResponse)};

const MessageSchema kAlterConfigsSchema{.api_key = api::kAlterConfigs,
                                        .name = "AlterConfigs",
                                        .valid = between(0, 1),
                                        .flexible_from = 2,
                                        .request = fields_of(kAlterConfigsRequest),
                                        .response = fields_of(kAlterConfigsResponse)};

const MessageSchema kCreatePartitionsSchema{.api_key = api::kCreatePartitions,
                                            .name = "CreatePartitions",
                                            .valid = between(0, 1),
                                            .flexible_from = 2,
                                            .request = fields_of(kCreatePartitionsRequest),
                                            .response = fields_of(kCreatePartitionsResponse)};

}  // namespace sluice::protocol
