#include "core/storage/storage_files.h"

#include "core/util/bytes.h"
#include "core/util/crc32c.h"

namespace sluice::storage {

namespace {
constexpr std::size_t kSealBytes = 4;
}  // namespace

std::expected<std::vector<std::byte>, DiskError> read_whole_file(Disk& disk, const std::string& path) {
  auto file = disk.open(path, OpenMode::read_only);
  if (!file) return std::unexpected(file.error());
  auto size = (*file)->size();
  if (!size) return std::unexpected(size.error());
  std::vector<std::byte> image(*size);
  auto got = (*file)->read_at(0, image);
  (*file)->close();
  if (!got) return std::unexpected(got.error());
  image.resize(*got);
  return image;
}

std::expected<void, DiskError> write_whole_file(Disk& disk, const std::string& path,
                                                std::span<const std::byte> image) {
  auto file = disk.open(path, OpenMode::create);
  if (!file) return std::unexpected(file.error());
  auto written = (*file)->truncate(0);
  if (written) written = (*file)->write_at(0, image);
  if (written) written = (*file)->datasync();
  (*file)->close();
  return written;
}

std::expected<void, DiskError> replace_file_durably(Disk& disk, const std::string& path,
                                                    std::span<const std::byte> image) {
  const std::string temporary = path + ".tmp";
  auto replaced = write_whole_file(disk, temporary, image);
  if (replaced) replaced = disk.rename(temporary, path);
  if (replaced) replaced = disk.sync_directory(parent_path(path));
  return replaced;
}

std::expected<void, DiskError> remove_if_present(Disk& disk, const std::string& path) {
  auto removed = disk.remove(path);
  if (!removed && removed.error() != DiskError::not_found) return removed;
  return {};
}

std::vector<std::byte> seal(std::vector<std::byte> body) {
  const std::uint32_t checksum = crc32c(body);
  ByteWriter(body).u32(checksum);
  return body;
}

std::optional<std::span<const std::byte>> unseal(std::span<const std::byte> image) {
  if (image.size() < kSealBytes) return std::nullopt;
  const auto body = image.first(image.size() - kSealBytes);
  ByteReader trailer(image.last(kSealBytes));
  if (crc32c(body) != trailer.u32()) return std::nullopt;
  return body;
}

}  // namespace sluice::storage
