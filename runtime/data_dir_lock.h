#pragma once
// An exclusive lock on a data directory for the life of the process: `<data_dir>/sluice.lock`,
// held with flock(2) (released by the kernel however the process ends, so a crash leaves no stale
// lock) and holding the owner's pid for the error message a second instance prints.

#include <expected>
#include <string>

#include "runtime/unique_fd.h"

namespace sluice::runtime {

class DataDirLock {
 public:
  // Creates the directory if missing and takes the lock. The error is a sentence naming the
  // directory (and the pid holding it, when another process does).
  static std::expected<DataDirLock, std::string> acquire(const std::string& data_dir);

 private:
  explicit DataDirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace sluice::runtime
