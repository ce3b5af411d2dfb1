#pragma once
// Rebuilds a partition's idempotent-producer state from its log after recovery, so that a
// producer retrying a batch across a broker restart still gets "duplicate, original offset".

#include <cstdint>
#include <expected>

#include "core/storage/partition_log.h"
#include "core/storage/producer_state.h"

namespace sluice::storage {

// Replays every batch header in offset order into a fresh ProducerState. `now_ms` becomes each
// producer's last-seen time, so an idle producer outlives a restart by at most one expiration.
std::expected<ProducerState, LogError> rebuild_producer_state(PartitionLog& log, std::int64_t now_ms);

}  // namespace sluice::storage
