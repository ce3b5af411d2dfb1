#include "runtime/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace sluice::runtime {

std::expected<DataDirLock, std::string> DataDirLock::acquire(const std::string& data_dir) {
  std::error_code error;
  std::filesystem::create_directories(data_dir, error);
  if (error)
    return std::unexpected("cannot create data directory '" + data_dir + "': " + error.message());
  const std::string path = data_dir + "/sluice.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) return std::unexpected("cannot open '" + path + "': " + std::strerror(errno));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK)
      return std::unexpected("cannot lock '" + path + "': " + std::strerror(errno));
    char owner[32] = {};
    const ssize_t got = ::pread(fd.get(), owner, sizeof owner - 1, 0);
    std::string pid =
        got > 0 ? std::string(owner, static_cast<std::size_t>(got)) : std::string("unknown");
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return std::unexpected("data directory '" + data_dir +
                           "' is in use by another sluice process (pid " + pid +
                           "); stop it first, or give this one its own --data-dir");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return std::unexpected("cannot write '" + path + "': " + std::strerror(errno));
  }
  return DataDirLock(std::move(fd));
}

}  // namespace sluice::runtime
