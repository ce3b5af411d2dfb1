#pragma once
// Files and directories for the runtime. Reads, writes and metadata calls run on the reactor
// thread (page-cache speed); the calls that wait for the device (fdatasync, fsync of a
// directory) run on the IoThread while the calling fiber is suspended, so the reactor never
// blocks on a flush.
//
// Concurrency: reactor thread only. Every fd is opened O_CLOEXEC.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/env/disk.h"
#include "runtime/io_thread.h"
#include "runtime/unique_fd.h"

namespace sluice::runtime {

// Maps a file-system errno to its DiskError (EIO -> io, ENOSPC -> no_space, ...).
DiskError disk_error_from_errno(int error_number);

class RuntimeFile final : public File {
 public:
  RuntimeFile(IoThread& io_thread, UniqueFd fd, std::uint64_t size_bytes);

  std::expected<std::size_t, DiskError> read_at(std::uint64_t offset,
                                                std::span<std::byte> buffer) override;
  std::expected<void, DiskError> write_at(std::uint64_t offset,
                                          std::span<const std::byte> bytes) override;
  std::expected<std::uint64_t, DiskError> append(std::span<const std::byte> bytes) override;
  std::expected<std::uint64_t, DiskError> size() override;
  std::expected<void, DiskError> truncate(std::uint64_t size_bytes) override;
  std::expected<void, DiskError> allocate(std::uint64_t offset, std::uint64_t length) override;
  std::expected<void, DiskError> datasync() override;
  void drop_cache(std::uint64_t offset, std::uint64_t length) override;
  void close() override;
  // The descriptor, for sendfile(2) from RuntimeStream::send_file; -1 once closed.
  int native_handle() const { return fd_.get(); }

 private:
  IoThread& io_thread_;
  UniqueFd fd_;
  // After a write or fallocate that failed part of the way (ENOSPC), which may still have grown
  // the file: takes size_bytes_ from the file again.
  void reload_size();

  // Tracked rather than fstat'ed on every append: this process is the file's only writer.
  std::uint64_t size_bytes_;
};

class RuntimeDisk final : public Disk {
 public:
  explicit RuntimeDisk(IoThread& io_thread) : io_thread_(io_thread) {}

  std::expected<std::unique_ptr<File>, DiskError> open(const std::string& path,
                                                       OpenMode mode) override;
  std::expected<void, DiskError> create_directories(const std::string& path) override;
  std::expected<std::vector<std::string>, DiskError> list(const std::string& path) override;
  std::expected<void, DiskError> rename(const std::string& from, const std::string& to) override;
  std::expected<void, DiskError> remove(const std::string& path) override;
  std::expected<void, DiskError> sync_directory(const std::string& path) override;
  std::expected<bool, DiskError> exists(const std::string& path) override;

 private:
  IoThread& io_thread_;
};

}  // namespace sluice::runtime
