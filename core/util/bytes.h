#pragma once
// Big-endian (network order) encoding into a growable buffer and bounds-checked decoding from a
// span. The reader never reads past its span: a short or malformed input makes ok() false and
// every later read return zero, so parsers check once at the end.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

using Bytes = std::vector<std::byte>;

inline std::span<const std::byte> as_bytes(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}
inline std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

class ByteWriter {
 public:
  explicit ByteWriter(Bytes& out) : out_(out) {}
  void u8(std::uint8_t value) { out_.push_back(static_cast<std::byte>(value)); }
  void u16(std::uint16_t value) { put_be(value, 2); }
  void u32(std::uint32_t value) { put_be(value, 4); }
  void u64(std::uint64_t value) { put_be(value, 8); }
  void bytes(std::span<const std::byte> data) { out_.insert(out_.end(), data.begin(), data.end()); }
  std::size_t size() const { return out_.size(); }
  // Overwrites a u32 written earlier (length prefixes, checksums).
  void patch_u32(std::size_t position, std::uint32_t value) {
    for (int i = 0; i < 4; ++i) out_[position + i] = static_cast<std::byte>(value >> (24 - 8 * i));
  }

 private:
  void put_be(std::uint64_t value, int width) {
    for (int i = width - 1; i >= 0; --i) out_.push_back(static_cast<std::byte>(value >> (8 * i)));
  }
  Bytes& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> in) : in_(in) {}
  std::uint8_t u8() { return static_cast<std::uint8_t>(get_be(1)); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(get_be(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(get_be(4)); }
  std::uint64_t u64() { return get_be(8); }
  std::span<const std::byte> bytes(std::size_t count) {
    if (!ok_ || remaining() < count) {
      ok_ = false;
      return {};
    }
    auto result = in_.subspan(position_, count);
    position_ += count;
    return result;
  }
  bool ok() const { return ok_; }
  std::size_t position() const { return position_; }
  std::size_t remaining() const { return in_.size() - position_; }

 private:
  std::uint64_t get_be(std::size_t width) {
    if (!ok_ || remaining() < width) {
      ok_ = false;
      return 0;
    }
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i) value = (value << 8) | static_cast<std::uint8_t>(in_[position_ + i]);
    position_ += width;
    return value;
  }
  std::span<const std::byte> in_;
  std::size_t position_ = 0;
  bool ok_ = true;
};

}  // namespace sluice
