#include "core/storage/producer_recovery.h"

namespace sluice::storage {

std::expected<ProducerState, LogError> rebuild_producer_state(PartitionLog& log, std::int64_t now_ms) {
  ProducerState state;
  auto replayed = log.for_each_batch_header([&](const BatchHeader& header) { state.on_appended(header, now_ms); });
  if (!replayed) return std::unexpected(replayed.error());
  return state;
}

}  // namespace sluice::storage
