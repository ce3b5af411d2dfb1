#include "core/util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace sluice {

namespace {

constexpr std::uint32_t kPolynomialReflected = 0x82f63b78u;

using Tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr Tables make_tables() {
  Tables tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kPolynomialReflected : 0u);
    tables[0][i] = crc;
  }
  for (std::size_t t = 1; t < 8; ++t) {
    for (std::uint32_t i = 0; i < 256; ++i) {
      tables[t][i] = (tables[t - 1][i] >> 8) ^ tables[0][tables[t - 1][i] & 0xffu];
    }
  }
  return tables;
}

constexpr Tables kTables = make_tables();

using ExtendFunction = std::uint32_t (*)(std::uint32_t, const void*, std::size_t);

ExtendFunction choose_implementation() {
  return crc32c_hardware_available() ? crc32c_extend_hardware : crc32c_extend_portable;
}

const ExtendFunction g_extend = choose_implementation();

}  // namespace

std::uint32_t crc32c_extend_portable(std::uint32_t crc, const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  crc = ~crc;
  while (size >= 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes, 8);  // little-endian host assumed (x86_64, aarch64)
    word ^= crc;
    crc = kTables[7][word & 0xff] ^ kTables[6][(word >> 8) & 0xff] ^
          kTables[5][(word >> 16) & 0xff] ^ kTables[4][(word >> 24) & 0xff] ^
          kTables[3][(word >> 32) & 0xff] ^ kTables[2][(word >> 40) & 0xff] ^
          kTables[1][(word >> 48) & 0xff] ^ kTables[0][word >> 56];
    bytes += 8;
    size -= 8;
  }
  while (size-- > 0) crc = (crc >> 8) ^ kTables[0][(crc ^ *bytes++) & 0xff];
  return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc32c_extend_hardware(std::uint32_t crc,
                                                                        const void* data,
                                                                        std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint64_t state = ~crc;
  while (size >= 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes, 8);
    state = _mm_crc32_u64(state, word);
    bytes += 8;
    size -= 8;
  }
  auto state32 = static_cast<std::uint32_t>(state);
  while (size-- > 0) state32 = _mm_crc32_u8(state32, *bytes++);
  return ~state32;
}

bool crc32c_hardware_available() {
  __builtin_cpu_init();  // may run before libgcc initialised the CPU model (static init)
  return __builtin_cpu_supports("sse4.2");
}
#else
std::uint32_t crc32c_extend_hardware(std::uint32_t crc, const void* data, std::size_t size) {
  return crc32c_extend_portable(crc, data, size);
}
bool crc32c_hardware_available() { return false; }
#endif

std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t size) {
  return g_extend(crc, data, size);
}

}  // namespace sluice
