#pragma once
// Files and directories as broker code sees them. Errors are values. Durability is explicit:
// written bytes are durable only after File::datasync(); a created, renamed or removed name is
// durable only after Disk::sync_directory() of its parent directory.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

enum class DiskError : std::uint8_t {
  io,              // EIO and any other device error
  no_space,        // ENOSPC
  not_found,       // ENOENT
  already_exists,  // EEXIST (create_new on an existing name)
  not_a_directory,
  is_a_directory,
  not_empty,       // removing a non-empty directory
  invalid_argument,
  closed,          // the File was closed
};

std::string_view to_string(DiskError error);

enum class OpenMode : std::uint8_t {
  read_only,
  read_write,   // must exist
  create,       // read-write, created if missing
  create_new,   // read-write, fails with already_exists if present
};

class File {
 public:
  virtual ~File() = default;
  // Reads up to buffer.size() bytes at `offset`; fewer only at end of file.
  virtual std::expected<std::size_t, DiskError> read_at(std::uint64_t offset,
                                                        std::span<std::byte> buffer) = 0;
  virtual std::expected<void, DiskError> write_at(std::uint64_t offset,
                                                  std::span<const std::byte> bytes) = 0;
  // Writes at the current end of file; returns the offset written at.
  virtual std::expected<std::uint64_t, DiskError> append(std::span<const std::byte> bytes) = 0;
  virtual std::expected<std::uint64_t, DiskError> size() = 0;
  virtual std::expected<void, DiskError> truncate(std::uint64_t size) = 0;
  // Extends the file to at least `offset + length` bytes of zeros and reserves their blocks, as
  // fallocate(2) mode 0 does: later writes into the range allocate nothing, so their datasyncs
  // write less metadata. Never shrinks the file. Not durable until datasync(). invalid_argument
  // when the file system cannot preallocate (callers go on without).
  virtual std::expected<void, DiskError> allocate(std::uint64_t offset, std::uint64_t length) = 0;
  // Makes every byte written so far durable (fdatasync). May suspend the calling fiber.
  virtual std::expected<void, DiskError> datasync() = 0;
  // Advice: the bytes in [offset, offset + length) are durable and will not be read soon, so the
  // OS may drop its cached copy (posix_fadvise DONTNEED). Changes nothing anyone can read; never
  // fails and never suspends (the runtime does it on an IO thread).
  virtual void drop_cache(std::uint64_t offset, std::uint64_t length) = 0;
  virtual void close() = 0;
};

class Disk {
 public:
  virtual ~Disk() = default;
  virtual std::expected<std::unique_ptr<File>, DiskError> open(const std::string& path,
                                                               OpenMode mode) = 0;
  // Creates the directory and any missing parents; succeeds if it exists.
  virtual std::expected<void, DiskError> create_directories(const std::string& path) = 0;
  // Names in a directory (no "." or ".."), sorted.
  virtual std::expected<std::vector<std::string>, DiskError> list(const std::string& path) = 0;
  // Atomically replaces `to` if it exists.
  virtual std::expected<void, DiskError> rename(const std::string& from, const std::string& to) = 0;
  // Removes a file or an empty directory.
  virtual std::expected<void, DiskError> remove(const std::string& path) = 0;
  // Makes the directory's entries (creates, renames, removes) durable.
  virtual std::expected<void, DiskError> sync_directory(const std::string& path) = 0;
  virtual std::expected<bool, DiskError> exists(const std::string& path) = 0;
};

// "a/b" + "c" => "a/b/c"; path helpers that need no OS.
std::string join_path(std::string_view directory, std::string_view name);
std::string parent_path(std::string_view path);

}  // namespace sluice
