#pragma once
// The decoded form of a Kafka message: a tree of values shaped by its schema. A struct holds one
// value per schema field, in schema order; fields absent from the version hold their default.

#include <array>
#include <memory>
#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/protocol/schema.h"
#include "core/util/bytes.h"

namespace sluice {
class File;
}

namespace sluice::protocol {

struct StructValue;

// Record bytes that stay in files (a Fetch response's record batches): the encoder writes only
// their length and notes where they go; the connection sends them with Stream::send_file.
struct FileSlice {
  std::shared_ptr<const void> owner;  // keeps the file (segment) open until sent
  File* file = nullptr;
  std::uint64_t position = 0;
  std::uint64_t size_bytes = 0;
  bool operator==(const FileSlice& other) const {
    return file == other.file && position == other.position && size_bytes == other.size_bytes;
  }
};

struct FileRecords {
  std::vector<FileSlice> slices;
  std::uint64_t size_bytes = 0;  // sum of the slices
  bool operator==(const FileRecords&) const = default;
};
struct Null {
  bool operator==(const Null&) const = default;
};
using Uuid = std::array<std::uint8_t, 16>;

class Value {
 public:
  using Array = std::vector<Value>;
  using Variant = std::variant<Null, std::int64_t, bool, double, Uuid, std::string, Bytes, Array, std::vector<StructValue>,
                               std::shared_ptr<StructValue>, FileRecords>;

  Value() = default;
  Value(Null) {}
  Value(std::int64_t number) : value_(number) {}
  Value(bool flag) : value_(flag) {}
  Value(double number) : value_(number) {}
  Value(Uuid uuid) : value_(uuid) {}
  Value(std::string text) : value_(std::move(text)) {}
  Value(Bytes bytes) : value_(std::move(bytes)) {}
  Value(Array items) : value_(std::move(items)) {}
  Value(FileRecords records) : value_(std::move(records)) {}
  Value(std::vector<StructValue> structs);
  Value(StructValue structure);

  bool is_null() const { return std::holds_alternative<Null>(value_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(value_); }
  bool as_bool() const { return std::get<bool>(value_); }
  double as_double() const { return std::get<double>(value_); }
  const Uuid& as_uuid() const { return std::get<Uuid>(value_); }
  const std::string& as_string() const { return std::get<std::string>(value_); }
  const Bytes& as_bytes() const { return std::get<Bytes>(value_); }
  Bytes& as_bytes() { return std::get<Bytes>(value_); }
  const Array& as_array() const { return std::get<Array>(value_); }
  Array& as_array() { return std::get<Array>(value_); }
  const std::vector<StructValue>& as_structs() const { return std::get<std::vector<StructValue>>(value_); }
  std::vector<StructValue>& as_structs() { return std::get<std::vector<StructValue>>(value_); }
  const StructValue& as_struct() const { return *std::get<std::shared_ptr<StructValue>>(value_); }
  StructValue& as_struct() { return *std::get<std::shared_ptr<StructValue>>(value_); }
  bool is_file_records() const { return std::holds_alternative<FileRecords>(value_); }
  const FileRecords& as_file_records() const { return std::get<FileRecords>(value_); }
  const Variant& variant() const { return value_; }

 private:
  Variant value_;
};

// One message or nested struct. Field lookup by name is a short linear scan (messages have few
// fields); the name must exist in the schema (asserted), whatever the version.
struct StructValue {
  Fields schema;
  std::vector<Value> values;

  // A struct with every field at its default: 0 / default_int, false, "" (or null if nullable in
  // every version), empty bytes, empty arrays.
  static StructValue with_defaults(Fields schema);

  std::size_t index_of(std::string_view name) const;
  Value& operator[](std::string_view name) { return values[index_of(name)]; }
  const Value& operator[](std::string_view name) const { return values[index_of(name)]; }

  std::int64_t get_int(std::string_view name) const { return (*this)[name].as_int(); }
  const std::string& get_string(std::string_view name) const { return (*this)[name].as_string(); }
  std::optional<std::string> get_nullable_string(std::string_view name) const;
  bool get_bool(std::string_view name) const { return (*this)[name].as_bool(); }
  const std::vector<StructValue>& get_structs(std::string_view name) const { return (*this)[name].as_structs(); }
  std::vector<StructValue>& get_structs(std::string_view name) { return (*this)[name].as_structs(); }

  StructValue& set(std::string_view name, Value value) {
    (*this)[name] = std::move(value);
    return *this;
  }
  // Appends a default-initialised element to an array-of-structs field and returns it.
  StructValue& add(std::string_view array_name);
};

// An integer field value. Value's constructors take std::int64_t, bool and double, so a plain
// int (an error code, an index) would be ambiguous: this says which one is meant.
inline Value int_value(std::int64_t number) { return Value(number); }

inline Value::Value(std::vector<StructValue> structs) : value_(std::move(structs)) {}
inline Value::Value(StructValue structure) : value_(std::make_shared<StructValue>(std::move(structure))) {}

}  // namespace sluice::protocol
