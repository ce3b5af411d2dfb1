// Properties of SimDisk's crash model, checked against the way a log would use it: synced data
// survives, unsynced data may vanish or tear but never turns into different valid records, and
// bit flips in durable data are caught by a CRC.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <cstring>
#include <map>
#include <set>

#include "sim/sim_disk.h"
#include "tests/sim/sim_test_util.h"

namespace sluice::sim {
namespace {

// CRC-32 (IEEE), table driven: a checksum of our own so the test depends on nothing else.
std::uint32_t crc32(std::span<const std::byte> bytes) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> entries{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      entries[i] = c;
    }
    return entries;
  }();
  std::uint32_t c = 0xffffffffu;
  for (std::byte b : bytes) c = table[(c ^ static_cast<std::uint32_t>(b)) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

// A record: [magic u32][length u32][crc u32 of length+payload][payload]. The magic keeps an
// all-zero hole from parsing as an empty record.
constexpr std::uint32_t kMagic = 0x51c1ce01u;
constexpr std::size_t kHeaderBytes = 12;

void put_u32(std::vector<std::byte>& out, std::size_t at, std::uint32_t value) {
  std::memcpy(out.data() + at, &value, 4);
}
std::uint32_t get_u32(std::span<const std::byte> in, std::size_t at) {
  std::uint32_t value = 0;
  std::memcpy(&value, in.data() + at, 4);
  return value;
}

std::vector<std::byte> encode_record(std::span<const std::byte> payload) {
  std::vector<std::byte> record(kHeaderBytes + payload.size());
  put_u32(record, 0, kMagic);
  put_u32(record, 4, static_cast<std::uint32_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), record.begin() + kHeaderBytes);
  put_u32(record, 8,
          crc32(std::span<const std::byte>(record).subspan(4, 4)) ^
              crc32(std::span<const std::byte>(record).subspan(kHeaderBytes)));
  return record;
}

// The record at `offset` if it passes its checksum.
std::optional<std::vector<std::byte>> decode_record(std::span<const std::byte> file,
                                                    std::size_t offset) {
  if (offset + kHeaderBytes > file.size()) return std::nullopt;
  if (get_u32(file, offset) != kMagic) return std::nullopt;
  const std::uint32_t length = get_u32(file, offset + 4);
  if (length > file.size() - offset - kHeaderBytes) return std::nullopt;
  const std::uint32_t expected =
      crc32(file.subspan(offset + 4, 4)) ^ crc32(file.subspan(offset + kHeaderBytes, length));
  if (get_u32(file, offset + 8) != expected) return std::nullopt;
  auto record = file.subspan(offset, kHeaderBytes + length);
  return std::vector<std::byte>(record.begin(), record.end());
}

std::vector<std::byte> payload_of(std::uint64_t seed, std::size_t size) {
  Random random(seed);
  std::vector<std::byte> payload(size);
  for (auto& b : payload) b = static_cast<std::byte>(random.uniform(256));
  return payload;
}

std::vector<std::byte> read_file(SimDisk& disk, const std::string& path) {
  auto contents = disk.live_contents(path);
  return contents.value_or(std::vector<std::byte>{});
}

// Sets up a disk with "log" created and durably named, inside a world with a fiber to run in.
struct Harness {
  SimWorld world{1};
  SimDisk disk;
  std::unique_ptr<File> file;
  explicit Harness(std::uint64_t seed) : disk(world.scheduler(), Random(seed)) {
    file = disk.open("log", OpenMode::create).value();
    RC_ASSERT(disk.sync_directory(".").has_value());
  }
  ~Harness() { file.reset(); }
  void datasync() {
    bool ok = false;
    RC_ASSERT(testing::run_in_fiber(world, [&] { ok = file->datasync().has_value(); }));
    RC_ASSERT(ok);
  }
};

RC_GTEST_PROP(sim_disk_property, datasynced_data_survives_crash_byte_identical, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  Harness harness(seed);
  const auto writes =
      *rc::gen::container<std::vector<std::pair<std::uint16_t, std::uint16_t>>>(rc::gen::pair(
          rc::gen::inRange<std::uint16_t>(0, 8192), rc::gen::inRange<std::uint16_t>(1, 3000)));
  std::uint64_t payload_seed = seed;
  for (const auto& [offset, size] : writes) {
    RC_ASSERT(harness.file->write_at(offset, payload_of(payload_seed++, size)).has_value());
  }
  harness.datasync();
  const std::vector<std::byte> synced = read_file(harness.disk, "log");
  // Unsynced appends after the sync, and unsynced writes to another (unsynced) file.
  const auto appends = *rc::gen::inRange(0, 8);
  for (int i = 0; i < appends; ++i) {
    RC_ASSERT(harness.file->append(payload_of(payload_seed++, 700)).has_value());
  }
  auto other = harness.disk.open("other", OpenMode::create).value();
  RC_ASSERT(other->append(payload_of(payload_seed++, 5000)).has_value());
  Random crash_random(seed ^ 0xc4a5);
  harness.disk.crash(crash_random);
  const std::vector<std::byte> after = harness.disk.durable_contents("log").value();
  RC_ASSERT(after.size() >= synced.size());
  RC_ASSERT(std::equal(synced.begin(), synced.end(), after.begin()));
  RC_ASSERT(read_file(harness.disk, "log") == after);
}

RC_GTEST_PROP(sim_disk_property, crc_valid_records_after_crash_were_written_there, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  Harness harness(seed);
  std::map<std::size_t, std::set<std::vector<std::byte>>> written;  // offset -> records ever there
  std::vector<std::size_t> boundaries{0};
  const auto steps = *rc::gen::inRange(1, 40);
  std::uint64_t payload_seed = seed;
  for (int step = 0; step < steps; ++step) {
    const auto action = *rc::gen::inRange(0, 10);
    if (action < 7) {
      const auto size = *rc::gen::inRange<std::size_t>(0, 1500);
      const std::vector<std::byte> record = encode_record(payload_of(payload_seed++, size));
      const std::uint64_t offset = harness.file->append(record).value();
      written[offset].insert(record);
      boundaries.push_back(offset + record.size());
    } else if (action < 9) {
      harness.datasync();
    } else {
      // Rewind to an earlier record boundary and write different records from there.
      const auto index = *rc::gen::inRange<std::size_t>(0, boundaries.size());
      RC_ASSERT(harness.file->truncate(boundaries[index]).has_value());
      boundaries.resize(index + 1);
    }
  }
  Random crash_random(seed ^ 0x7042);
  harness.disk.crash(crash_random);
  const std::vector<std::byte> after = harness.disk.durable_contents("log").value();
  std::size_t offset = 0;
  for (std::size_t records = 0; records < after.size(); ++records) {
    auto record = decode_record(after, offset);
    if (!record) break;
    RC_ASSERT(written.count(offset) == 1);
    RC_ASSERT(written.at(offset).count(*record) == 1);
    offset += record->size();
  }
}

RC_GTEST_PROP(sim_disk_property, bit_flips_in_durable_data_are_detected, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  Harness harness(seed);
  const auto sizes = *rc::gen::nonEmpty(
      rc::gen::container<std::vector<std::size_t>>(rc::gen::inRange<std::size_t>(0, 2000)));
  std::vector<std::size_t> offsets;
  std::uint64_t payload_seed = seed;
  for (std::size_t size : sizes) {
    offsets.push_back(
        harness.file->append(encode_record(payload_of(payload_seed++, size))).value());
  }
  harness.datasync();
  Random random(seed ^ 0xf119);
  const std::optional<BitFlip> flip = harness.disk.corrupt_bit(random);
  RC_ASSERT(flip.has_value());
  RC_ASSERT(flip->path == "log");
  const std::vector<std::byte> after = harness.disk.durable_contents("log").value();
  // The record holding the flipped byte fails its checksum; every other record still passes.
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    const std::size_t end = i + 1 < offsets.size() ? offsets[i + 1] : after.size();
    const bool hit = flip->byte_offset >= offsets[i] && flip->byte_offset < end;
    const bool valid = decode_record(after, offsets[i]).has_value();
    RC_ASSERT(valid != hit);
  }
}

}  // namespace
}  // namespace sluice::sim
