// Small OS-free pieces of the env interfaces: names of errors, address parsing, path joining.
#include <algorithm>
#include <charconv>
#include <vector>

#include "core/env/disk.h"
#include "core/env/net.h"

namespace sluice {

using Bytes = std::vector<std::byte>;

std::string_view to_string(NetError error) {
  switch (error) {
    case NetError::refused: return "connection refused";
    case NetError::reset: return "connection reset";
    case NetError::timed_out: return "timed out";
    case NetError::closed: return "connection closed";
    case NetError::address_in_use: return "address in use";
    case NetError::invalid_address: return "invalid address";
    case NetError::unreachable: return "unreachable";
    case NetError::io: return "network i/o error";
  }
  return "unknown network error";
}

std::string_view to_string(DiskError error) {
  switch (error) {
    case DiskError::io: return "i/o error";
    case DiskError::no_space: return "no space left on device";
    case DiskError::not_found: return "not found";
    case DiskError::already_exists: return "already exists";
    case DiskError::not_a_directory: return "not a directory";
    case DiskError::is_a_directory: return "is a directory";
    case DiskError::not_empty: return "directory not empty";
    case DiskError::invalid_argument: return "invalid argument";
    case DiskError::closed: return "file closed";
  }
  return "unknown disk error";
}

std::expected<Address, NetError> Address::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::unexpected(NetError::invalid_address);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::unexpected(NetError::invalid_address);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return std::unexpected(NetError::invalid_address);
  unsigned value = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (error != std::errc() || end != port.data() + port.size() || value > 65535) {
    return std::unexpected(NetError::invalid_address);
  }
  return Address{std::string(host), static_cast<std::uint16_t>(value)};
}

std::string Address::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::expected<void, NetError> Stream::read_exact(std::span<std::byte> buffer, Instant deadline) {
  std::size_t filled = 0;
  while (filled < buffer.size()) {
    auto got = read_some(buffer.subspan(filled), deadline);
    if (!got) return std::unexpected(got.error());
    filled += *got;
  }
  return {};
}

std::expected<void, NetError> Stream::send_file(File& file, std::uint64_t offset, std::size_t size_bytes,
                                                Instant deadline) {
  constexpr std::size_t kChunkBytes = 64 * 1024;
  Bytes chunk(std::min(size_bytes, kChunkBytes));
  while (size_bytes > 0) {
    const std::size_t want = std::min(size_bytes, chunk.size());
    auto got = file.read_at(offset, std::span<std::byte>(chunk).first(want));
    if (!got || *got == 0) return std::unexpected(NetError::io);
    if (auto written = write_all(std::span<const std::byte>(chunk).first(*got), deadline); !written) {
      return std::unexpected(written.error());
    }
    offset += *got;
    size_bytes -= *got;
  }
  return {};
}

std::string join_path(std::string_view directory, std::string_view name) {
  if (directory.empty()) return std::string(name);
  std::string result(directory);
  if (result.back() != '/') result.push_back('/');
  result.append(name);
  return result;
}

std::string parent_path(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

}  // namespace sluice
