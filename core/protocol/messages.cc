// The registry of implemented APIs. Adding an API: define its schema in a messages_*.cc file,
// declare it in messages.h, list it here.
#include "core/protocol/messages.h"

#include <algorithm>
#include <array>

namespace sluice::protocol {

namespace {

const auto kSchemas = std::to_array<const MessageSchema*>({
    &kProduceSchema,
    &kFetchSchema,
    &kListOffsetsSchema,
    &kMetadataSchema,
    &kOffsetCommitSchema,
    &kOffsetFetchSchema,
    &kFindCoordinatorSchema,
    &kJoinGroupSchema,
    &kHeartbeatSchema,
    &kLeaveGroupSchema,
    &kSyncGroupSchema,
    &kDescribeGroupsSchema,
    &kListGroupsSchema,
    &kApiVersionsSchema,
    &kCreateTopicsSchema,
    &kDeleteTopicsSchema,
    &kDeleteRecordsSchema,
    &kInitProducerIdSchema,
    &kDescribeConfigsSchema,
    &kAlterConfigsSchema,
    &kCreatePartitionsSchema,
    &kDeleteGroupsSchema,
    &kOffsetDeleteSchema,
});

}  // namespace

std::span<const MessageSchema* const> all_schemas() { return kSchemas; }

const MessageSchema* find_schema(std::int16_t api_key) {
  for (const MessageSchema* schema : kSchemas) {
    if (schema->api_key == api_key) return schema;
  }
  return nullptr;
}

}  // namespace sluice::protocol
