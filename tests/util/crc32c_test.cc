#include "core/util/crc32c.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

std::uint32_t crc_of(const std::string& text) { return crc32c_extend(0, text.data(), text.size()); }

TEST(Crc32c, matches_known_vectors) {
  // RFC 3720 (iSCSI) test vectors and the classic check value.
  EXPECT_EQ(crc_of("123456789"), 0xe3069283u);
  EXPECT_EQ(crc_of(""), 0u);
  std::vector<unsigned char> zeros(32, 0);
  EXPECT_EQ(crc32c_extend(0, zeros.data(), zeros.size()), 0x8a9136aau);
  std::vector<unsigned char> ones(32, 0xff);
  EXPECT_EQ(crc32c_extend(0, ones.data(), ones.size()), 0x62a8ab43u);
  std::vector<unsigned char> ascending(32);
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<unsigned char>(i);
  EXPECT_EQ(crc32c_extend(0, ascending.data(), ascending.size()), 0x46dd794eu);
}

RC_GTEST_PROP(Crc32c, hardware_and_portable_agree, (const std::vector<unsigned char>& bytes)) {
  RC_ASSERT(crc32c_extend_hardware(0, bytes.data(), bytes.size()) ==
            crc32c_extend_portable(0, bytes.data(), bytes.size()));
}

// Past 1,536 bytes the hardware path runs three interleaved lanes and joins them: sizes around
// and well past that, unaligned starts and non-zero starting CRCs.
RC_GTEST_PROP(Crc32c, hardware_and_portable_agree_on_large_unaligned_buffers, ()) {
  const auto size = *rc::gen::inRange<std::size_t>(0, 20'000);
  const auto misalignment = *rc::gen::inRange<std::size_t>(0, 8);
  const auto start = *rc::gen::arbitrary<std::uint32_t>();
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  std::vector<unsigned char> storage(size + misalignment);
  std::uint64_t state = seed | 1;
  for (unsigned char& byte : storage) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    byte = static_cast<unsigned char>(state);
  }
  const unsigned char* bytes = storage.data() + misalignment;
  RC_ASSERT(crc32c_extend_hardware(start, bytes, size) == crc32c_extend_portable(start, bytes, size));
}

TEST(Crc32c, lane_boundaries_match_the_portable_table) {
  std::vector<unsigned char> bytes(3 * 512 * 3 + 17);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i * 131 + 7);
  for (std::size_t size : {1535u, 1536u, 1537u, 3071u, 3072u, 3073u, 4608u, 4625u}) {
    EXPECT_EQ(crc32c_extend_hardware(0x1234u, bytes.data(), size), crc32c_extend_portable(0x1234u, bytes.data(), size))
        << size;
  }
}

RC_GTEST_PROP(Crc32c, extend_equals_whole, (const std::vector<unsigned char>& bytes)) {
  const std::size_t split = bytes.empty() ? 0 : *rc::gen::inRange<std::size_t>(0, bytes.size());
  const std::uint32_t first = crc32c_extend(0, bytes.data(), split);
  RC_ASSERT(crc32c_extend(first, bytes.data() + split, bytes.size() - split) ==
            crc32c_extend(0, bytes.data(), bytes.size()));
}

RC_GTEST_PROP(Crc32c, detects_every_single_bit_flip, (const std::vector<unsigned char>& input)) {
  RC_PRE(!input.empty());
  std::vector<unsigned char> bytes = input;
  const std::uint32_t before = crc32c_extend(0, bytes.data(), bytes.size());
  const std::size_t bit = *rc::gen::inRange<std::size_t>(0, bytes.size() * 8);
  bytes[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
  RC_ASSERT(crc32c_extend(0, bytes.data(), bytes.size()) != before);
}

}  // namespace
}  // namespace sluice
