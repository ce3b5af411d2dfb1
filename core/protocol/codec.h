#pragma once
// The one generic decoder/encoder for every Kafka message described in core/protocol/messages.h.

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "core/protocol/schema.h"
#include "core/protocol/value.h"
#include "core/util/bytes.h"

namespace sluice::protocol {

enum class DecodeError : std::uint8_t {
  truncated,           // the input ends inside a field
  negative_length,     // a length below -1 (or a null where the version forbids it)
  bad_varint,          // more than 5 (32-bit) or 10 (64-bit) bytes
  too_many_elements,   // an array count larger than the bytes left could hold
  bad_tagged_field,    // a tagged field whose size runs past the input, or tags out of order
  trailing_bytes,      // bytes left after the message body
  unsupported_version, // not a version this schema describes
  unknown_api,
};

std::string_view to_string(DecodeError error);

// Decodes a struct (message body or nested struct) of `version`.
std::expected<StructValue, DecodeError> decode_struct(Fields fields, std::int16_t version, bool flexible,
                                                      ByteReader& reader);
// Encodes a struct of `version`; fields absent from the version are skipped.
void encode_struct(Fields fields, std::int16_t version, bool flexible, const StructValue& value, Bytes& out);

// Where FileRecords go: their bytes belong at `position` of the encoded output.
struct Splice {
  std::size_t position = 0;
  FileRecords records;
};
// The same, for messages that may hold FileRecords (records fields): their lengths are encoded
// and their places noted in `splices`, in order.
void encode_struct(Fields fields, std::int16_t version, bool flexible, const StructValue& value, Bytes& out,
                   std::vector<Splice>& splices);

// A whole message body: decode_struct plus "no trailing bytes".
std::expected<StructValue, DecodeError> decode_message(Fields fields, std::int16_t version, bool flexible,
                                                       std::span<const std::byte> body);

struct RequestHeader {
  std::int16_t api_key = 0;
  std::int16_t api_version = 0;
  std::int32_t correlation_id = 0;
  std::optional<std::string> client_id;
};

// Request header v1 (v2 adds a tagged-field section, read by skip_tagged_fields when the API
// version is flexible; client_id stays a non-compact nullable string in both).
std::expected<RequestHeader, DecodeError> decode_request_header(ByteReader& reader);
std::expected<void, DecodeError> skip_tagged_fields(ByteReader& reader);
void encode_request_header(const RequestHeader& header, bool flexible, Bytes& out);
// Response header v0 (correlation id) or v1 (plus an empty tagged-field section).
void encode_response_header(std::int32_t correlation_id, bool flexible, Bytes& out);

// Unsigned LEB128 varints (compact lengths and tag numbers).
void write_uvarint(Bytes& out, std::uint64_t value);
std::optional<std::uint64_t> read_uvarint(ByteReader& reader, int bytes_max = 5);

}  // namespace sluice::protocol
