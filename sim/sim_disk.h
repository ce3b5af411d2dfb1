#pragma once
// A node's simulated disk, TigerBeetle/FoundationDB style. The world owns it, so its state
// survives node crashes.
//
// Durability model:
// * Data: each file has durable bytes plus an ordered list of unsynced operations (writes and
//   truncates) that reads see on top. File::datasync() makes the file's operations durable.
// * Names: create, create_directories, rename and remove change the live namespace at once but
//   are durable only after sync_directory() of the parent directory (of either parent, for a
//   rename across directories).
// * crash(random): every unsynced write is independently kept whole, dropped, or torn (a random
//   subset of its 512-byte-sector-aligned pieces is kept); an unsynced truncate is kept or
//   dropped; every unsynced namespace operation is kept or dropped, applied in order, and skipped
//   when it no longer applies. Nothing that was not written ever appears, except that a kept
//   piece beyond the durable end of file leaves zeros in the gap before it (a hole, as a real file
//   system shows). Durable bytes are never un-written. Files opened before the crash fail with
//   DiskError::closed afterwards.
//
// Faults (SimDiskFaults): read/write error probabilities, a capacity (ENOSPC), latencies, and
// explicit bit flips in durable data. Latencies suspend the calling fiber; outside a fiber (test
// set-up code) they are skipped.
//
// Paths are plain strings, normalised lexically ("a/./b//c" -> "a/b/c"); "." and "/" are roots
// that always exist. Concurrency: single-threaded, used from the world's fibers.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/env/disk.h"
#include "core/env/random.h"
#include "core/env/scheduler.h"

namespace sluice::sim {

// The default capacity: no ENOSPC.
inline constexpr std::uint64_t kCapacityUnlimited = std::uint64_t{1} << 40;

struct SimDiskFaults {
  double read_error_probability = 0.0;
  double write_error_probability = 0.0;
  // Bytes of live file data the disk can hold; writes beyond fail with no_space.
  std::uint64_t capacity_bytes = kCapacityUnlimited;
  // Each latency is min + Exponential(mean_extra).
  Duration read_latency_min = Duration(0);
  Duration read_latency_mean_extra = Duration(0);
  Duration write_latency_min = Duration(0);
  Duration write_latency_mean_extra = Duration(0);
  Duration sync_latency_min = microseconds(100);
  Duration sync_latency_mean_extra = microseconds(200);
};

// Where a bit was flipped, for test messages.
struct BitFlip {
  std::string path;
  std::uint64_t byte_offset = 0;
  int bit = 0;
};

class SimFile;

class SimDisk final : public Disk {
 public:
  static constexpr std::size_t kSectorBytes = 512;

  SimDisk(Scheduler& scheduler, Random random, SimDiskFaults faults = {});
  ~SimDisk() override;
  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  // ---- Disk ----
  std::expected<std::unique_ptr<File>, DiskError> open(const std::string& path,
                                                       OpenMode mode) override;
  std::expected<void, DiskError> create_directories(const std::string& path) override;
  std::expected<std::vector<std::string>, DiskError> list(const std::string& path) override;
  std::expected<void, DiskError> rename(const std::string& from, const std::string& to) override;
  std::expected<void, DiskError> remove(const std::string& path) override;
  std::expected<void, DiskError> sync_directory(const std::string& path) override;
  std::expected<bool, DiskError> exists(const std::string& path) override;

  // ---- Faults ----
  void set_faults(const SimDiskFaults& faults) { faults_ = faults; }
  const SimDiskFaults& faults() const { return faults_; }
  // Loses unsynced state as described above. `random` decides what survives.
  void crash(Random& random);
  // Flips one bit of durable data (and of the live view, unless an unsynced write covers it).
  // False when the file has no durable byte there.
  bool flip_bit(const std::string& path, std::uint64_t byte_offset, int bit);
  // Flips a random bit of a random durable file with data; nullopt when there is none.
  std::optional<BitFlip> corrupt_bit(Random& random);

  // ---- Inspection, for tests and checkers ----
  // The durable namespace and bytes: what a crash that keeps nothing unsynced would leave.
  // nullopt when the durable namespace has no such file.
  std::optional<std::vector<std::byte>> durable_contents(const std::string& path) const;
  // The live view, as reads see it now.
  std::optional<std::vector<std::byte>> live_contents(const std::string& path) const;
  std::size_t file_count() const;          // files in the live namespace
  std::size_t durable_file_count() const;  // files in the durable namespace
  std::size_t unsynced_operation_count() const;
  std::uint64_t used_bytes() const;
  // True when writing `growth` more bytes would pass capacity_bytes (ENOSPC).
  bool exceeds_capacity(std::uint64_t growth) const;
  std::uint64_t crash_count() const { return generation_; }
  // File::drop_cache advice received, in bytes; and the bytes of it that covered writes not yet
  // synced (counted once per unsynced write they overlap): advice that is never sound.
  std::uint64_t cache_dropped_bytes() const { return cache_dropped_bytes_; }
  std::uint64_t cache_dropped_unsynced_bytes() const { return cache_dropped_unsynced_bytes_; }

  static std::string normalize(std::string_view path);

 private:
  friend class SimFile;
  struct Entry {
    bool directory = false;
    std::uint64_t inode = 0;  // files only
    bool operator==(const Entry&) const = default;
  };
  using Namespace = std::map<std::string, Entry>;
  struct DataOperation {
    bool truncate = false;
    std::uint64_t offset = 0;  // write offset, or the new size of a truncate
    std::vector<std::byte> bytes;
  };
  struct Inode {
    std::vector<std::byte> durable;
    std::vector<std::byte> live;  // durable with `unsynced` applied: what reads see
    std::deque<DataOperation> unsynced;
  };
  enum class NameKind : std::uint8_t { create_file, create_directory, rename, remove };
  struct NameOperation {
    NameKind kind = NameKind::create_file;
    std::string path;     // created / removed / renamed-from
    std::string path_to;  // rename only
    Entry entry;
  };

  // File side, called by SimFile.
  std::expected<std::size_t, DiskError> read_at(std::uint64_t inode, std::uint64_t offset,
                                                std::span<std::byte> buffer);
  std::expected<void, DiskError> write_at(std::uint64_t inode, std::uint64_t offset,
                                          std::span<const std::byte> bytes);
  std::expected<void, DiskError> truncate(std::uint64_t inode, std::uint64_t size);
  std::expected<void, DiskError> datasync(std::uint64_t inode);
  std::uint64_t live_size(std::uint64_t inode) const;
  void drop_cache(std::uint64_t inode, std::uint64_t offset, std::uint64_t length);

  static void apply(std::vector<std::byte>& image, const DataOperation& operation);
  static void apply_name(Namespace& names, const NameOperation& operation);
  static bool has_children(const Namespace& names, const std::string& directory);
  static std::string parent_of(const std::string& normalized);
  static std::set<std::string> directories_of(const NameOperation& operation);
  bool is_directory(const Namespace& names, const std::string& path) const;
  void record(NameOperation operation);
  void crash_data(Inode& inode, Random& random);
  void collect_unreferenced_inodes();
  // Suspends the calling fiber for min + Exponential(mean); false if cancelled meanwhile.
  bool delay(Duration minimum, Duration mean_extra);

  Scheduler& scheduler_;
  Random random_;
  SimDiskFaults faults_;
  Namespace live_;
  Namespace durable_;
  std::deque<NameOperation> unsynced_names_;
  std::map<std::uint64_t, Inode> inodes_;
  std::uint64_t next_inode_ = 1;
  std::uint64_t cache_dropped_bytes_ = 0;
  std::uint64_t cache_dropped_unsynced_bytes_ = 0;
  std::uint64_t generation_ = 0;  // crashes so far: a File from an older generation is closed
};

}  // namespace sluice::sim
