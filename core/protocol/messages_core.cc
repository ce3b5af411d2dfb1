// ApiVersions (key 18) and Metadata (key 3).
#include "core/protocol/messages.h"

namespace sluice::protocol {

namespace {

// ---- ApiVersions: request v0-3 (flexible from 3), response v0-3 ----

constexpr Field kApiVersionsRequest[] = {
    {.name = "client_software_name", .type = FieldType::string, .versions = since(3)},
    {.name = "client_software_version", .type = FieldType::string, .versions = since(3)},
};

constexpr Field kApiVersionsKey[] = {
    {.name = "api_key", .type = FieldType::int16},
    {.name = "min_version", .type = FieldType::int16},
    {.name = "max_version", .type = FieldType::int16},
};

// The feature tags (SupportedFeatures=0, FinalizedFeaturesEpoch=1, FinalizedFeatures=2,
// ZkMigrationReady=3) are optional and not sent; a reader skips unknown tags.
constexpr Field kApiVersionsResponse[] = {
    {.name = "error_code", .type = FieldType::int16},
    {.name = "api_keys", .type = FieldType::array, .fields = fields_of(kApiVersionsKey)},
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(1)},
};

// ---- Metadata: v0-6, not flexible in this range (flexible from 9) ----

constexpr Field kMetadataRequestTopic[] = {
    {.name = "name", .type = FieldType::string},
};

constexpr Field kMetadataRequest[] = {
    // v0: an empty array means all topics; v1+: null means all topics, empty means none.
    {.name = "topics", .type = FieldType::array, .nullable = since(1), .fields = fields_of(kMetadataRequestTopic)},
    {.name = "allow_auto_topic_creation", .type = FieldType::boolean, .versions = since(4)},
};

constexpr Field kMetadataBroker[] = {
    {.name = "node_id", .type = FieldType::int32},
    {.name = "host", .type = FieldType::string},
    {.name = "port", .type = FieldType::int32},
    {.name = "rack", .type = FieldType::string, .versions = since(1), .nullable = since(1)},
};

constexpr Field kMetadataPartition[] = {
    {.name = "error_code", .type = FieldType::int16},
    {.name = "partition_index", .type = FieldType::int32},
    {.name = "leader_id", .type = FieldType::int32},
    {.name = "leader_epoch", .type = FieldType::int32, .versions = since(7), .default_int = -1},
    {.name = "replica_nodes", .type = FieldType::array, .element = FieldType::int32},
    {.name = "isr_nodes", .type = FieldType::array, .element = FieldType::int32},
    {.name = "offline_replicas", .type = FieldType::array, .versions = since(5), .element = FieldType::int32},
};

constexpr Field kMetadataTopic[] = {
    {.name = "error_code", .type = FieldType::int16},
    {.name = "name", .type = FieldType::string},
    {.name = "is_internal", .type = FieldType::boolean, .versions = since(1)},
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kMetadataPartition)},
};

constexpr Field kMetadataResponse[] = {
    {.name = "throttle_time_ms", .type = FieldType::int32, .versions = since(3)},
    {.name = "brokers", .type = FieldType::array, .fields = fields_of(kMetadataBroker)},
    {.name = "cluster_id", .type = FieldType::string, .versions = since(2), .nullable = since(2)},
    {.name = "controller_id", .type = FieldType::int32, .versions = since(1), .default_int = -1},
    {.name = "topics", .type = FieldType::array, .fields = fields_of(kMetadataTopic)},
};

}  // namespace

const MessageSchema kApiVersionsSchema{.api_key = api::kApiVersions,
                                       .name = "ApiVersions",
                                       .valid = between(0, 3),
                                       .flexible_from = 3,
                                       .request = fields_of(kApiVersionsRequest),
                                       .response = fields_of(kApiVersionsResponse)};

const MessageSchema kMetadataSchema{.api_key = api::kMetadata,
                                    .name = "Metadata",
                                    .valid = between(0, 6),
                                    .flexible_from = 9,
                                    .request = fields_of(kMetadataRequest),
                                    .response = fields_of(kMetadataResponse)};

}  // namespace sluice::protocol
