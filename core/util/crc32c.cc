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

// The hardware path runs three independent CRCs over adjacent lanes of kLaneBytes (the crc32
// instruction has a latency of three cycles but issues every cycle, so one chain uses a third of
// it) and joins them. CRC without its final inversion is linear: crc(s, A+B) = shift(crc(s, A),
// |B|) ^ crc(0, B), where shift(x, n) runs x through n zero bytes. shift by kLaneBytes is a
// 32x32 bit matrix, applied as four 256-entry tables, built from the 32 basis vectors.
constexpr std::size_t kLaneBytes = 512;

using ShiftTables = std::array<std::array<std::uint32_t, 256>, 4>;

constexpr std::uint32_t shift_by_zeros(std::uint32_t state, std::size_t zero_bytes) {
  for (std::size_t i = 0; i < zero_bytes; ++i) state = (state >> 8) ^ kTables[0][state & 0xffu];
  return state;
}

constexpr ShiftTables make_lane_shift_tables() {
  std::array<std::uint32_t, 32> basis{};
  for (std::size_t bit = 0; bit < 32; ++bit) basis[bit] = shift_by_zeros(std::uint32_t{1} << bit, kLaneBytes);
  ShiftTables tables{};
  for (std::size_t t = 0; t < 4; ++t) {
    for (std::uint32_t value = 0; value < 256; ++value) {
      std::uint32_t shifted = 0;
      for (std::size_t bit = 0; bit < 8; ++bit) {
        if ((value >> bit) & 1u) shifted ^= basis[t * 8 + bit];
      }
      tables[t][value] = shifted;
    }
  }
  return tables;
}

constexpr ShiftTables kLaneShift = make_lane_shift_tables();

[[maybe_unused]] inline std::uint32_t shift_lane(std::uint32_t state) {
  return kLaneShift[0][state & 0xffu] ^ kLaneShift[1][(state >> 8) & 0xffu] ^ kLaneShift[2][(state >> 16) & 0xffu] ^
         kLaneShift[3][state >> 24];
}

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
  while (size >= 3 * kLaneBytes) {
    std::uint64_t lane_a = state;
    std::uint64_t lane_b = 0;
    std::uint64_t lane_c = 0;
    for (std::size_t at = 0; at < kLaneBytes; at += 8) {
      std::uint64_t word_a;
      std::uint64_t word_b;
      std::uint64_t word_c;
      std::memcpy(&word_a, bytes + at, 8);
      std::memcpy(&word_b, bytes + kLaneBytes + at, 8);
      std::memcpy(&word_c, bytes + 2 * kLaneBytes + at, 8);
      lane_a = _mm_crc32_u64(lane_a, word_a);
      lane_b = _mm_crc32_u64(lane_b, word_b);
      lane_c = _mm_crc32_u64(lane_c, word_c);
    }
    const std::uint32_t joined_ab = shift_lane(static_cast<std::uint32_t>(lane_a)) ^ static_cast<std::uint32_t>(lane_b);
    state = shift_lane(joined_ab) ^ static_cast<std::uint32_t>(lane_c);
    bytes += 3 * kLaneBytes;
    size -= 3 * kLaneBytes;
  }
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
