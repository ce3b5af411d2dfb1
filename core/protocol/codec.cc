#include "core/protocol/codec.h"

#include <bit>
#include <cstring>

namespace sluice::protocol {

namespace {

// Reads fail closed: ByteReader returns 0 past its end and reports !ok().
std::int64_t read_int(ByteReader& reader, FieldType type) {
  switch (type) {
    case FieldType::int8: return static_cast<std::int8_t>(reader.u8());
    case FieldType::int16: return static_cast<std::int16_t>(reader.u16());
    case FieldType::int32: return static_cast<std::int32_t>(reader.u32());
    case FieldType::int64: return static_cast<std::int64_t>(reader.u64());
    case FieldType::uint16: return reader.u16();
    default: assert(false); return 0;
  }
}

void write_int(Bytes& out, FieldType type, std::int64_t value) {
  ByteWriter writer(out);
  switch (type) {
    case FieldType::int8: writer.u8(static_cast<std::uint8_t>(value)); break;
    case FieldType::int16:
    case FieldType::uint16: writer.u16(static_cast<std::uint16_t>(value)); break;
    case FieldType::int32: writer.u32(static_cast<std::uint32_t>(value)); break;
    case FieldType::int64: writer.u64(static_cast<std::uint64_t>(value)); break;
    default: assert(false);
  }
}

bool is_integer(FieldType type) {
  return type == FieldType::int8 || type == FieldType::int16 || type == FieldType::int32 ||
         type == FieldType::int64 || type == FieldType::uint16;
}

// Length of a string/bytes/array: -1 means null. Compact forms store length + 1.
std::expected<std::int64_t, DecodeError> read_length(ByteReader& reader, bool flexible, FieldType type) {
  if (flexible) {
    auto raw = read_uvarint(reader);
    if (!raw) return std::unexpected(reader.ok() ? DecodeError::bad_varint : DecodeError::truncated);
    return static_cast<std::int64_t>(*raw) - 1;
  }
  const std::int64_t length = type == FieldType::string ? read_int(reader, FieldType::int16) : read_int(reader, FieldType::int32);
  if (!reader.ok()) return std::unexpected(DecodeError::truncated);
  if (length < -1) return std::unexpected(DecodeError::negative_length);
  return length;
}

void write_length(Bytes& out, bool flexible, FieldType type, std::int64_t length) {
  if (flexible) {
    write_uvarint(out, static_cast<std::uint64_t>(length + 1));
  } else if (type == FieldType::string) {
    write_int(out, FieldType::int16, length);
  } else {
    write_int(out, FieldType::int32, length);
  }
}

std::expected<Value, DecodeError> decode_value(const Field& field, FieldType type, std::int16_t version, bool flexible,
                                               ByteReader& reader);

std::expected<Value, DecodeError> decode_array(const Field& field, std::int16_t version, bool flexible, ByteReader& reader) {
  auto count = read_length(reader, flexible, FieldType::array);
  if (!count) return std::unexpected(count.error());
  if (*count < 0) {
    if (!field.nullable.contains(version)) return std::unexpected(DecodeError::negative_length);
    return Value(Null{});
  }
  // Every element takes at least one byte (empty structs excepted, which Kafka does not have):
  // a count beyond what is left is a lie, refused before allocating.
  if (static_cast<std::uint64_t>(*count) > reader.remaining()) return std::unexpected(DecodeError::too_many_elements);
  if (field.element == FieldType::structure) {
    std::vector<StructValue> items;
    items.reserve(static_cast<std::size_t>(*count));
    for (std::int64_t i = 0; i < *count; ++i) {
      auto item = decode_struct(field.fields, version, flexible, reader);
      if (!item) return std::unexpected(item.error());
      items.push_back(std::move(*item));
    }
    return Value(std::move(items));
  }
  Value::Array items;
  items.reserve(static_cast<std::size_t>(*count));
  for (std::int64_t i = 0; i < *count; ++i) {
    auto item = decode_value(field, field.element, version, flexible, reader);
    if (!item) return std::unexpected(item.error());
    items.push_back(std::move(*item));
  }
  return Value(std::move(items));
}

std::expected<Value, DecodeError> decode_value(const Field& field, FieldType type, std::int16_t version, bool flexible,
                                               ByteReader& reader) {
  if (is_integer(type)) {
    const std::int64_t value = read_int(reader, type);
    if (!reader.ok()) return std::unexpected(DecodeError::truncated);
    return Value(value);
  }
  switch (type) {
    case FieldType::boolean: {
      const std::uint8_t value = reader.u8();
      if (!reader.ok()) return std::unexpected(DecodeError::truncated);
      return Value(value != 0);
    }
    case FieldType::float64: {
      const std::uint64_t bits = reader.u64();
      if (!reader.ok()) return std::unexpected(DecodeError::truncated);
      return Value(std::bit_cast<double>(bits));
    }
    case FieldType::uuid: {
      auto bytes = reader.bytes(16);
      if (!reader.ok()) return std::unexpected(DecodeError::truncated);
      Uuid uuid;
      std::memcpy(uuid.data(), bytes.data(), 16);
      return Value(uuid);
    }
    case FieldType::string:
    case FieldType::bytes:
    case FieldType::records: {
      auto length = read_length(reader, flexible, type);
      if (!length) return std::unexpected(length.error());
      if (*length < 0) {
        if (type != FieldType::records && !field.nullable.contains(version)) {
          return std::unexpected(DecodeError::negative_length);
        }
        return Value(Null{});
      }
      auto bytes = reader.bytes(static_cast<std::size_t>(*length));
      if (!reader.ok()) return std::unexpected(DecodeError::truncated);
      if (type == FieldType::string) return Value(std::string(as_text(bytes)));
      return Value(Bytes(bytes.begin(), bytes.end()));
    }
    case FieldType::array: return decode_array(field, version, flexible, reader);
    case FieldType::structure: {
      auto nested = decode_struct(field.fields, version, flexible, reader);
      if (!nested) return std::unexpected(nested.error());
      return Value(std::move(*nested));
    }
    default: break;
  }
  assert(false && "unhandled field type");
  return std::unexpected(DecodeError::truncated);
}

void encode_value(const Field& field, FieldType type, std::int16_t version, bool flexible, const Value& value, Bytes& out,
                  std::vector<Splice>* splices);
void encode_fields(Fields fields, std::int16_t version, bool flexible, const StructValue& value, Bytes& out,
                   std::vector<Splice>* splices);

void encode_array(const Field& field, std::int16_t version, bool flexible, const Value& value, Bytes& out,
                  std::vector<Splice>* splices) {
  if (value.is_null()) {
    assert(field.nullable.contains(version));
    write_length(out, flexible, FieldType::array, -1);
    return;
  }
  if (field.element == FieldType::structure) {
    const auto& items = value.as_structs();
    write_length(out, flexible, FieldType::array, static_cast<std::int64_t>(items.size()));
    for (const auto& item : items) encode_fields(field.fields, version, flexible, item, out, splices);
    return;
  }
  const auto& items = value.as_array();
  write_length(out, flexible, FieldType::array, static_cast<std::int64_t>(items.size()));
  for (const auto& item : items) encode_value(field, field.element, version, flexible, item, out, splices);
}

void encode_value(const Field& field, FieldType type, std::int16_t version, bool flexible, const Value& value,
                  Bytes& out, std::vector<Splice>* splices) {
  if (is_integer(type)) {
    write_int(out, type, value.as_int());
    return;
  }
  switch (type) {
    case FieldType::boolean: out.push_back(std::byte{value.as_bool() ? std::uint8_t{1} : std::uint8_t{0}}); return;
    case FieldType::float64: ByteWriter(out).u64(std::bit_cast<std::uint64_t>(value.as_double())); return;
    case FieldType::uuid: {
      const auto& uuid = value.as_uuid();
      for (auto byte : uuid) out.push_back(static_cast<std::byte>(byte));
      return;
    }
    case FieldType::string:
    case FieldType::bytes:
    case FieldType::records: {
      if (value.is_null()) {
        write_length(out, flexible, type, -1);
        return;
      }
      if (value.is_file_records()) {
        assert(type == FieldType::records && splices != nullptr && "FileRecords need the splicing encoder");
        const FileRecords& records = value.as_file_records();
        write_length(out, flexible, type, static_cast<std::int64_t>(records.size_bytes));
        splices->push_back(Splice{out.size(), records});
        return;
      }
      if (type == FieldType::string) {
        const auto& text = value.as_string();
        write_length(out, flexible, type, static_cast<std::int64_t>(text.size()));
        ByteWriter(out).bytes(sluice::as_bytes(text));
      } else {
        const auto& bytes = value.as_bytes();
        write_length(out, flexible, type, static_cast<std::int64_t>(bytes.size()));
        ByteWriter(out).bytes(bytes);
      }
      return;
    }
    case FieldType::array: encode_array(field, version, flexible, value, out, splices); return;
    case FieldType::structure: encode_fields(field.fields, version, flexible, value.as_struct(), out, splices); return;
    default: break;
  }
  assert(false && "unhandled field type");
}

// Tagged fields are written only when they differ from their default, as Kafka does.
bool differs_from_default(const Field& field, const Value& value) {
  if (value.is_null()) return false;
  if (is_integer(field.type)) return value.as_int() != field.default_int;
  switch (field.type) {
    case FieldType::boolean: return value.as_bool();
    case FieldType::string: return !value.as_string().empty();
    case FieldType::bytes:
    case FieldType::records: return !value.as_bytes().empty();
    case FieldType::array:
      return field.element == FieldType::structure ? !value.as_structs().empty() : !value.as_array().empty();
    default: return true;
  }
}

}  // namespace

std::string_view to_string(DecodeError error) {
  switch (error) {
    case DecodeError::truncated: return "truncated";
    case DecodeError::negative_length: return "invalid length";
    case DecodeError::bad_varint: return "malformed varint";
    case DecodeError::too_many_elements: return "array count exceeds the message";
    case DecodeError::bad_tagged_field: return "malformed tagged field";
    case DecodeError::trailing_bytes: return "trailing bytes after the message";
    case DecodeError::unsupported_version: return "unsupported version";
    case DecodeError::unknown_api: return "unknown api key";
  }
  return "unknown decode error";
}

void write_uvarint(Bytes& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<std::byte>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<std::byte>(value));
}

std::optional<std::uint64_t> read_uvarint(ByteReader& reader, int bytes_max) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes_max; ++i) {
    const std::uint8_t byte = reader.u8();
    if (!reader.ok()) return std::nullopt;
    value |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) return value;
  }
  return std::nullopt;
}

StructValue StructValue::with_defaults(Fields schema) {
  StructValue result;
  result.schema = schema;
  result.values.reserve(schema.size);
  for (const Field& field : schema.span()) {
    if (is_integer(field.type)) {
      result.values.emplace_back(field.default_int);
      continue;
    }
    switch (field.type) {
      case FieldType::boolean: result.values.emplace_back(false); break;
      case FieldType::float64: result.values.emplace_back(0.0); break;
      case FieldType::uuid: result.values.emplace_back(Uuid{}); break;
      case FieldType::string:
      case FieldType::bytes:
        // Kafka's `"default": "null"`: a field nullable in every version that has it is null when
        // absent (e.g. JoinGroup v2's group_instance_id: a dynamic member, not an empty id).
        if (field.nullable.min <= field.nullable.max && field.nullable.min <= field.versions.min) {
          result.values.emplace_back(Null{});
        } else if (field.type == FieldType::string) {
          result.values.emplace_back(std::string());
        } else {
          result.values.emplace_back(Bytes());
        }
        break;
      case FieldType::records: result.values.emplace_back(Null{}); break;
      case FieldType::array:
        if (field.element == FieldType::structure) {
          result.values.emplace_back(std::vector<StructValue>());
        } else {
          result.values.emplace_back(Value::Array());
        }
        break;
      case FieldType::structure: result.values.emplace_back(with_defaults(field.fields)); break;
      default: result.values.emplace_back(Null{});
    }
  }
  return result;
}

std::size_t StructValue::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < schema.size; ++i) {
    if (schema.data[i].name == name) return i;
  }
  assert(false && "no such field in the schema");
  return 0;
}

std::optional<std::string> StructValue::get_nullable_string(std::string_view name) const {
  const Value& value = (*this)[name];
  if (value.is_null()) return std::nullopt;
  return value.as_string();
}

StructValue& StructValue::add(std::string_view array_name) {
  const std::size_t index = index_of(array_name);
  auto& items = values[index].as_structs();
  items.push_back(with_defaults(schema.data[index].fields));
  return items.back();
}

std::expected<StructValue, DecodeError> decode_struct(Fields fields, std::int16_t version, bool flexible,
                                                      ByteReader& reader) {
  StructValue result = StructValue::with_defaults(fields);
  for (std::size_t i = 0; i < fields.size; ++i) {
    const Field& field = fields.data[i];
    if (!field.versions.contains(version) || field.tag >= 0) continue;
    auto value = decode_value(field, field.type, version, flexible, reader);
    if (!value) return std::unexpected(value.error());
    result.values[i] = std::move(*value);
  }
  if (!flexible) return result;
  auto count = read_uvarint(reader);
  if (!count) return std::unexpected(DecodeError::bad_tagged_field);
  if (*count > reader.remaining()) return std::unexpected(DecodeError::bad_tagged_field);
  std::int64_t previous_tag = -1;
  for (std::uint64_t t = 0; t < *count; ++t) {
    auto tag = read_uvarint(reader);
    auto size = read_uvarint(reader);
    if (!tag || !size || static_cast<std::int64_t>(*tag) <= previous_tag || *size > reader.remaining()) {
      return std::unexpected(DecodeError::bad_tagged_field);
    }
    previous_tag = static_cast<std::int64_t>(*tag);
    ByteReader tagged(reader.bytes(static_cast<std::size_t>(*size)));
    for (std::size_t i = 0; i < fields.size; ++i) {
      const Field& field = fields.data[i];
      if (field.tag != static_cast<std::int32_t>(*tag) || !field.versions.contains(version)) continue;
      auto value = decode_value(field, field.type, version, flexible, tagged);
      if (!value) return std::unexpected(DecodeError::bad_tagged_field);
      result.values[i] = std::move(*value);
    }
    // Unknown tags are skipped: that is what tagged fields are for.
  }
  return result;
}

namespace {

void encode_fields(Fields fields, std::int16_t version, bool flexible, const StructValue& value, Bytes& out,
                   std::vector<Splice>* splices) {
  assert(value.values.size() == fields.size);
  for (std::size_t i = 0; i < fields.size; ++i) {
    const Field& field = fields.data[i];
    if (!field.versions.contains(version) || field.tag >= 0) continue;
    encode_value(field, field.type, version, flexible, value.values[i], out, splices);
  }
  if (!flexible) return;
  std::vector<std::size_t> tagged;
  for (std::size_t i = 0; i < fields.size; ++i) {
    const Field& field = fields.data[i];
    if (field.tag >= 0 && field.versions.contains(version) && differs_from_default(field, value.values[i])) {
      tagged.push_back(i);
    }
  }
  write_uvarint(out, tagged.size());
  for (std::size_t i : tagged) {  // fields are declared in tag order
    const Field& field = fields.data[i];
    Bytes body;
    encode_value(field, field.type, version, flexible, value.values[i], body, nullptr);
    write_uvarint(out, static_cast<std::uint64_t>(field.tag));
    write_uvarint(out, body.size());
    out.insert(out.end(), body.begin(), body.end());
  }
}

}  // namespace

void encode_struct(Fields fields, std::int16_t version, bool flexible, const StructValue& value, Bytes& out) {
  encode_fields(fields, version, flexible, value, out, nullptr);
}

void encode_struct(Fields fields, std::int16_t version, bool flexible, const StructValue& value, Bytes& out,
                   std::vector<Splice>& splices) {
  encode_fields(fields, version, flexible, value, out, &splices);
}

std::expected<StructValue, DecodeError> decode_message(Fields fields, std::int16_t version, bool flexible,
                                                       std::span<const std::byte> body) {
  ByteReader reader(body);
  auto result = decode_struct(fields, version, flexible, reader);
  if (!result) return result;
  if (reader.remaining() != 0) return std::unexpected(DecodeError::trailing_bytes);
  return result;
}

std::expected<RequestHeader, DecodeError> decode_request_header(ByteReader& reader) {
  RequestHeader header;
  header.api_key = static_cast<std::int16_t>(reader.u16());
  header.api_version = static_cast<std::int16_t>(reader.u16());
  header.correlation_id = static_cast<std::int32_t>(reader.u32());
  const auto length = static_cast<std::int16_t>(reader.u16());
  if (!reader.ok()) return std::unexpected(DecodeError::truncated);
  if (length < -1) return std::unexpected(DecodeError::negative_length);
  if (length >= 0) {
    auto text = reader.bytes(static_cast<std::size_t>(length));
    if (!reader.ok()) return std::unexpected(DecodeError::truncated);
    header.client_id = std::string(as_text(text));
  }
  return header;
}

std::expected<void, DecodeError> skip_tagged_fields(ByteReader& reader) {
  static constexpr Field kNoFields[1] = {};
  auto skipped = decode_struct(Fields{kNoFields, 0}, 0, true, reader);
  if (!skipped) return std::unexpected(skipped.error());
  return {};
}

void encode_request_header(const RequestHeader& header, bool flexible, Bytes& out) {
  ByteWriter writer(out);
  writer.u16(static_cast<std::uint16_t>(header.api_key));
  writer.u16(static_cast<std::uint16_t>(header.api_version));
  writer.u32(static_cast<std::uint32_t>(header.correlation_id));
  if (header.client_id) {
    writer.u16(static_cast<std::uint16_t>(header.client_id->size()));
    writer.bytes(sluice::as_bytes(*header.client_id));
  } else {
    writer.u16(0xffff);
  }
  if (flexible) write_uvarint(out, 0);
}

void encode_response_header(std::int32_t correlation_id, bool flexible, Bytes& out) {
  ByteWriter(out).u32(static_cast<std::uint32_t>(correlation_id));
  if (flexible) write_uvarint(out, 0);
}

}  // namespace sluice::protocol
