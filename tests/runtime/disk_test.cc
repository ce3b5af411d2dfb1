// RuntimeDisk on a real temporary directory: every File and Disk operation, durability calls
// going through the IO thread, and the errors broker code branches on.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/runtime/runtime_test_util.h"
#include "tests/testing/file_text.h"

namespace sluice::runtime {
namespace {

using sluice::testing::read_all;

using testing::as_bytes;
using testing::TempDirectory;
using testing::test_env_options;

TEST(RuntimeDisk, file_write_append_read_truncate_and_sync) {
  TempDirectory directory;
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    const std::string path = directory / "segment.log";
    auto file = env.disk().open(path, OpenMode::create_new);
    ASSERT_TRUE(file.has_value());
    EXPECT_EQ((*file)->size(), 0u);
    EXPECT_EQ((*file)->append(as_bytes("hello ")), 0u);
    EXPECT_EQ((*file)->append(as_bytes("world")), 6u);
    EXPECT_EQ((*file)->size(), 11u);
    ASSERT_TRUE((*file)->write_at(0, as_bytes("J")));
    EXPECT_EQ(read_all(**file), "Jello world");

    // A read past the end is short, not an error.
    std::byte buffer[16];
    EXPECT_EQ((*file)->read_at(6, buffer), 5u);
    EXPECT_EQ((*file)->read_at(100, buffer), 0u);

    // Writing past the end grows the file with a hole.
    ASSERT_TRUE((*file)->write_at(20, as_bytes("!")));
    EXPECT_EQ((*file)->size(), 21u);
    ASSERT_TRUE((*file)->truncate(5));
    EXPECT_EQ((*file)->size(), 5u);
    EXPECT_EQ((*file)->append(as_bytes("!")), 5u);

    const auto jobs_before = runtime.io_thread().jobs_completed();
    ASSERT_TRUE((*file)->datasync());
    ASSERT_TRUE(env.disk().sync_directory(directory.path()));
    EXPECT_EQ(runtime.io_thread().jobs_completed(), jobs_before + 2);

    (*file)->close();
    EXPECT_EQ((*file)->size().error(), DiskError::closed);
    EXPECT_EQ((*file)->append(as_bytes("x")).error(), DiskError::closed);
    EXPECT_EQ((*file)->datasync().error(), DiskError::closed);

    auto reopened = env.disk().open(path, OpenMode::read_only);
    ASSERT_TRUE(reopened.has_value());
    EXPECT_EQ(read_all(**reopened), "Jello!");
    EXPECT_FALSE((*reopened)->write_at(0, as_bytes("x")).has_value());
  });
}

// Pages of the file at `path` resident in the page cache (mincore over a mapping of it).
std::size_t resident_pages(const std::string& path, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  void* mapping = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) return 0;
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> in_core((bytes + page - 1) / page);
  std::size_t resident = 0;
  if (::mincore(mapping, bytes, in_core.data()) == 0) {
    for (unsigned char flag : in_core) resident += flag & 1;
  }
  ::munmap(mapping, bytes);
  return resident;
}

TEST(RuntimeDisk, drop_cache_really_evicts_synced_pages_from_the_page_cache) {
  TempDirectory directory;
  struct statfs file_system {};
  ASSERT_EQ(::statfs(directory.path().c_str(), &file_system), 0);
  if (file_system.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs keeps its pages: nothing to drop";
  const std::string path = directory / "evicted.log";
  constexpr std::size_t kBytes = 8 << 20;
  const std::size_t pages = kBytes / static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    auto file = env.disk().open(path, OpenMode::create_new);
    ASSERT_TRUE(file.has_value());
    ASSERT_TRUE((*file)->append(std::vector<std::byte>(kBytes, std::byte{'x'})));
    ASSERT_TRUE((*file)->datasync());
    ASSERT_GT(resident_pages(path, kBytes), pages / 2) << "written pages should start out cached";
    (*file)->drop_cache(0, kBytes / 2);  // the first half goes, the second stays
    // The advice runs on an IO thread, without anyone waiting for it.
    for (int i = 0; i < 200 && resident_pages(path, kBytes / 2) > pages / 20; ++i) this_fiber::sleep_for(milliseconds(10));
    EXPECT_LE(resident_pages(path, kBytes / 2), pages / 20);
    EXPECT_GT(resident_pages(path, kBytes), pages / 2 - pages / 20);
    EXPECT_EQ(read_all(**file).size(), kBytes);  // and every byte reads back
  });
}

TEST(RuntimeDisk, open_modes_and_their_errors) {
  TempDirectory directory;
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    const std::string path = directory / "file";
    EXPECT_EQ(env.disk().open(path, OpenMode::read_write).error(), DiskError::not_found);
    EXPECT_EQ(env.disk().open(path, OpenMode::read_only).error(), DiskError::not_found);
    auto created = env.disk().open(path, OpenMode::create);
    ASSERT_TRUE(created.has_value());
    ASSERT_TRUE((*created)->append(as_bytes("abc")));
    EXPECT_EQ(env.disk().open(path, OpenMode::create_new).error(), DiskError::already_exists);
    auto again = env.disk().open(path, OpenMode::create);  // existing content is kept
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ((*again)->size(), 3u);
    EXPECT_EQ((*again)->append(as_bytes("d")), 3u);
    EXPECT_EQ(env.disk().open(directory.path(), OpenMode::read_only).error(),
              DiskError::is_a_directory);
    EXPECT_EQ(env.disk().open(directory / "missing/file", OpenMode::create).error(),
              DiskError::not_found);
    EXPECT_EQ(env.disk().open(path + "/below", OpenMode::create).error(),
              DiskError::not_a_directory);
  });
}

TEST(RuntimeDisk, directories_list_rename_remove_exists) {
  TempDirectory directory;
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    Disk& disk = env.disk();
    const std::string nested = directory / "a/b/c";
    ASSERT_TRUE(disk.create_directories(nested));
    ASSERT_TRUE(disk.create_directories(nested));  // idempotent
    EXPECT_EQ(disk.exists(nested), true);
    EXPECT_EQ(disk.exists(directory / "nope"), false);

    for (const char* name : {"c.log", "a.log", "b.log"}) {
      ASSERT_TRUE(disk.open(join_path(nested, name), OpenMode::create_new).has_value());
    }
    EXPECT_EQ(disk.list(nested), (std::vector<std::string>{"a.log", "b.log", "c.log"}));
    EXPECT_EQ(disk.list(directory / "nope").error(), DiskError::not_found);
    EXPECT_EQ(disk.list(join_path(nested, "a.log")).error(), DiskError::not_a_directory);
    EXPECT_EQ(disk.create_directories(join_path(nested, "a.log")).error(),
              DiskError::not_a_directory);

    // rename replaces the target atomically.
    ASSERT_TRUE(disk.rename(join_path(nested, "a.log"), join_path(nested, "b.log")));
    EXPECT_EQ(disk.list(nested), (std::vector<std::string>{"b.log", "c.log"}));
    EXPECT_EQ(disk.rename(join_path(nested, "a.log"), join_path(nested, "x")).error(),
              DiskError::not_found);
    ASSERT_TRUE(disk.sync_directory(nested));
    EXPECT_EQ(disk.sync_directory(directory / "nope").error(), DiskError::not_found);

    EXPECT_EQ(disk.remove(directory / "a").error(), DiskError::not_empty);
    EXPECT_EQ(disk.remove(directory / "nope").error(), DiskError::not_found);
    ASSERT_TRUE(disk.remove(join_path(nested, "b.log")));
    ASSERT_TRUE(disk.remove(join_path(nested, "c.log")));
    ASSERT_TRUE(disk.remove(nested));  // now an empty directory
    EXPECT_EQ(disk.exists(nested), false);
    EXPECT_EQ(disk.list(directory / "a/b"), std::vector<std::string>{});
  });
}

TEST(RuntimeDisk, datasync_of_many_files_from_many_fibers) {
  TempDirectory directory;
  RuntimeEnv runtime(test_env_options());
  runtime.run_until_done([&](Env& env) {
    constexpr int kFibers = 8;
    int synced = 0;
    Scope scope(env.scheduler().current_scope(), "writers");
    std::vector<std::shared_ptr<FiberDone>> done;
    for (int index = 0; index < kFibers; ++index) {
      done.push_back(scope.spawn("writer", [&, index] {
        auto file = env.disk().open(directory / std::to_string(index), OpenMode::create_new);
        ASSERT_TRUE(file.has_value());
        const std::string record(4096, static_cast<char>('a' + index));
        ASSERT_TRUE((*file)->append(as_bytes(record)));
        ASSERT_TRUE((*file)->datasync());
        EXPECT_EQ(read_all(**file), record);
        synced++;
      }));
    }
    for (auto& fiber : done) EXPECT_TRUE(env.scheduler().join(*fiber));
    EXPECT_EQ(synced, kFibers);
  });
}

}  // namespace
}  // namespace sluice::runtime
