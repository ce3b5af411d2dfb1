#include "sim/sim_disk.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace sluice::sim {

namespace {
// Unsynced operations are bounded so that a broker which never syncs fails loudly, not slowly.
constexpr std::size_t kUnsyncedOperationsMax = 1 << 20;

bool is_root(const std::string& path) {
  return path == "." || path == "/";
}

bool starts_with_directory(const std::string& path, const std::string& directory) {
  return path.size() > directory.size() + 1 && path.compare(0, directory.size(), directory) == 0 &&
         path[directory.size()] == '/';
}

Duration sample(Random& random, Duration minimum, Duration mean_extra) {
  const double extra_ns =
      std::min(random.exponential(static_cast<double>(mean_extra.count())), 60e9);
  return minimum + Duration(static_cast<std::int64_t>(extra_ns));
}
}  // namespace

class SimFile final : public File {
 public:
  SimFile(SimDisk& disk, std::uint64_t inode, bool writable)
      : disk_(disk), inode_(inode), generation_(disk.generation_), writable_(writable) {}

  std::expected<std::size_t, DiskError> read_at(std::uint64_t offset,
                                                std::span<std::byte> buffer) override {
    if (auto usable = check(false); !usable) return std::unexpected(usable.error());
    return disk_.read_at(inode_, offset, buffer);
  }
  std::expected<void, DiskError> write_at(std::uint64_t offset,
                                          std::span<const std::byte> bytes) override {
    if (auto usable = check(true); !usable) return usable;
    return disk_.write_at(inode_, offset, bytes);
  }
  std::expected<std::uint64_t, DiskError> append(std::span<const std::byte> bytes) override {
    if (auto usable = check(true); !usable) return std::unexpected(usable.error());
    const std::uint64_t offset = disk_.live_size(inode_);
    if (auto written = disk_.write_at(inode_, offset, bytes); !written) {
      return std::unexpected(written.error());
    }
    return offset;
  }
  std::expected<std::uint64_t, DiskError> size() override {
    if (auto usable = check(false); !usable) return std::unexpected(usable.error());
    return disk_.live_size(inode_);
  }
  std::expected<void, DiskError> truncate(std::uint64_t size) override {
    if (auto usable = check(true); !usable) return usable;
    return disk_.truncate(inode_, size);
  }
  // Preallocation is, as far as anyone can read, a growth of the file with zeros: modelled as a
  // growing truncate (kept or dropped whole by a crash).
  std::expected<void, DiskError> allocate(std::uint64_t offset, std::uint64_t length) override {
    if (auto usable = check(true); !usable) return usable;
    if (length == 0 || offset + length <= disk_.live_size(inode_)) return {};
    return disk_.truncate(inode_, offset + length);
  }
  std::expected<void, DiskError> datasync() override {
    if (auto usable = check(false); !usable) return usable;
    return disk_.datasync(inode_);
  }
  void drop_cache(std::uint64_t offset, std::uint64_t length) override {
    if (check(false)) disk_.drop_cache(inode_, offset, length);
  }
  void close() override { closed_ = true; }

 private:
  std::expected<void, DiskError> check(bool writing) const {
    // A crash invalidates every handle: the process that opened it is gone.
    if (closed_ || generation_ != disk_.generation_) return std::unexpected(DiskError::closed);
    if (writing && !writable_) return std::unexpected(DiskError::invalid_argument);
    return {};
  }

  SimDisk& disk_;
  std::uint64_t inode_;
  std::uint64_t generation_;
  bool writable_;
  bool closed_ = false;
};

SimDisk::SimDisk(Scheduler& scheduler, Random random, SimDiskFaults faults)
    : scheduler_(scheduler), random_(random), faults_(faults) {}

SimDisk::~SimDisk() = default;

// ---- Paths ----

std::string SimDisk::normalize(std::string_view path) {
  const bool absolute = !path.empty() && path.front() == '/';
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view part = path.substr(start, slash - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = slash + 1;
  }
  std::string result = absolute ? "/" : "";
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) result.push_back('/');
    result.append(parts[i]);
  }
  if (result.empty()) return ".";
  return result;
}

std::string SimDisk::parent_of(const std::string& normalized) {
  if (is_root(normalized)) return normalized;
  const auto slash = normalized.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return normalized.substr(0, slash);
}

bool SimDisk::is_directory(const Namespace& names, const std::string& path) const {
  if (is_root(path)) return true;
  auto it = names.find(path);
  return it != names.end() && it->second.directory;
}

bool SimDisk::has_children(const Namespace& names, const std::string& directory) {
  if (is_root(directory)) {
    for (const auto& [path, entry] : names) {
      if (parent_of(path) == directory) return true;
    }
    return false;
  }
  auto it = names.lower_bound(directory + "/");
  return it != names.end() && starts_with_directory(it->first, directory);
}

std::set<std::string> SimDisk::directories_of(const NameOperation& operation) {
  std::set<std::string> directories{parent_of(operation.path)};
  if (operation.kind == NameKind::rename) directories.insert(parent_of(operation.path_to));
  return directories;
}

// Applies a namespace operation where it still makes sense; used for the live namespace (after
// validation) and for the durable one (sync and crash), where earlier operations may be missing.
void SimDisk::apply_name(Namespace& names, const NameOperation& operation) {
  auto parent_is_directory = [&names](const std::string& path) {
    const std::string parent = parent_of(path);
    if (is_root(parent)) return true;
    auto it = names.find(parent);
    return it != names.end() && it->second.directory;
  };
  switch (operation.kind) {
    case NameKind::create_file:
    case NameKind::create_directory:
      if (parent_is_directory(operation.path) && names.count(operation.path) == 0) {
        names.emplace(operation.path, operation.entry);
      }
      return;
    case NameKind::remove: {
      auto it = names.find(operation.path);
      if (it == names.end() || !(it->second == operation.entry)) return;
      if (it->second.directory && has_children(names, operation.path)) return;
      names.erase(it);
      return;
    }
    case NameKind::rename: {
      const std::string& from = operation.path;
      const std::string& to = operation.path_to;
      if (from == to || starts_with_directory(to, from) || !parent_is_directory(to)) return;
      auto target = names.find(to);
      if (target != names.end()) {
        if (target->second.directory != operation.entry.directory) return;
        if (target->second.directory && has_children(names, to)) return;
        names.erase(target);
      }
      // Move the entry and, for a directory, everything under it. A source missing here (its
      // creation was never made durable) still leaves the entry at the destination.
      Namespace moved;
      auto source = names.find(from);
      if (source != names.end() && source->second == operation.entry) {
        names.erase(source);
        for (auto it = names.lower_bound(from + "/");
             it != names.end() && starts_with_directory(it->first, from);) {
          moved.emplace(to + it->first.substr(from.size()), it->second);
          it = names.erase(it);
        }
      }
      names.emplace(to, operation.entry);
      names.merge(moved);
      return;
    }
  }
}

void SimDisk::record(NameOperation operation) {
  assert(unsynced_names_.size() < kUnsyncedOperationsMax);
  apply_name(live_, operation);
  scheduler_.trace(
      hash64(operation.path + "|" + operation.path_to, static_cast<std::uint64_t>(operation.kind)));
  unsynced_names_.push_back(std::move(operation));
}

bool SimDisk::delay(Duration minimum, Duration mean_extra) {
  if (minimum.count() <= 0 && mean_extra.count() <= 0) return true;
  if (!scheduler_.in_fiber()) return true;  // set-up code outside the simulation
  const Instant until = add_saturating(scheduler_.now(), sample(random_, minimum, mean_extra));
  while (scheduler_.now() < until) {
    const WaitTicket ticket = scheduler_.prepare_wait();
    if (scheduler_.suspend(ticket, until) == WakeReason::cancelled) return false;
  }
  return true;
}

// ---- Disk ----

std::expected<std::unique_ptr<File>, DiskError> SimDisk::open(const std::string& raw_path,
                                                              OpenMode mode) {
  const std::string path = normalize(raw_path);
  if (is_directory(live_, path)) return std::unexpected(DiskError::is_a_directory);
  auto it = live_.find(path);
  if (it != live_.end()) {
    if (mode == OpenMode::create_new) return std::unexpected(DiskError::already_exists);
    assert(inodes_.count(it->second.inode) == 1);
    return std::make_unique<SimFile>(*this, it->second.inode, mode != OpenMode::read_only);
  }
  if (mode == OpenMode::read_only || mode == OpenMode::read_write) {
    return std::unexpected(DiskError::not_found);
  }
  const std::string parent = parent_of(path);
  if (!is_directory(live_, parent)) {
    return std::unexpected(live_.count(parent) != 0 ? DiskError::not_a_directory
                                                    : DiskError::not_found);
  }
  const std::uint64_t inode = next_inode_++;
  inodes_.emplace(inode, Inode{});
  record(NameOperation{NameKind::create_file, path, "", Entry{false, inode}});
  assert(live_.at(path).inode == inode);
  return std::make_unique<SimFile>(*this, inode, true);
}

std::expected<void, DiskError> SimDisk::create_directories(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  std::size_t end = path.front() == '/' ? 1 : 0;
  while (end < path.size()) {
    end = path.find('/', end + 1);
    if (end == std::string::npos) end = path.size();
    const std::string prefix = path.substr(0, end);
    if (is_root(prefix)) continue;
    auto it = live_.find(prefix);
    if (it == live_.end()) {
      record(NameOperation{NameKind::create_directory, prefix, "", Entry{true, 0}});
    } else if (!it->second.directory) {
      return std::unexpected(DiskError::not_a_directory);
    }
  }
  assert(is_directory(live_, path));
  return {};
}

std::expected<std::vector<std::string>, DiskError> SimDisk::list(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  if (!is_directory(live_, path)) {
    return std::unexpected(live_.count(path) != 0 ? DiskError::not_a_directory
                                                  : DiskError::not_found);
  }
  std::vector<std::string> names;
  for (const auto& [child, entry] : live_) {
    if (parent_of(child) != path) continue;
    names.push_back(path == "." ? child : child.substr(path == "/" ? 1 : path.size() + 1));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::expected<void, DiskError> SimDisk::rename(const std::string& raw_from,
                                               const std::string& raw_to) {
  const std::string from = normalize(raw_from);
  const std::string to = normalize(raw_to);
  if (is_root(from) || is_root(to)) return std::unexpected(DiskError::invalid_argument);
  auto source = live_.find(from);
  if (source == live_.end()) return std::unexpected(DiskError::not_found);
  const std::string to_parent = parent_of(to);
  if (!is_directory(live_, to_parent)) {
    return std::unexpected(live_.count(to_parent) != 0 ? DiskError::not_a_directory
                                                       : DiskError::not_found);
  }
  if (from == to) return {};
  if (starts_with_directory(to, from)) return std::unexpected(DiskError::invalid_argument);
  auto target = live_.find(to);
  if (target != live_.end()) {
    if (target->second.directory && !source->second.directory)
      return std::unexpected(DiskError::is_a_directory);
    if (!target->second.directory && source->second.directory)
      return std::unexpected(DiskError::not_a_directory);
    if (target->second.directory && has_children(live_, to))
      return std::unexpected(DiskError::not_empty);
  }
  const Entry entry = source->second;
  record(NameOperation{NameKind::rename, from, to, entry});
  assert(live_.count(from) == 0 && live_.at(to) == entry);
  return {};
}

std::expected<void, DiskError> SimDisk::remove(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  if (is_root(path)) return std::unexpected(DiskError::invalid_argument);
  auto it = live_.find(path);
  if (it == live_.end()) return std::unexpected(DiskError::not_found);
  if (it->second.directory && has_children(live_, path))
    return std::unexpected(DiskError::not_empty);
  record(NameOperation{NameKind::remove, path, "", it->second});
  assert(live_.count(path) == 0);
  return {};
}

std::expected<void, DiskError> SimDisk::sync_directory(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  if (!is_directory(live_, path)) {
    return std::unexpected(live_.count(path) != 0 ? DiskError::not_a_directory
                                                  : DiskError::not_found);
  }
  const std::uint64_t generation = generation_;
  if (!delay(faults_.sync_latency_min, faults_.sync_latency_mean_extra)) {
    return std::unexpected(DiskError::io);
  }
  if (generation != generation_) return std::unexpected(DiskError::io);
  // Operations on this directory become durable in order, together with pending creations of the
  // directory itself and its ancestors (a journaling file system commits those along with it).
  for (auto it = unsynced_names_.begin(); it != unsynced_names_.end();) {
    const bool creates_ancestor = it->kind == NameKind::create_directory &&
                                  (it->path == path || starts_with_directory(path, it->path));
    if (creates_ancestor || directories_of(*it).count(path) != 0) {
      apply_name(durable_, *it);
      it = unsynced_names_.erase(it);
    } else {
      ++it;
    }
  }
  return {};
}

std::expected<bool, DiskError> SimDisk::exists(const std::string& raw_path) {
  const std::string path = normalize(raw_path);
  return is_root(path) || live_.count(path) != 0;
}

// ---- Files ----

std::uint64_t SimDisk::live_size(std::uint64_t inode) const {
  return inodes_.at(inode).live.size();
}

// There is no page cache to drop: what is counted is whether the advice was sound (a range
// holding unsynced writes would not be dropped by a real OS, so a policy that asks is wrong).
void SimDisk::drop_cache(std::uint64_t inode, std::uint64_t offset, std::uint64_t length) {
  cache_dropped_bytes_ += length;
  for (const DataOperation& operation : inodes_.at(inode).unsynced) {
    if (operation.truncate) continue;
    const std::uint64_t from = std::max(offset, operation.offset);
    const std::uint64_t to = std::min(offset + length, operation.offset + operation.bytes.size());
    if (from < to) cache_dropped_unsynced_bytes_ += to - from;
  }
}

std::uint64_t SimDisk::used_bytes() const {
  std::uint64_t total = 0;
  for (const auto& [path, entry] : live_) {
    if (!entry.directory) total += inodes_.at(entry.inode).live.size();
  }
  return total;
}

bool SimDisk::exceeds_capacity(std::uint64_t growth) const {
  // used_bytes() walks every file: only pay for it when growing a disk that can fill up.
  if (growth == 0 || faults_.capacity_bytes >= kCapacityUnlimited) return false;
  return used_bytes() + growth > faults_.capacity_bytes;
}

void SimDisk::apply(std::vector<std::byte>& image, const DataOperation& operation) {
  if (operation.truncate) {
    image.resize(operation.offset);
    return;
  }
  const std::uint64_t end = operation.offset + operation.bytes.size();
  if (image.size() < end) image.resize(end);
  std::copy(operation.bytes.begin(), operation.bytes.end(),
            image.begin() + static_cast<std::ptrdiff_t>(operation.offset));
}

std::expected<std::size_t, DiskError> SimDisk::read_at(std::uint64_t inode, std::uint64_t offset,
                                                       std::span<std::byte> buffer) {
  if (!delay(faults_.read_latency_min, faults_.read_latency_mean_extra)) {
    return std::unexpected(DiskError::io);
  }
  if (random_.bernoulli(faults_.read_error_probability)) {
    scheduler_.trace(mix64(inode) ^ 0x4ead);
    return std::unexpected(DiskError::io);
  }
  const std::vector<std::byte>& live = inodes_.at(inode).live;
  if (offset >= live.size()) return 0;
  const std::size_t count = std::min<std::uint64_t>(buffer.size(), live.size() - offset);
  std::memcpy(buffer.data(), live.data() + offset, count);
  return count;
}

std::expected<void, DiskError> SimDisk::write_at(std::uint64_t inode, std::uint64_t offset,
                                                 std::span<const std::byte> bytes) {
  if (!delay(faults_.write_latency_min, faults_.write_latency_mean_extra)) {
    return std::unexpected(DiskError::io);
  }
  if (random_.bernoulli(faults_.write_error_probability)) {
    scheduler_.trace(mix64(inode) ^ 0x3417e);
    return std::unexpected(DiskError::io);
  }
  Inode& file = inodes_.at(inode);
  const std::uint64_t end = offset + bytes.size();
  const std::uint64_t growth = end > file.live.size() ? end - file.live.size() : 0;
  if (exceeds_capacity(growth)) return std::unexpected(DiskError::no_space);
  if (bytes.empty()) return {};
  assert(file.unsynced.size() < kUnsyncedOperationsMax);
  file.unsynced.push_back(
      DataOperation{false, offset, std::vector<std::byte>(bytes.begin(), bytes.end())});
  apply(file.live, file.unsynced.back());
  assert(file.live.size() >= end);
  return {};
}

std::expected<void, DiskError> SimDisk::truncate(std::uint64_t inode, std::uint64_t size) {
  Inode& file = inodes_.at(inode);
  const std::uint64_t growth = size > file.live.size() ? size - file.live.size() : 0;
  if (exceeds_capacity(growth)) return std::unexpected(DiskError::no_space);
  assert(file.unsynced.size() < kUnsyncedOperationsMax);
  file.unsynced.push_back(DataOperation{true, size, {}});
  apply(file.live, file.unsynced.back());
  assert(file.live.size() == size);
  return {};
}

std::expected<void, DiskError> SimDisk::datasync(std::uint64_t inode) {
  const std::uint64_t generation = generation_;
  // Only what was written before the call is promised durable.
  const std::size_t count = inodes_.at(inode).unsynced.size();
  if (!delay(faults_.sync_latency_min, faults_.sync_latency_mean_extra)) {
    return std::unexpected(DiskError::io);
  }
  if (generation != generation_) return std::unexpected(DiskError::closed);
  Inode& file = inodes_.at(inode);
  assert(file.unsynced.size() >= count);
  for (std::size_t i = 0; i < count; ++i) {
    apply(file.durable, file.unsynced.front());
    file.unsynced.pop_front();
  }
  scheduler_.trace(mix64(inode) ^ file.durable.size());
  // Sizes only: comparing whole images here made every sync O(file size).
  if (file.unsynced.empty()) assert(file.durable.size() == file.live.size());
  return {};
}

// ---- Crash and corruption ----

void SimDisk::crash_data(Inode& inode, Random& random) {
  for (const DataOperation& operation : inode.unsynced) {
    if (operation.truncate) {
      if (random.bernoulli(0.5)) apply(inode.durable, operation);
      continue;
    }
    const std::uint64_t choice = random.uniform(3);
    if (choice == 0) {
      apply(inode.durable, operation);
    } else if (choice == 2) {
      // Torn: sector-aligned pieces (aligned in the file, as a device writes them) survive
      // independently.
      std::uint64_t piece_begin = operation.offset;
      const std::uint64_t end = operation.offset + operation.bytes.size();
      while (piece_begin < end) {
        const std::uint64_t piece_end =
            std::min<std::uint64_t>(end, (piece_begin / kSectorBytes + 1) * kSectorBytes);
        if (random.bernoulli(0.5)) {
          const auto first =
              operation.bytes.begin() + static_cast<std::ptrdiff_t>(piece_begin - operation.offset);
          const auto last =
              operation.bytes.begin() + static_cast<std::ptrdiff_t>(piece_end - operation.offset);
          apply(inode.durable,
                DataOperation{false, piece_begin, std::vector<std::byte>(first, last)});
        }
        piece_begin = piece_end;
      }
    }
  }
  inode.unsynced.clear();
  inode.live = inode.durable;
}

void SimDisk::crash(Random& random) {
  scheduler_.trace(0xc4a5d15c ^ generation_);
  for (const NameOperation& operation : unsynced_names_) {
    if (random.bernoulli(0.5)) apply_name(durable_, operation);
  }
  unsynced_names_.clear();
  live_ = durable_;
  for (auto& [id, inode] : inodes_) crash_data(inode, random);
  collect_unreferenced_inodes();
  generation_++;
}

void SimDisk::collect_unreferenced_inodes() {
  std::set<std::uint64_t> referenced;
  for (const auto& [path, entry] : durable_) {
    if (!entry.directory) referenced.insert(entry.inode);
  }
  std::erase_if(inodes_,
                [&referenced](const auto& item) { return referenced.count(item.first) == 0; });
}

bool SimDisk::flip_bit(const std::string& raw_path, std::uint64_t byte_offset, int bit) {
  assert(bit >= 0 && bit < 8);
  auto it = durable_.find(normalize(raw_path));
  if (it == durable_.end() || it->second.directory) return false;
  Inode& inode = inodes_.at(it->second.inode);
  if (byte_offset >= inode.durable.size()) return false;
  inode.durable[byte_offset] ^= static_cast<std::byte>(1u << bit);
  inode.live = inode.durable;
  for (const DataOperation& operation : inode.unsynced) apply(inode.live, operation);
  scheduler_.trace(mix64(byte_offset) ^ static_cast<std::uint64_t>(bit));
  return true;
}

std::optional<BitFlip> SimDisk::corrupt_bit(Random& random) {
  std::vector<std::string> candidates;
  for (const auto& [path, entry] : durable_) {
    if (!entry.directory && !inodes_.at(entry.inode).durable.empty()) candidates.push_back(path);
  }
  if (candidates.empty()) return std::nullopt;
  BitFlip flip;
  flip.path = candidates[random.uniform(candidates.size())];
  flip.byte_offset = random.uniform(inodes_.at(durable_.at(flip.path).inode).durable.size());
  flip.bit = static_cast<int>(random.uniform(8));
  const bool flipped = flip_bit(flip.path, flip.byte_offset, flip.bit);
  assert(flipped);
  (void)flipped;
  return flip;
}

// ---- Inspection ----

std::optional<std::vector<std::byte>> SimDisk::durable_contents(const std::string& path) const {
  auto it = durable_.find(normalize(path));
  if (it == durable_.end() || it->second.directory) return std::nullopt;
  return inodes_.at(it->second.inode).durable;
}

std::optional<std::vector<std::byte>> SimDisk::live_contents(const std::string& path) const {
  auto it = live_.find(normalize(path));
  if (it == live_.end() || it->second.directory) return std::nullopt;
  return inodes_.at(it->second.inode).live;
}

std::size_t SimDisk::file_count() const {
  return static_cast<std::size_t>(std::count_if(
      live_.begin(), live_.end(), [](const auto& item) { return !item.second.directory; }));
}

std::size_t SimDisk::durable_file_count() const {
  return static_cast<std::size_t>(std::count_if(
      durable_.begin(), durable_.end(), [](const auto& item) { return !item.second.directory; }));
}

std::size_t SimDisk::unsynced_operation_count() const {
  std::size_t total = unsynced_names_.size();
  for (const auto& [id, inode] : inodes_) total += inode.unsynced.size();
  return total;
}

}  // namespace sluice::sim
