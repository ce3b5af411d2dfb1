#pragma once
// CRC-32C (Castagnoli), the checksum of Kafka record batch v2 and of Sluice's own on-disk frames.
// Uses the SSE4.2 crc32 instruction when the CPU has it (chosen once at run time), else a
// portable slicing-by-8 table.

#include <cstddef>
#include <cstdint>
#include <span>

namespace sluice {

// Continues a CRC: crc32c(crc32c(0, a), b) == crc32c(0, a + b).
std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size);

inline std::uint32_t crc32c(std::span<const std::byte> bytes) {
  return crc32c_extend(0, bytes.data(), bytes.size());
}

// The implementations, exposed so tests can check they agree and benchmarks can compare them.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t size);
std::uint32_t crc32c_extend_hardware(std::uint32_t crc, const void* data, std::size_t size);
bool crc32c_hardware_available();

}  // namespace sluice
