#include "sim/sim_disk.h"

#include <gtest/gtest.h>

#include "tests/sim/sim_test_util.h"
#include "tests/testing/file_text.h"

namespace sluice::sim {
namespace {

using sluice::testing::read_all;

using testing::bytes_of;
using testing::run_in_fiber;
using testing::text_of;

struct sim_disk : ::testing::Test {
  SimWorld world{7};
  SimDisk disk{world.scheduler(), Random(11)};
};

TEST(sim_disk_paths, normalize_collapses_dots_and_slashes) {
  EXPECT_EQ(SimDisk::normalize("a/./b//c"), "a/b/c");
  EXPECT_EQ(SimDisk::normalize("a/b/../c/"), "a/c");
  EXPECT_EQ(SimDisk::normalize("/data//log/"), "/data/log");
  EXPECT_EQ(SimDisk::normalize(""), ".");
  EXPECT_EQ(SimDisk::normalize("./"), ".");
  EXPECT_EQ(SimDisk::normalize("/"), "/");
}

TEST_F(sim_disk, open_modes) {
  EXPECT_EQ(disk.open("f", OpenMode::read_only).error(), DiskError::not_found);
  EXPECT_EQ(disk.open("f", OpenMode::read_write).error(), DiskError::not_found);
  EXPECT_EQ(disk.open("missing/f", OpenMode::create).error(), DiskError::not_found);
  ASSERT_TRUE(disk.open("f", OpenMode::create_new).has_value());
  EXPECT_EQ(disk.open("f", OpenMode::create_new).error(), DiskError::already_exists);
  EXPECT_TRUE(disk.open("f", OpenMode::create).has_value());
  EXPECT_TRUE(disk.open("./f", OpenMode::read_write).has_value());
  ASSERT_TRUE(disk.create_directories("d/e").has_value());
  EXPECT_EQ(disk.open("d", OpenMode::read_only).error(), DiskError::is_a_directory);
  EXPECT_EQ(disk.open("f/x", OpenMode::create).error(), DiskError::not_a_directory);
  EXPECT_EQ(disk.create_directories("f/x").error(), DiskError::not_a_directory);
  auto reader = disk.open("f", OpenMode::read_only);
  ASSERT_TRUE(reader.has_value());
  EXPECT_EQ((*reader)->append(bytes_of("x")).error(), DiskError::invalid_argument);
}

TEST_F(sim_disk, read_after_write_append_truncate) {
  auto file = disk.open("log", OpenMode::create).value();
  EXPECT_EQ(file->append(bytes_of("hello")).value(), 0u);
  EXPECT_EQ(file->append(bytes_of(" world")).value(), 5u);
  EXPECT_EQ(read_all(*file), "hello world");
  ASSERT_TRUE(file->write_at(0, bytes_of("J")).has_value());
  EXPECT_EQ(read_all(*file), "Jello world");
  ASSERT_TRUE(file->write_at(13, bytes_of("!")).has_value());  // leaves a hole of zeros
  EXPECT_EQ(file->size().value(), 14u);
  EXPECT_EQ(read_all(*file), std::string("Jello world\0\0!", 14));
  ASSERT_TRUE(file->truncate(5).has_value());
  EXPECT_EQ(read_all(*file), "Jello");
  std::vector<std::byte> buffer(10);
  EXPECT_EQ(file->read_at(3, buffer).value(), 2u);  // short only at end of file
  EXPECT_EQ(file->read_at(9, buffer).value(), 0u);
  file->close();
  EXPECT_EQ(file->size().error(), DiskError::closed);
}

TEST_F(sim_disk, list_rename_remove) {
  ASSERT_TRUE(disk.create_directories("/data/t-0").has_value());
  for (const char* name : {"c", "a", "b"}) {
    ASSERT_TRUE(disk.open(join_path("/data/t-0", name), OpenMode::create).has_value());
  }
  EXPECT_EQ(disk.list("/data/t-0").value(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(disk.list("/data").value(), (std::vector<std::string>{"t-0"}));
  EXPECT_EQ(disk.list("/nope").error(), DiskError::not_found);
  EXPECT_EQ(disk.list("/data/t-0/a").error(), DiskError::not_a_directory);

  auto a = disk.open("/data/t-0/a", OpenMode::read_write).value();
  ASSERT_TRUE(a->append(bytes_of("A")).has_value());
  ASSERT_TRUE(disk.rename("/data/t-0/a", "/data/t-0/b").has_value());  // replaces b
  EXPECT_EQ(disk.list("/data/t-0").value(), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(text_of(disk.live_contents("/data/t-0/b").value()), "A");
  EXPECT_EQ(disk.rename("/data/t-0/zz", "/data/t-0/y").error(), DiskError::not_found);

  // Directories move with their contents (Kafka renames a partition directory to delete it).
  ASSERT_TRUE(disk.rename("/data/t-0", "/data/t-0.deleted").has_value());
  EXPECT_EQ(disk.list("/data/t-0.deleted").value(), (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(disk.exists("/data/t-0").value());
  EXPECT_EQ(disk.remove("/data/t-0.deleted").error(), DiskError::not_empty);
  ASSERT_TRUE(disk.remove("/data/t-0.deleted/b").has_value());
  ASSERT_TRUE(disk.remove("/data/t-0.deleted/c").has_value());
  ASSERT_TRUE(disk.remove("/data/t-0.deleted").has_value());
  EXPECT_EQ(disk.remove("/data/t-0.deleted").error(), DiskError::not_found);
  EXPECT_EQ(disk.list("/data").value(), std::vector<std::string>{});
  // An open handle to a removed file still works, as with POSIX unlink.
  EXPECT_EQ(a->size().value(), 1u);
}

TEST_F(sim_disk, capacity_exceeded_is_no_space) {
  SimDiskFaults faults;
  faults.capacity_bytes = 1000;
  disk.set_faults(faults);
  auto file = disk.open("f", OpenMode::create).value();
  ASSERT_TRUE(file->append(std::vector<std::byte>(900)).has_value());
  EXPECT_EQ(file->append(std::vector<std::byte>(101)).error(), DiskError::no_space);
  EXPECT_TRUE(file->append(std::vector<std::byte>(100)).has_value());
  EXPECT_EQ(disk.used_bytes(), 1000u);
  EXPECT_EQ(file->truncate(2000).error(), DiskError::no_space);
  ASSERT_TRUE(file->write_at(0, std::vector<std::byte>(1000)).has_value());  // overwrite: no growth
}

TEST_F(sim_disk, read_and_write_errors_are_io) {
  auto file = disk.open("f", OpenMode::create).value();
  ASSERT_TRUE(file->append(bytes_of("abc")).has_value());
  SimDiskFaults faults;
  faults.read_error_probability = 1.0;
  faults.write_error_probability = 1.0;
  disk.set_faults(faults);
  std::vector<std::byte> buffer(3);
  EXPECT_EQ(file->read_at(0, buffer).error(), DiskError::io);
  EXPECT_EQ(file->append(bytes_of("d")).error(), DiskError::io);
  disk.set_faults(SimDiskFaults{});
  EXPECT_EQ(read_all(*file), "abc");  // the failed write changed nothing
}

TEST_F(sim_disk, crash_keeps_synced_data_and_closes_old_handles) {
  std::unique_ptr<File> file;
  ASSERT_TRUE(run_in_fiber(world, [&] {
    ASSERT_TRUE(disk.create_directories("/data").has_value());
    file = disk.open("/data/seg", OpenMode::create).value();
    ASSERT_TRUE(file->append(bytes_of("durable")).has_value());
    const Instant before = world.now();
    ASSERT_TRUE(file->datasync().has_value());
    EXPECT_GT(world.now(), before);  // a sync takes simulated time
    ASSERT_TRUE(disk.sync_directory("/data").has_value());
    ASSERT_TRUE(disk.sync_directory("/").has_value());
  }));
  EXPECT_EQ(text_of(disk.durable_contents("/data/seg").value()), "durable");
  ASSERT_TRUE(file->append(std::vector<std::byte>(4096, std::byte{'x'})).has_value());
  Random random(3);
  disk.crash(random);
  EXPECT_EQ(file->size().error(), DiskError::closed);
  std::vector<std::byte> buffer(4);
  EXPECT_EQ(file->read_at(0, buffer).error(), DiskError::closed);
  auto reopened = disk.open("/data/seg", OpenMode::read_only).value();
  const std::string after = read_all(*reopened);
  ASSERT_GE(after.size(), 7u);
  EXPECT_EQ(after.substr(0, 7), "durable");
  for (std::size_t i = 7; i < after.size(); ++i) ASSERT_TRUE(after[i] == 'x' || after[i] == '\0');
  EXPECT_EQ(disk.crash_count(), 1u);
}

TEST_F(sim_disk, unsynced_names_may_vanish_and_synced_names_never_do) {
  int vanished = 0;
  for (std::uint64_t seed = 0; seed < 32; ++seed) {
    SimDisk fresh(world.scheduler(), Random(seed));
    ASSERT_TRUE(fresh.open("kept", OpenMode::create).has_value());
    ASSERT_TRUE(fresh.sync_directory(".").has_value());
    ASSERT_TRUE(fresh.open("maybe", OpenMode::create).has_value());
    ASSERT_TRUE(fresh.remove("kept").has_value());
    Random random(seed);
    fresh.crash(random);
    // The remove of "kept" was not synced either: it may or may not have happened.
    if (!fresh.exists("maybe").value()) vanished++;
    EXPECT_EQ(fresh.unsynced_operation_count(), 0u);
  }
  EXPECT_GT(vanished, 0);
  EXPECT_LT(vanished, 32);
}

TEST_F(sim_disk, sync_directory_of_new_directory_makes_its_path_durable) {
  ASSERT_TRUE(disk.create_directories("a/b").has_value());
  ASSERT_TRUE(disk.open("a/b/f", OpenMode::create).has_value());
  ASSERT_TRUE(disk.sync_directory("a/b").has_value());
  Random random(5);
  disk.crash(random);
  EXPECT_TRUE(disk.exists("a/b/f").value());
  EXPECT_EQ(disk.durable_file_count(), 1u);
}

TEST_F(sim_disk, flip_bit_changes_durable_data_only) {
  auto file = disk.open("f", OpenMode::create).value();
  ASSERT_TRUE(file->append(bytes_of("AAAA")).has_value());
  ASSERT_TRUE(disk.sync_directory(".").has_value());
  EXPECT_FALSE(disk.flip_bit("f", 0, 0));  // nothing durable yet
  ASSERT_TRUE(run_in_fiber(world, [&] { ASSERT_TRUE(file->datasync().has_value()); }));
  ASSERT_TRUE(disk.flip_bit("f", 1, 0));
  EXPECT_EQ(text_of(disk.durable_contents("f").value()), "A@AA");
  EXPECT_EQ(read_all(*file), "A@AA");
  Random random(9);
  auto flip = disk.corrupt_bit(random);
  ASSERT_TRUE(flip.has_value());
  EXPECT_EQ(flip->path, "f");
  EXPECT_LT(flip->byte_offset, 4u);
}

}  // namespace
}  // namespace sluice::sim
