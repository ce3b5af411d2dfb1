#pragma once
// Table-driven Kafka message codecs. Each API message is one compact description: a list of
// fields, each with the versions it exists in, the versions in which it may be null, and (for
// flexible versions, KIP-482) an optional tag. One generic decoder and encoder walk these
// descriptions for every API and version, including compact encodings and tagged fields.
// Written from the facts in Kafka's message schemas (see ../shared/PROTOCOL.md).

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

namespace sluice::protocol {

struct VersionRange {
  std::int16_t min = 0;
  std::int16_t max = INT16_MAX;
  constexpr bool contains(std::int16_t version) const { return version >= min && version <= max; }
};

inline constexpr VersionRange kAllVersions{0, INT16_MAX};
inline constexpr VersionRange kNoVersions{1, 0};

constexpr VersionRange since(std::int16_t version) { return {version, INT16_MAX}; }
constexpr VersionRange until(std::int16_t version) { return {0, version}; }
constexpr VersionRange between(std::int16_t from, std::int16_t to) { return {from, to}; }

enum class FieldType : std::uint8_t {
  int8,
  int16,
  int32,
  int64,
  uint16,
  boolean,
  float64,
  uuid,
  string,   // compact in flexible versions
  bytes,    // compact in flexible versions
  records,  // nullable bytes holding record batches
  array,    // of `element` (a primitive) or of structs (`fields`)
  structure,
};

struct Field;

// A list of fields: a message body or a nested struct.
struct Fields {
  const Field* data = nullptr;
  std::size_t size = 0;
  std::span<const Field> span() const;  // defined below, once Field is complete
};

struct Field {
  std::string_view name{};
  FieldType type = FieldType::int32;
  VersionRange versions = kAllVersions;
  VersionRange nullable = kNoVersions;
  std::int32_t tag = -1;          // >= 0: a tagged field (flexible versions only)
  FieldType element = FieldType::structure;  // arrays: the element type
  Fields fields{};                // structs and arrays of structs
  std::int64_t default_int = 0;   // for integer fields absent from a version (e.g. -1 for ids)
};

inline std::span<const Field> Fields::span() const { return std::span<const Field>(data, size); }

// Builds a Fields view over a static array of fields.
template <std::size_t N>
constexpr Fields fields_of(const Field (&array)[N]) {
  return Fields{array, N};
}

struct MessageSchema {
  std::int16_t api_key = -1;
  std::string_view name{};
  VersionRange valid{};        // versions Sluice implements (advertised in ApiVersions)
  std::int16_t flexible_from = INT16_MAX;  // first flexible version (KIP-482)
  Fields request{};
  Fields response{};
  bool flexible(std::int16_t version) const { return version >= flexible_from; }
};

}  // namespace sluice::protocol
