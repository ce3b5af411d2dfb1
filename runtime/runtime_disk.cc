#include "runtime/runtime_disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <limits>

namespace sluice::runtime {

namespace {

constexpr mode_t kFileMode = 0644;
constexpr mode_t kDirectoryMode = 0755;

std::unexpected<DiskError> fail(int error_number) {
  return std::unexpected(disk_error_from_errno(error_number));
}

bool offset_fits(std::uint64_t offset, std::size_t length) {
  constexpr auto kOffsetMax = static_cast<std::uint64_t>(std::numeric_limits<off_t>::max());
  return offset <= kOffsetMax && length <= kOffsetMax - offset;
}

int open_flags(OpenMode mode) {
  switch (mode) {
    case OpenMode::read_only:
      return O_RDONLY;
    case OpenMode::read_write:
      return O_RDWR;
    case OpenMode::create:
      return O_RDWR | O_CREAT;
    case OpenMode::create_new:
      return O_RDWR | O_CREAT | O_EXCL;
  }
  assert(false && "unknown OpenMode");
  return O_RDONLY;
}

// Runs fsync or fdatasync of `fd` on the IO thread. The job syncs a duplicate it owns, so a
// close() of the original (or the cancellation of the waiting fiber) cannot pull the fd away.
std::expected<void, DiskError> sync_on_io_thread(IoThread& io_thread, int fd, bool data_only) {
  const int duplicate = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (duplicate < 0) return fail(errno);
  const int error_number = io_thread.run([duplicate, data_only] {
    const int status = data_only ? ::fdatasync(duplicate) : ::fsync(duplicate);
    const int result = status == 0 ? 0 : errno;
    ::close(duplicate);
    return result;
  });
  if (error_number != 0) return fail(error_number);
  return {};
}

}  // namespace

DiskError disk_error_from_errno(int error_number) {
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return DiskError::no_space;
    case ENOENT:
      return DiskError::not_found;
    case EEXIST:
      return DiskError::already_exists;
    case ENOTDIR:
      return DiskError::not_a_directory;
    case EISDIR:
      return DiskError::is_a_directory;
    case ENOTEMPTY:
      return DiskError::not_empty;
    case EINVAL:
    case ENAMETOOLONG:
    case EFBIG:
      return DiskError::invalid_argument;
    default:
      return DiskError::io;  // EIO and every other device or system failure
  }
}

// ---- RuntimeFile ----

RuntimeFile::RuntimeFile(IoThread& io_thread, UniqueFd fd, std::uint64_t size_bytes)
    : io_thread_(io_thread), fd_(std::move(fd)), size_bytes_(size_bytes) {
  assert(fd_.valid());
}

std::expected<std::size_t, DiskError> RuntimeFile::read_at(std::uint64_t offset,
                                                           std::span<std::byte> buffer) {
  if (!fd_.valid()) return std::unexpected(DiskError::closed);
  if (!offset_fits(offset, buffer.size())) return std::unexpected(DiskError::invalid_argument);
  std::size_t read_bytes = 0;
  while (read_bytes < buffer.size()) {
    const ssize_t got = ::pread(fd_.get(), buffer.data() + read_bytes, buffer.size() - read_bytes,
                                static_cast<off_t>(offset + read_bytes));
    if (got < 0) {
      if (errno == EINTR) continue;
      return fail(errno);
    }
    if (got == 0) break;  // end of file: a short read
    read_bytes += static_cast<std::size_t>(got);
  }
  assert(read_bytes <= buffer.size());
  return read_bytes;
}

std::expected<void, DiskError> RuntimeFile::write_at(std::uint64_t offset,
                                                     std::span<const std::byte> bytes) {
  if (!fd_.valid()) return std::unexpected(DiskError::closed);
  if (!offset_fits(offset, bytes.size())) return std::unexpected(DiskError::invalid_argument);
  std::size_t written_bytes = 0;
  while (written_bytes < bytes.size()) {
    const ssize_t put =
        ::pwrite(fd_.get(), bytes.data() + written_bytes, bytes.size() - written_bytes,
                 static_cast<off_t>(offset + written_bytes));
    if (put < 0) {
      if (errno == EINTR) continue;
      const int error_number = errno;
      reload_size();
      return fail(error_number);
    }
    written_bytes += static_cast<std::size_t>(put);
  }
  size_bytes_ = std::max(size_bytes_, offset + bytes.size());
  return {};
}

void RuntimeFile::reload_size() {
  struct stat status {};
  if (::fstat(fd_.get(), &status) == 0) size_bytes_ = static_cast<std::uint64_t>(status.st_size);
}

std::expected<std::uint64_t, DiskError> RuntimeFile::append(std::span<const std::byte> bytes) {
  const std::uint64_t offset = size_bytes_;
  if (auto written = write_at(offset, bytes); !written) return std::unexpected(written.error());
  assert(size_bytes_ == offset + bytes.size());
  return offset;
}

std::expected<std::uint64_t, DiskError> RuntimeFile::size() {
  if (!fd_.valid()) return std::unexpected(DiskError::closed);
  return size_bytes_;
}

std::expected<void, DiskError> RuntimeFile::truncate(std::uint64_t size_bytes) {
  if (!fd_.valid()) return std::unexpected(DiskError::closed);
  if (!offset_fits(size_bytes, 0)) return std::unexpected(DiskError::invalid_argument);
  while (::ftruncate(fd_.get(), static_cast<off_t>(size_bytes)) != 0) {
    if (errno != EINTR) return fail(errno);
  }
  size_bytes_ = size_bytes;
  return {};
}

std::expected<void, DiskError> RuntimeFile::allocate(std::uint64_t offset, std::uint64_t length) {
  if (!fd_.valid()) return std::unexpected(DiskError::closed);
  if (!offset_fits(offset, length)) return std::unexpected(DiskError::invalid_argument);
  if (length == 0 || offset + length <= size_bytes_) return {};
  int status = 0;
  while ((status = ::fallocate(fd_.get(), 0, static_cast<off_t>(offset), static_cast<off_t>(length))) != 0 &&
         errno == EINTR) {
  }
  if (status != 0) {
    const int error_number = errno;
    reload_size();
    if (error_number == EOPNOTSUPP || error_number == ENOSYS) return std::unexpected(DiskError::invalid_argument);
    return fail(error_number);
  }
  size_bytes_ = std::max(size_bytes_, offset + length);
  return {};
}

std::expected<void, DiskError> RuntimeFile::datasync() {
  if (!fd_.valid()) return std::unexpected(DiskError::closed);
  return sync_on_io_thread(io_thread_, fd_.get(), /*data_only=*/true);
}

// posix_fadvise(DONTNEED) frees the clean cached pages of the range (a dirty page is only queued
// for writeback): on the IO thread, on a duplicate it owns, since freeing many pages takes a
// while and nobody waits for advice. Measured on this project's machine (a 2-vCPU VM): appending
// 1 MiB per fdatasync costs 0.9-1.4 ms of CPU per MB into ever new page-cache pages and 0.24-0.34
// with the pages behind the last 16 MiB dropped (pages that were used before are cheap again).
void RuntimeFile::drop_cache(std::uint64_t offset, std::uint64_t length) {
  if (!fd_.valid() || length == 0 || !offset_fits(offset, length)) return;
  const int duplicate = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
  if (duplicate < 0) return;
  io_thread_.post([duplicate, offset, length] {
    ::posix_fadvise(duplicate, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
    ::close(duplicate);
  });
}

void RuntimeFile::close() {
  fd_.reset();
}

// ---- RuntimeDisk ----

std::expected<std::unique_ptr<File>, DiskError> RuntimeDisk::open(const std::string& path,
                                                                  OpenMode mode) {
  UniqueFd fd(::open(path.c_str(), open_flags(mode) | O_CLOEXEC, kFileMode));
  if (!fd.valid()) return fail(errno);
  struct stat status {};
  if (::fstat(fd.get(), &status) != 0) return fail(errno);
  // O_RDONLY opens a directory without complaint; a File is always a regular file.
  if (S_ISDIR(status.st_mode)) return std::unexpected(DiskError::is_a_directory);
  return std::make_unique<RuntimeFile>(io_thread_, std::move(fd),
                                       static_cast<std::uint64_t>(status.st_size));
}

std::expected<void, DiskError> RuntimeDisk::create_directories(const std::string& path) {
  if (path.empty()) return std::unexpected(DiskError::invalid_argument);
  // Every prefix ending before a '/', then the whole path.
  for (std::size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    if (::mkdir(prefix.c_str(), kDirectoryMode) != 0) {
      if (errno != EEXIST) return fail(errno);
      struct stat status {};
      if (::stat(prefix.c_str(), &status) != 0) return fail(errno);
      if (!S_ISDIR(status.st_mode)) return std::unexpected(DiskError::not_a_directory);
    }
    if (end == std::string::npos) return {};
  }
}

std::expected<std::vector<std::string>, DiskError> RuntimeDisk::list(const std::string& path) {
  DIR* directory = ::opendir(path.c_str());
  if (directory == nullptr) return fail(errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(directory)) {
    const std::string_view name(entry->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int error_number = errno;
  ::closedir(directory);
  if (error_number != 0) return fail(error_number);
  std::sort(names.begin(), names.end());
  return names;
}

std::expected<void, DiskError> RuntimeDisk::rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return fail(errno);
  return {};
}

std::expected<void, DiskError> RuntimeDisk::remove(const std::string& path) {
  if (::unlink(path.c_str()) == 0) return {};
  if (errno != EISDIR) return fail(errno);
  if (::rmdir(path.c_str()) == 0) return {};
  // POSIX allows EEXIST for a non-empty directory.
  if (errno == EEXIST) return std::unexpected(DiskError::not_empty);
  return fail(errno);
}

std::expected<void, DiskError> RuntimeDisk::sync_directory(const std::string& path) {
  UniqueFd directory(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!directory.valid()) return fail(errno);
  return sync_on_io_thread(io_thread_, directory.get(), /*data_only=*/false);
}

std::expected<bool, DiskError> RuntimeDisk::exists(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return fail(errno);
}

}  // namespace sluice::runtime
