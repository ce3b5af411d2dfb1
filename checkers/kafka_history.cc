#include "checkers/kafka_history.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <istream>
#include <limits>
#include <ostream>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace sluice::checkers {

namespace {

constexpr std::string_view kSend = "send";
constexpr std::string_view kPoll = "poll";
constexpr std::string_view kAssign = "assign";
constexpr std::string_view kRevoke = "revoke";
constexpr std::string_view kCommit = "commit";
constexpr std::string_view kCrash = "crash";
constexpr std::string_view kRestart = "restart";
constexpr std::string_view kGroupState = "group-state";

bool carries_records(std::string_view f) {
  return f == kSend || f == kPoll;
}
bool is_process_event(std::string_view f) {
  return f == kCrash || f == kRestart;
}
bool is_final_reader(std::string_view process) {
  return process.starts_with(kFinalReaderProcess);
}

std::string show(const TopicPartition& tp) {
  return tp.topic + "/" + std::to_string(tp.partition);
}

}  // namespace

std::string_view to_string(OpType type) {
  switch (type) {
    case OpType::invoke:
      return "invoke";
    case OpType::ok:
      return "ok";
    case OpType::fail:
      return "fail";
    case OpType::info:
      return "info";
  }
  return "info";
}

std::optional<OpType> op_type_from_string(std::string_view name) {
  for (OpType type : {OpType::invoke, OpType::ok, OpType::fail, OpType::info}) {
    if (to_string(type) == name) return type;
  }
  return std::nullopt;
}

const Op& History::add(Op op) {
  op.index = static_cast<std::int64_t>(ops_.size());
  ops_.push_back(std::move(op));
  assert(ops_.back().index + 1 == static_cast<std::int64_t>(ops_.size()));
  return ops_.back();
}

// ---------------------------------------------------------------------------------------------
// Pairing invokes with completions (shared by the checkers and the Elle export).

namespace {

constexpr std::int64_t kNoOp = -1;

// partner[i]: for an invoke, the index of its completion; for a completion, its invoke; kNoOp
// for an invoke never completed and for a standalone completion or event.
std::vector<std::int64_t> pair_operations(const std::vector<Op>& ops) {
  std::vector<std::int64_t> partner(ops.size(), kNoOp);
  // Per process, the invokes in flight: at most one per f, so a few entries each.
  std::unordered_map<std::string_view, std::vector<std::int64_t>> in_flight;
  for (const Op& op : ops) {
    assert(op.index >= 0 && static_cast<std::size_t>(op.index) < ops.size());
    if (is_process_event(op.f)) {
      in_flight.erase(op.process);  // its pending ops end unknown
      continue;
    }
    auto& pending = in_flight[op.process];
    auto same_f = std::find_if(pending.begin(), pending.end(),
                               [&](std::int64_t invoke) { return ops[invoke].f == op.f; });
    if (op.type == OpType::invoke) {
      if (same_f != pending.end())
        *same_f = op.index;  // the older invoke ends unknown
      else
        pending.push_back(op.index);
      continue;
    }
    if (same_f == pending.end()) continue;  // standalone completion
    assert(*same_f < op.index && partner[*same_f] == kNoOp);
    partner[*same_f] = op.index;
    partner[op.index] = *same_f;
    pending.erase(same_f);
  }
  return partner;
}

// What a paired op did: an invoke's outcome is its completion's type, or info when none came.
OpType outcome_of(const std::vector<Op>& ops, const std::vector<std::int64_t>& partner,
                  const Op& op) {
  if (op.type != OpType::invoke) return op.type;
  return partner[op.index] == kNoOp ? OpType::info : ops[partner[op.index]].type;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writing: one structure, two syntaxes (JSON lines and EDN).

namespace {

enum class Syntax : std::uint8_t { json, edn };

// Appends `text` as a string literal, the same in JSON and EDN (Clojure's EDN reader takes \uXXXX).
// Valid UTF-8 passes through; control characters are escaped; a byte that is not part of valid
// UTF-8 becomes the lone surrogate \udcXX, which read_json_lines turns back into that byte.
void write_string_literal(std::ostream& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto escape_unit = [&](unsigned unit) {
    out << "\\u" << kHex[(unit >> 12) & 0xf] << kHex[(unit >> 8) & 0xf] << kHex[(unit >> 4) & 0xf]
        << kHex[unit & 0xf];
  };
  auto continuation = [&](std::size_t at) {
    return at < text.size() && (static_cast<unsigned char>(text[at]) & 0xc0) == 0x80;
  };
  out << '"';
  std::size_t at = 0;
  while (at < text.size()) {
    const auto byte = static_cast<unsigned char>(text[at]);
    if (byte < 0x80) {
      switch (byte) {
        case '"':
          out << "\\\"";
          break;
        case '\\':
          out << "\\\\";
          break;
        case '\n':
          out << "\\n";
          break;
        case '\r':
          out << "\\r";
          break;
        case '\t':
          out << "\\t";
          break;
        default:
          if (byte < 0x20)
            escape_unit(byte);
          else
            out << static_cast<char>(byte);
      }
      ++at;
      continue;
    }
    // The length of a well-formed UTF-8 sequence starting here (no overlongs, no surrogates, at
    // most U+10FFFF), or 0.
    std::size_t length = 0;
    const auto next = at + 1 < text.size() ? static_cast<unsigned char>(text[at + 1]) : 0;
    if (byte >= 0xc2 && byte <= 0xdf) {
      length = 2;
    } else if (byte >= 0xe0 && byte <= 0xef) {
      const bool second_ok = byte == 0xe0 ? next >= 0xa0 : byte == 0xed ? next <= 0x9f : true;
      if (second_ok) length = 3;
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      const bool second_ok = byte == 0xf0 ? next >= 0x90 : byte == 0xf4 ? next <= 0x8f : true;
      if (second_ok) length = 4;
    }
    for (std::size_t i = 1; i < length; ++i) {
      if (!continuation(at + i)) length = 0;
    }
    if (length == 0) {
      escape_unit(0xdc00 | byte);
      ++at;
    } else {
      out << text.substr(at, length);
      at += length;
    }
  }
  out << '"';
}

// A value as it appears in an anomaly's description: an escaped literal, cut short so one line
// stays one line.
std::string show_value(std::string_view value) {
  constexpr std::size_t kShownBytesMax = 48;
  std::ostringstream shown;
  write_string_literal(shown, value.substr(0, kShownBytesMax));
  return value.size() > kShownBytesMax ? shown.str() + "..." : shown.str();
}

bool is_keyword_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("*+!-_?<>=.").find(c) != std::string_view::npos;
  });
}

// Writes nested maps and vectors in JSON or EDN, placing separators itself.
class Emitter {
 public:
  Emitter(std::ostream& out, Syntax syntax) : out_(out), syntax_(syntax) {}

  void begin_map() { open('{'); }
  void end_map() { close('}'); }
  void begin_vector() { open('['); }
  void end_vector() { close(']'); }
  void key(std::string_view name) {
    separate();
    if (syntax_ == Syntax::json)
      out_ << '"' << name << "\":";
    else
      out_ << ':' << name << ' ';
    after_key_ = true;
  }
  void string(std::string_view text) {
    separate();
    write_string_literal(out_, text);
  }
  void integer(std::int64_t value) {
    separate();
    out_ << value;
  }
  void null() {
    separate();
    out_ << (syntax_ == Syntax::json ? "null" : "nil");
  }
  // A name from a fixed vocabulary: an EDN keyword (when it can be one), a JSON string.
  void name(std::string_view text) {
    if (syntax_ == Syntax::json || !is_keyword_name(text)) return string(text);
    separate();
    out_ << ':' << text;
  }
  bool balanced() const { return first_in_container_.empty() && !after_key_; }

 private:
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (first_in_container_.empty()) return;
    if (!first_in_container_.back()) out_ << (syntax_ == Syntax::json ? "," : ", ");
    first_in_container_.back() = false;
  }
  void open(char bracket) {
    separate();
    out_ << bracket;
    first_in_container_.push_back(true);
  }
  void close(char bracket) {
    assert(!first_in_container_.empty() && !after_key_);
    first_in_container_.pop_back();
    out_ << bracket;
  }

  std::ostream& out_;
  Syntax syntax_;
  std::vector<bool> first_in_container_;
  bool after_key_ = false;
};

void emit_partition_fields(Emitter& emit, const TopicPartition& tp) {
  emit.key("topic");
  emit.string(tp.topic);
  emit.key("partition");
  emit.integer(tp.partition);
}

void emit_records(Emitter& emit, const std::vector<RecordRef>& records) {
  emit.begin_vector();
  for (const RecordRef& record : records) {
    emit.begin_map();
    emit_partition_fields(emit, record.tp);
    emit.key("key");
    emit.string(record.key);
    emit.key("value");
    emit.string(record.value);
    emit.key("offset");
    if (record.offset < 0)
      emit.null();
    else
      emit.integer(record.offset);
    emit.end_map();
  }
  emit.end_vector();
}

// The value of an op that does not carry records: only the fields set, so each f shows its own.
void emit_value_fields(Emitter& emit, const Op& op) {
  emit.begin_map();
  if (!op.group.empty()) {
    emit.key("group");
    emit.string(op.group);
  }
  if (op.generation >= 0) {
    emit.key("generation");
    emit.integer(op.generation);
  }
  if (!op.partitions.empty()) {
    emit.key("partitions");
    emit.begin_vector();
    for (const TopicPartition& tp : op.partitions) {
      emit.begin_map();
      emit_partition_fields(emit, tp);
      emit.end_map();
    }
    emit.end_vector();
  }
  if (!op.offsets.empty()) {
    emit.key("offsets");
    emit.begin_vector();
    for (const CommittedOffset& committed : op.offsets) {
      emit.begin_map();
      emit_partition_fields(emit, committed.tp);
      emit.key("offset");
      emit.integer(committed.offset);
      emit.end_map();
    }
    emit.end_vector();
  }
  if (!op.group_state.empty()) {
    emit.key("state");
    emit.string(op.group_state);
  }
  if (!op.records.empty()) {
    emit.key("records");
    emit_records(emit, op.records);
  }
  emit.end_map();
}

void emit_op(Emitter& emit, const Op& op) {
  emit.begin_map();
  emit.key("index");
  emit.integer(op.index);
  emit.key("process");
  emit.string(op.process);
  emit.key("type");
  emit.name(to_string(op.type));
  emit.key("f");
  emit.name(op.f);
  emit.key("time");
  emit.integer(op.time_ns);
  emit.key("value");
  if (carries_records(op.f)) {
    emit_records(emit, op.records);
    if (!op.group.empty()) {
      emit.key("group");
      emit.string(op.group);
    }
  } else {
    emit_value_fields(emit, op);
  }
  if (!op.error.empty()) {
    emit.key("error");
    emit.string(op.error);
  }
  emit.end_map();
  assert(emit.balanced());
}

}  // namespace

void History::write_json_lines(std::ostream& out) const {
  for (const Op& op : ops_) {
    Emitter emit(out, Syntax::json);
    emit_op(emit, op);
    out << '\n';
  }
}

void History::write_edn(std::ostream& out) const {
  out << "[";
  for (const Op& op : ops_) {
    out << "\n";
    Emitter emit(out, Syntax::edn);
    emit_op(emit, op);
  }
  out << "]\n";
}

// ---------------------------------------------------------------------------------------------
// Elle's list-append projection.

namespace {

// One Elle transaction: a Kafka op's micro-ops on one partition.
struct ElleTransaction {
  std::string key;  // "topic/partition"
  bool reads = false;
  std::vector<std::string_view> values;              // appended, or read
  std::unordered_set<std::string_view> values_read;  // to list a value read twice once
  std::int64_t process = 0;                          // the Elle process
};

class ElleExporter {
 public:
  ElleExporter(const std::vector<Op>& ops, std::ostream& out)
      : ops_(ops), partner_(pair_operations(ops)), out_(out) {
    for (const Op& op : ops_) {
      if (op.type != OpType::ok || !carries_records(op.f)) continue;
      for (const RecordRef& record : op.records) {
        if (record.offset < 0) continue;
        auto [it, inserted] = log_start_.emplace(record.tp, record.offset);
        if (!inserted) it->second = std::min(it->second, record.offset);
      }
    }
  }

  void run() {
    out_ << "[";
    for (const Op& op : ops_) {
      if (is_process_event(op.f)) {
        end_pending_of(op.process, op.time_ns);
      } else if (op.type == OpType::invoke) {
        begin(op, partner_[op.index]);
      } else if (partner_[op.index] != kNoOp) {
        complete(partner_[op.index], op.type, op.time_ns);
      } else {  // a standalone completion: invoked and completed at once
        begin(op, op.index);
        complete(op.index, op.type, op.time_ns);
      }
    }
    const std::int64_t end_time_ns = ops_.empty() ? 0 : ops_.back().time_ns;
    while (!pending_.empty()) complete(pending_.begin()->first, OpType::info, end_time_ns);
    assert(pending_.empty());
    out_ << "]\n";
  }

 private:
  // `completion`: the op that completes `invoke` (kNoOp: none).
  void begin(const Op& invoke, std::int64_t completion) {
    if (!carries_records(invoke.f)) return;
    std::vector<ElleTransaction> transactions;
    if (invoke.f == kSend) {
      const bool acknowledged = completion != kNoOp && ops_[completion].type == OpType::ok &&
                                !ops_[completion].records.empty();
      for_each_partition(acknowledged ? ops_[completion].records : invoke.records, false,
                         transactions);
    } else if (completion != kNoOp && ops_[completion].type == OpType::ok) {
      for_each_partition(ops_[completion].records, true, transactions);
    }
    if (transactions.empty()) return;
    for (ElleTransaction& transaction : transactions) {
      transaction.process = claim_process(invoke.process, transaction.key);
      write_op(transaction, OpType::invoke, invoke.time_ns);
    }
    pending_.emplace(invoke.index, std::move(transactions));
  }

  void complete(std::int64_t invoke, OpType type, std::int64_t time_ns) {
    auto found = pending_.find(invoke);
    if (found == pending_.end()) return;
    for (const ElleTransaction& transaction : found->second) {
      // A read is only exported from an ok poll; appends carry their outcome.
      write_op(transaction, transaction.reads ? OpType::ok : type, time_ns);
      release_process(ops_[invoke].process, transaction.key, type == OpType::info);
    }
    pending_.erase(found);
  }

  void end_pending_of(std::string_view process, std::int64_t time_ns) {
    std::vector<std::int64_t> ended;
    for (const auto& [invoke, transactions] : pending_) {
      if (ops_[invoke].process == process) ended.push_back(invoke);
    }
    for (std::int64_t invoke : ended) complete(invoke, OpType::info, time_ns);
  }

  // Groups records by partition in order of first appearance. Reads keep only partitions read
  // from their log start, and each value once.
  void for_each_partition(const std::vector<RecordRef>& records, bool reads,
                          std::vector<ElleTransaction>& transactions) {
    std::map<TopicPartition, std::size_t> position_of;  // partition -> its transaction
    for (const RecordRef& record : records) {
      auto [position, first] = position_of.try_emplace(record.tp, transactions.size());
      if (first) {
        const bool from_log_start =
            !reads || (log_start_.contains(record.tp) && record.offset == log_start_.at(record.tp));
        transactions.push_back(
            {from_log_start ? show(record.tp) : std::string(), reads, {}, {}, 0});
      }
      ElleTransaction& transaction = transactions[position->second];
      if (transaction.key.empty()) continue;
      if (reads && !transaction.values_read.insert(record.value).second) continue;
      transaction.values.push_back(record.value);
    }
    std::erase_if(transactions, [](const ElleTransaction& t) { return t.key.empty(); });
  }

  std::int64_t claim_process(const std::string& process, const std::string& key) {
    ElleProcess& elle = processes_[{process, key}];
    if (elle.id < 0 || elle.busy) elle.id = next_process_++;
    elle.busy = true;
    return elle.id;
  }

  void release_process(const std::string& process, const std::string& key, bool crashed) {
    ElleProcess& elle = processes_[{process, key}];
    elle.busy = false;
    if (crashed) elle.id = -1;  // as in Jepsen, a process whose op ended unknown is not reused
  }

  void write_op(const ElleTransaction& transaction, OpType type, std::int64_t time_ns) {
    out_ << "\n";
    Emitter emit(out_, Syntax::edn);
    emit.begin_map();
    emit.key("index");
    emit.integer(next_index_++);
    emit.key("time");
    emit.integer(time_ns);
    emit.key("type");
    emit.name(to_string(type));
    emit.key("process");
    emit.integer(transaction.process);
    emit.key("f");
    emit.name("txn");
    emit.key("value");
    emit.begin_vector();
    if (transaction.reads) {
      emit.begin_vector();
      emit.name("r");
      emit.string(transaction.key);
      if (type == OpType::invoke) {
        emit.null();
      } else {
        emit.begin_vector();
        for (std::string_view value : transaction.values) emit.string(value);
        emit.end_vector();
      }
      emit.end_vector();
    } else {
      for (std::string_view value : transaction.values) {
        emit.begin_vector();
        emit.name("append");
        emit.string(transaction.key);
        emit.string(value);
        emit.end_vector();
      }
    }
    emit.end_vector();
    emit.end_map();
    assert(emit.balanced());
  }

  struct ElleProcess {
    std::int64_t id = -1;
    bool busy = false;
  };

  const std::vector<Op>& ops_;
  std::vector<std::int64_t> partner_;
  std::ostream& out_;
  std::map<TopicPartition, std::int64_t> log_start_;
  std::map<std::int64_t, std::vector<ElleTransaction>> pending_;  // by Kafka invoke index
  std::map<std::pair<std::string, std::string>, ElleProcess> processes_;
  std::int64_t next_process_ = 0;
  std::int64_t next_index_ = 0;
};

}  // namespace

void History::write_elle_list_append(std::ostream& out) const {
  ElleExporter(ops_, out).run();
}

// ---------------------------------------------------------------------------------------------
// Reading JSON lines.

namespace {

struct Json {
  enum class Kind : std::uint8_t { null, boolean, integer, real, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  std::int64_t integer = 0;
  std::string text;
  std::vector<Json> items;                // array elements, object values
  std::vector<std::string> member_names;  // object keys, parallel to items

  const Json* find(std::string_view name) const {
    if (kind != Kind::object) return nullptr;
    for (std::size_t i = 0; i < member_names.size(); ++i) {
      if (member_names[i] == name) return &items[i];
    }
    return nullptr;
  }
};

// A strict recursive-descent JSON parser for one line, bounded in nesting depth.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  bool parse(Json& value) {
    if (!parse_value(value, 0)) return false;
    skip_space();
    if (at_ != text_.size()) return fail("trailing characters");
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  static constexpr int kDepthMax = 32;

  bool fail(std::string why) {
    if (error_.empty()) error_ = why + " at column " + std::to_string(at_ + 1);
    return false;
  }
  void skip_space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\r' || text_[at_] == '\n')) {
      ++at_;
    }
  }
  bool consume(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  bool consume_word(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  bool parse_value(Json& value, int depth) {
    if (depth > kDepthMax) return fail("nesting too deep");
    skip_space();
    if (at_ >= text_.size()) return fail("unexpected end of line");
    const char c = text_[at_];
    if (c == '{') return parse_object(value, depth);
    if (c == '[') return parse_array(value, depth);
    if (c == '"') {
      value.kind = Json::Kind::string;
      return parse_string(value.text);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(value);
    if (consume_word("null")) {
      value.kind = Json::Kind::null;
      return true;
    }
    if (consume_word("true") || consume_word("false")) {
      value.kind = Json::Kind::boolean;
      value.boolean = text_[at_ - 2] == 'u';  // tr(u)e, fal(s)e
      return true;
    }
    return fail("unexpected character");
  }

  bool parse_object(Json& value, int depth) {
    value.kind = Json::Kind::object;
    ++at_;
    if (consume('}')) return true;
    do {
      skip_space();
      std::string name;
      if (at_ >= text_.size() || text_[at_] != '"' || !parse_string(name)) {
        return fail("expected a member name");
      }
      if (!consume(':')) return fail("expected ':'");
      value.member_names.push_back(std::move(name));
      value.items.emplace_back();
      if (!parse_value(value.items.back(), depth + 1)) return false;
    } while (consume(','));
    return consume('}') || fail("expected ',' or '}'");
  }

  bool parse_array(Json& value, int depth) {
    value.kind = Json::Kind::array;
    ++at_;
    if (consume(']')) return true;
    do {
      value.items.emplace_back();
      if (!parse_value(value.items.back(), depth + 1)) return false;
    } while (consume(','));
    return consume(']') || fail("expected ',' or ']'");
  }

  bool parse_number(Json& value) {
    const std::size_t start = at_;
    if (text_[at_] == '-') ++at_;
    auto digits = [&] {
      const std::size_t from = at_;
      while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
      return at_ > from;
    };
    if (!digits()) return fail("expected digits");
    bool integral = true;
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      integral = false;
      if (!digits()) return fail("expected digits after '.'");
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      integral = false;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      if (!digits()) return fail("expected exponent digits");
    }
    if (!integral) {
      value.kind = Json::Kind::real;
      return true;
    }
    value.kind = Json::Kind::integer;
    const auto [end, code] =
        std::from_chars(text_.data() + start, text_.data() + at_, value.integer);
    if (code != std::errc() || end != text_.data() + at_) return fail("integer out of range");
    return true;
  }

  bool parse_hex4(unsigned& unit) {
    if (at_ + 4 > text_.size()) return fail("short \\u escape");
    unit = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[at_++];
      unit <<= 4;
      if (c >= '0' && c <= '9')
        unit |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        unit |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        unit |= static_cast<unsigned>(c - 'A' + 10);
      else
        return fail("bad \\u escape");
    }
    return true;
  }

  static void append_utf8(std::string& out, std::uint32_t code_point) {
    if (code_point < 0x80) {
      out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
      out += static_cast<char>(0xc0 | (code_point >> 6));
      out += static_cast<char>(0x80 | (code_point & 0x3f));
    } else if (code_point < 0x10000) {
      out += static_cast<char>(0xe0 | (code_point >> 12));
      out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code_point & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (code_point >> 18));
      out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (code_point & 0x3f));
    }
  }

  bool parse_escape(std::string& out) {
    if (at_ >= text_.size()) return fail("unterminated string");
    const char c = text_[at_++];
    switch (c) {
      case '"':
      case '\\':
      case '/':
        out += c;
        return true;
      case 'b':
        out += '\b';
        return true;
      case 'f':
        out += '\f';
        return true;
      case 'n':
        out += '\n';
        return true;
      case 'r':
        out += '\r';
        return true;
      case 't':
        out += '\t';
        return true;
      case 'u':
        break;
      default:
        return fail("bad escape");
    }
    unsigned unit = 0;
    if (!parse_hex4(unit)) return false;
    if (unit >= 0xdc80 && unit <= 0xdcff) {  // a raw byte, as write_string_literal wrote it
      out += static_cast<char>(unit & 0xff);
      return true;
    }
    if (unit >= 0xd800 && unit <= 0xdbff) {
      unsigned low = 0;
      if (!consume_word("\\u") || !parse_hex4(low) || low < 0xdc00 || low > 0xdfff) {
        return fail("unpaired surrogate");
      }
      append_utf8(out, 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00));
      return true;
    }
    if (unit >= 0xdc00 && unit <= 0xdfff) return fail("unpaired surrogate");
    append_utf8(out, unit);
    return true;
  }

  bool parse_string(std::string& out) {
    ++at_;  // the opening quote
    while (at_ < text_.size()) {
      const char c = text_[at_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (!parse_escape(out)) return false;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        return fail("control character in string");
      } else {
        out += c;
      }
    }
    return fail("unterminated string");
  }

  std::string_view text_;
  std::size_t at_ = 0;
  std::string error_;
};

// Converts parsed JSON to history fields; remembers the first mismatch.
class OpDecoder {
 public:
  std::optional<Op> decode(const Json& json) {
    if (json.kind != Json::Kind::object) return mismatch("an op must be an object");
    Op op;
    if (!text(json, "process", op.process, true) || !text(json, "f", op.f, true)) return {};
    std::string type;
    if (!text(json, "type", type, true)) return {};
    auto parsed_type = op_type_from_string(type);
    if (!parsed_type) return mismatch("unknown type \"" + type + "\"");
    op.type = *parsed_type;
    if (!integer(json, "time", op.time_ns) || !text(json, "error", op.error, false) ||
        !text(json, "group", op.group, false)) {
      return {};
    }
    const Json* value = json.find("value");
    if (value == nullptr || value->kind == Json::Kind::null) return op;
    if (value->kind == Json::Kind::array) {
      if (!records(*value, op.records)) return {};
      return op;
    }
    if (value->kind != Json::Kind::object) return mismatch("value must be an array or object");
    std::int64_t generation = op.generation;
    if (!text(*value, "group", op.group, false) || !integer(*value, "generation", generation) ||
        !text(*value, "state", op.group_state, false)) {
      return {};
    }
    if (generation < std::numeric_limits<std::int32_t>::min() ||
        generation > std::numeric_limits<std::int32_t>::max()) {
      return mismatch("generation out of range");
    }
    op.generation = static_cast<std::int32_t>(generation);
    if (const Json* partitions = value->find("partitions")) {
      if (partitions->kind != Json::Kind::array) return mismatch("partitions must be an array");
      for (const Json& item : partitions->items) {
        if (!topic_partition(item, op.partitions.emplace_back())) return {};
      }
    }
    if (const Json* offsets = value->find("offsets")) {
      if (offsets->kind != Json::Kind::array) return mismatch("offsets must be an array");
      for (const Json& item : offsets->items) {
        CommittedOffset& committed = op.offsets.emplace_back();
        if (!topic_partition(item, committed.tp) || !integer(item, "offset", committed.offset)) {
          return {};
        }
      }
    }
    if (const Json* nested = value->find("records")) {
      if (!records(*nested, op.records)) return {};
    }
    return op;
  }
  const std::string& error() const { return error_; }

 private:
  std::nullopt_t mismatch(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return std::nullopt;
  }
  bool text(const Json& object, std::string_view name, std::string& out, bool required) {
    const Json* found = object.find(name);
    if (found == nullptr || found->kind == Json::Kind::null) {
      if (required) mismatch("missing \"" + std::string(name) + "\"");
      return !required;
    }
    if (found->kind != Json::Kind::string) {
      mismatch("\"" + std::string(name) + "\" must be a string");
      return false;
    }
    out = found->text;
    return true;
  }
  // An optional integer: absent or null leaves `out` as it is.
  bool integer(const Json& object, std::string_view name, std::int64_t& out) {
    const Json* found = object.find(name);
    if (found == nullptr || found->kind == Json::Kind::null) return true;
    if (found->kind != Json::Kind::integer) {
      mismatch("\"" + std::string(name) + "\" must be an integer");
      return false;
    }
    out = found->integer;
    return true;
  }
  bool topic_partition(const Json& object, TopicPartition& tp) {
    if (object.kind != Json::Kind::object) {
      mismatch("a partition must be an object");
      return false;
    }
    std::int64_t partition = -1;
    if (!text(object, "topic", tp.topic, true) || !integer(object, "partition", partition)) {
      return false;
    }
    if (partition < 0 || partition > std::numeric_limits<std::int32_t>::max()) {
      mismatch("missing or bad \"partition\"");
      return false;
    }
    tp.partition = static_cast<std::int32_t>(partition);
    return true;
  }
  bool records(const Json& array, std::vector<RecordRef>& out) {
    if (array.kind != Json::Kind::array) {
      mismatch("records must be an array");
      return false;
    }
    for (const Json& item : array.items) {
      RecordRef& record = out.emplace_back();
      if (!topic_partition(item, record.tp) || !text(item, "key", record.key, false) ||
          !text(item, "value", record.value, false) || !integer(item, "offset", record.offset)) {
        return false;
      }
    }
    return true;
  }

  std::string error_;
};

}  // namespace

std::optional<History> read_json_lines(std::istream& in, std::string* error) {
  History history;
  std::string line;
  std::int64_t line_number = 0;
  auto failed = [&](const std::string& why) -> std::optional<History> {
    if (error != nullptr) *error = "line " + std::to_string(line_number) + ": " + why;
    return std::nullopt;
  };
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json json;
    JsonParser parser(line);
    if (!parser.parse(json)) return failed(parser.error());
    OpDecoder decoder;
    std::optional<Op> op = decoder.decode(json);
    if (!op) return failed(decoder.error());
    history.add(std::move(*op));
  }
  if (in.bad()) return failed("read error");
  return history;
}

// ---------------------------------------------------------------------------------------------
// The checkers.

namespace {

using Id = std::uint32_t;

std::uint64_t pack(Id high, Id low) {
  return (std::uint64_t{high} << 32) | low;
}

// Interns names so the checkers work on small integers. Ids follow first appearance, so every
// iteration over ids is in history order (deterministic).
template <class Key, class Map = std::unordered_map<Key, Id>>
class Interner {
 public:
  Id id(const Key& key) {
    auto [it, inserted] = ids_.emplace(key, static_cast<Id>(keys_.size()));
    if (inserted) keys_.push_back(&it->first);
    return it->second;
  }
  const Key& key(Id id) const {
    assert(id < keys_.size());
    return *keys_[id];
  }

 private:
  Map ids_;
  std::vector<const Key*> keys_;  // node-based maps keep keys in place
};

// What the history says about one record value.
struct ValueFacts {
  bool sent = false;             // some send carried it
  Id partition = 0;              // where it was sent (valid when sent)
  std::string_view key;          // with which key (valid when sent)
  std::int64_t send_op = kNoOp;  // the send's invoke (or standalone completion)
  OpType outcome = OpType::info;
  std::int64_t acknowledged_offset = -1;
  std::int64_t first_offset = -1;  // first offset anything reported for it in its partition
  std::int64_t first_offset_op = kNoOp;
  std::int64_t final_offset = -1;  // first offset in the final read
  bool in_final = false;
  bool duplicate = false;
  bool failed_visible_reported = false;
};

struct Observation {
  Id value = 0;
  std::int64_t op = kNoOp;
};

struct PartitionFacts {
  // Offset -> the first value an ok send or a consumer's ok poll reported there.
  std::unordered_map<std::int64_t, Observation> observed;
  // The final read, sorted by offset (a correct log has each offset once).
  std::vector<std::pair<std::int64_t, Observation>> final_log;

  // The first final-log entry at or after `offset`.
  auto final_at_or_after(std::int64_t offset) const {
    return std::lower_bound(
        final_log.begin(), final_log.end(), offset,
        [](const auto& entry, std::int64_t wanted) { return entry.first < wanted; });
  }
};

class Reporter {
 public:
  explicit Reporter(KafkaCheckResult& result) : result_(result) {}

  template <class Describe>
  void report(std::string_view type, std::vector<std::int64_t> ops, Describe&& describe) {
    assert(!type.empty());
    std::uint64_t& count = result_.anomaly_counts[std::string(type)];
    ++count;
    if (count > KafkaCheckResult::kAnomaliesListedPerType) return;
    std::erase(ops, kNoOp);
    result_.anomalies.push_back({std::string(type), describe(), std::move(ops)});
  }

 private:
  KafkaCheckResult& result_;
};

// Where a process's polls of a partition got to, and which poll got there.
struct Position {
  std::int64_t offset = -1;
  std::int64_t op = kNoOp;
};
// The lowest and highest offsets a group's consumers polled in a partition.
struct PollRange {
  std::int64_t lowest = 0;
  std::int64_t highest = 0;
};
// What an assign hands a member: a partition in one generation of one group.
struct OwnedPartition {
  Id group = 0;
  std::int32_t generation = -1;
  Id partition = 0;
  auto operator<=>(const OwnedPartition&) const = default;
};
struct Owner {
  Id process = 0;
  std::int64_t op = kNoOp;
};
// Hashes the (id, id) pairs that key the checkers' maps.
struct PairHash {
  template <class High, class Low>
  std::size_t operator()(const std::pair<High, Low>& p) const {
    return std::hash<std::uint64_t>()(static_cast<std::uint64_t>(p.second) * 0x9e3779b97f4a7c15ULL +
                                      p.first);
  }
};

class KafkaChecker {
 public:
  KafkaChecker(const History& history, const KafkaCheckOptions& options)
      : ops_(history.ops()),
        options_(options),
        partner_(pair_operations(ops_)),
        reporter_(result_) {}

  KafkaCheckResult run() {
    register_sends();
    collect_observations();
    check_final_log();
    check_sequences();
    check_unseen();
    check_group_states();
    assert(result_.ok() == result_.anomaly_counts.empty());
    return std::move(result_);
  }

 private:
  // The records a send wrote: its acknowledgement's (with offsets) when it has them.
  const std::vector<RecordRef>& send_records(const Op& op) const {
    if (op.type == OpType::invoke && partner_[op.index] != kNoOp) {
      const Op& completion = ops_[partner_[op.index]];
      if (completion.type == OpType::ok && !completion.records.empty()) return completion.records;
    }
    return op.records;
  }
  Id partition_id(const TopicPartition& tp) {
    const Id id = partition_ids_.id(tp);
    if (id == partitions_.size()) partitions_.emplace_back();
    return id;
  }
  Id value_id(std::string_view value) {
    const Id id = value_ids_.id(value);
    if (id == values_.size()) values_.emplace_back();
    return id;
  }

  // Pass 1: every value a send carried, with the send's outcome. A send is its invoke (or a
  // standalone completion); values are unique per run, so the first send of a value is its send.
  void register_sends() {
    for (const Op& op : ops_) {
      if (op.f != kSend) continue;
      const bool standalone = op.type != OpType::invoke && partner_[op.index] == kNoOp;
      if (op.type != OpType::invoke && !standalone) continue;
      const OpType outcome = outcome_of(ops_, partner_, op);
      for (const RecordRef& record : send_records(op)) {
        ValueFacts& facts = values_[value_id(record.value)];
        if (facts.sent) continue;
        facts.sent = true;
        facts.partition = partition_id(record.tp);
        facts.key = record.key;
        facts.send_op = op.index;
        facts.outcome = outcome;
        if (outcome == OpType::ok) facts.acknowledged_offset = record.offset;
      }
    }
  }

  // Pass 2: what ok sends and ok polls report about offsets. Checks inconsistent-offsets,
  // duplicate, phantom-record and failed-write-visible as records are seen.
  void collect_observations() {
    for (const Op& op : ops_) {
      if (op.type != OpType::ok || !carries_records(op.f)) continue;
      const bool final_read = op.f == kPoll && is_final_reader(op.process);
      if (final_read) result_.final_read = true;
      for (const RecordRef& record : op.records) {
        const Id partition = partition_id(record.tp);
        const Id value = value_id(record.value);
        if (op.f == kPoll) check_polled_record(op, record, partition, value, final_read);
        if (record.offset < 0) continue;
        if (values_[value].sent && values_[value].partition == partition) {
          check_duplicate(op, record, value);
        }
        if (final_read) {
          partitions_[partition].final_log.push_back({record.offset, {value, op.index}});
          continue;
        }
        auto [it, inserted] = partitions_[partition].observed.try_emplace(
            record.offset, Observation{value, op.index});
        if (!inserted && it->second.value != value) {
          report_inconsistent(partition, record.offset, it->second, {value, op.index});
        }
      }
    }
    for (PartitionFacts& partition : partitions_) {
      std::stable_sort(partition.final_log.begin(), partition.final_log.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
    }
  }

  // phantom-record: a poll returned a value no send carried to that partition (or with another
  // key): a correct broker serves only what producers wrote, where they wrote it.
  // failed-write-visible: a poll returned a value whose send failed, i.e. was certainly refused.
  void check_polled_record(const Op& op, const RecordRef& record, Id partition, Id value,
                           bool final_read) {
    ValueFacts& facts = values_[value];
    if (final_read) {
      if (!facts.in_final) facts.final_offset = record.offset;
      facts.in_final = true;
    }
    if (!facts.sent) {
      reporter_.report("phantom-record", {op.index}, [&] {
        return show(record.tp) + " offset " + std::to_string(record.offset) + ": polled value " +
               show_value(record.value) + " was never sent";
      });
    } else if (facts.partition != partition) {
      reporter_.report("phantom-record", {facts.send_op, op.index}, [&] {
        return "value " + show_value(record.value) + " sent to " +
               show(partition_ids_.key(facts.partition)) + " was polled from " + show(record.tp) +
               " offset " + std::to_string(record.offset);
      });
    } else if (facts.key != record.key) {
      reporter_.report("phantom-record", {facts.send_op, op.index}, [&] {
        return show(record.tp) + " offset " + std::to_string(record.offset) + ": value " +
               show_value(record.value) + " sent with key " + show_value(facts.key) +
               " was polled with key " + show_value(record.key);
      });
    } else if (facts.outcome == OpType::fail && !facts.failed_visible_reported) {
      facts.failed_visible_reported = true;
      reporter_.report("failed-write-visible", {facts.send_op, op.index}, [&] {
        return show(record.tp) + " offset " + std::to_string(record.offset) + ": value " +
               show_value(record.value) + " was polled although its send failed";
      });
    }
  }

  // duplicate: one value reported at two different offsets of the partition it was sent to.
  // An idempotent producer writes each record once; without idempotence a retry after a lost
  // acknowledgement may write it again, so it is only counted.
  void check_duplicate(const Op& op, const RecordRef& record, Id value) {
    ValueFacts& facts = values_[value];
    if (facts.first_offset < 0) {
      facts.first_offset = record.offset;
      facts.first_offset_op = op.index;
      return;
    }
    if (facts.first_offset == record.offset || facts.duplicate) return;
    facts.duplicate = true;
    ++result_.duplicates;
    if (!options_.idempotent_producers) return;
    reporter_.report("duplicate", {facts.send_op, facts.first_offset_op, op.index}, [&] {
      return show(record.tp) + ": value " + show_value(record.value) + " at offsets " +
             std::to_string(facts.first_offset) + " and " + std::to_string(record.offset);
    });
  }

  // inconsistent-offsets: one offset of a partition reported with two different values (by an
  // acknowledgement, a consumer's poll or the final read). Reported once per offset.
  void report_inconsistent(Id partition, std::int64_t offset, Observation first,
                           Observation second) {
    if (!inconsistent_reported_.emplace(partition, offset).second) return;
    reporter_.report("inconsistent-offsets", {first.op, second.op}, [&] {
      return show(partition_ids_.key(partition)) + " offset " + std::to_string(offset) + " holds " +
             show_value(value_ids_.key(first.value)) + " and " +
             show_value(value_ids_.key(second.value));
    });
  }

  // Judges every record an ok send acknowledged or a consumer's ok poll returned against the
  // final read (a record a consumer saw was committed, so it must last):
  //   inconsistent-offsets  the final read holds another value at that offset (or holds two)
  //   lost-write            the final read has no record at that offset but reaches past it
  //                         (for an acknowledged record without offset: the value is absent)
  //   liveness              the final read ends before that offset, or no final read succeeded
  // With retention_may_delete, offsets below the final read's first offset are not judged.
  void check_final_log() {
    bool final_attempted = false;
    std::vector<std::int64_t> final_ops;
    for (const Op& op : ops_) {
      if (op.f != kPoll || !is_final_reader(op.process)) continue;
      final_attempted = true;
      if (final_ops.size() < 4) final_ops.push_back(op.index);
    }
    if (!final_attempted) return;  // not judged; the summary says there was no final read
    if (!result_.final_read) {
      reporter_.report("liveness", final_ops,
                       [] { return std::string("no final read succeeded"); });
      return;
    }
    for (Id partition = 0; partition < partitions_.size(); ++partition) {
      const PartitionFacts& facts = partitions_[partition];
      assert(std::is_sorted(facts.final_log.begin(), facts.final_log.end(),
                            [](const auto& a, const auto& b) { return a.first < b.first; }));
      result_.final_records += facts.final_log.size();
      for (std::size_t i = 1; i < facts.final_log.size(); ++i) {
        const auto& [offset, observation] = facts.final_log[i];
        if (offset == facts.final_log[i - 1].first &&
            observation.value != facts.final_log[i - 1].second.value) {
          report_inconsistent(partition, offset, facts.final_log[i - 1].second, observation);
        }
      }
      std::vector<std::pair<std::int64_t, Observation>> observed(facts.observed.begin(),
                                                                 facts.observed.end());
      std::sort(observed.begin(), observed.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [offset, observation] : observed) {
        check_against_final(partition, offset, observation);
      }
    }
    for (Id value = 0; value < values_.size(); ++value) {
      const ValueFacts& facts = values_[value];
      if (facts.outcome != OpType::ok || facts.acknowledged_offset >= 0 || facts.in_final) continue;
      if (options_.retention_may_delete) continue;  // cannot place it before the log start
      reporter_.report("lost-write", {facts.send_op}, [&] {
        return show(partition_ids_.key(facts.partition)) + ": acknowledged value " +
               show_value(value_ids_.key(value)) +
               " (offset not reported) is not in the final read";
      });
    }
  }

  void check_against_final(Id partition, std::int64_t offset, Observation observation) {
    const PartitionFacts& facts = partitions_[partition];
    const ValueFacts& value = values_[observation.value];
    if (value.sent && value.outcome == OpType::fail) return;  // failed-write-visible said it
    if (options_.retention_may_delete &&
        (facts.final_log.empty() || offset < facts.final_log.front().first)) {
      return;
    }
    auto found = facts.final_at_or_after(offset);
    if (found != facts.final_log.end() && found->first == offset) {
      for (auto same = found; same != facts.final_log.end() && same->first == offset; ++same) {
        if (same->second.value == observation.value) return;
      }
      report_inconsistent(partition, offset, observation, found->second);
      return;
    }
    const std::string what = show(partition_ids_.key(partition)) + " offset " +
                             std::to_string(offset) + ": value " +
                             show_value(value_ids_.key(observation.value));
    if (found != facts.final_log.end()) {
      reporter_.report("lost-write", {observation.op, found->second.op}, [&] {
        return what + " is missing from the final read, which holds offset " +
               std::to_string(found->first);
      });
    } else {
      reporter_.report("liveness", {observation.op}, [&] {
        return what + " is not readable: the final read ends at offset " +
               (facts.final_log.empty() ? std::string("(empty)")
                                        : std::to_string(facts.final_log.back().first));
      });
    }
  }

  // Pass 3: each process's ops in history order.
  void check_sequences() {
    for (const Op& op : ops_) {
      const Id process = process_ids_.id(op.process);
      if (is_process_event(op.f)) {
        forget_process(process);
        continue;
      }
      const bool standalone = op.type != OpType::invoke && partner_[op.index] == kNoOp;
      const Op* invoke = op.type == OpType::invoke ? nullptr
                         : standalone              ? &op
                                                   : &ops_[partner_[op.index]];
      if (op.f == kSend) {
        on_send(op, process, invoke, standalone);
      } else if (op.f == kCommit) {
        on_commit(op, invoke, standalone);
      } else if (op.type == OpType::ok && op.f == kPoll) {
        ++result_.polls_ok;
        result_.records_polled += op.records.size();
        on_poll(op, process);
      } else if (op.type == OpType::ok && op.f == kAssign) {
        on_assign(op, process);
      } else if (op.type == OpType::ok && op.f == kRevoke) {
        on_revoke(op, process);
      } else if (op.f == kGroupState && op.type != OpType::invoke) {
        last_group_state_[op.group] = op.index;
      }
    }
  }

  // A crashed or restarted process starts over: new fetch positions, no partitions owned.
  void forget_process(Id process) {
    positions_.erase(process);
    release_owned(process, [](const OwnedPartition&) { return true; });
  }

  // Positions of a producer's records, per slot (a partition; a partition and a key), and the
  // highest each slot had reached for a process.
  using Slots = std::vector<std::pair<std::uint64_t, std::int64_t>>;
  using Highest = std::unordered_map<std::pair<Id, std::uint64_t>, std::int64_t, PairHash>;

  struct SendSnapshot {
    Slots acknowledged;  // partition -> highest offset acknowledged
    Slots key_order;     // (partition, key) -> highest final-read offset of the key
  };

  std::uint64_t partition_slot(const RecordRef& record) { return partition_id(record.tp); }
  std::uint64_t key_slot(const RecordRef& record) {
    return pack(partition_id(record.tp), key_ids_.id(record.key));
  }

  template <class SlotOf>
  Slots snapshot_slots(const Highest& highest, Id process, const std::vector<RecordRef>& records,
                       SlotOf&& slot_of) {
    Slots snapshot;
    for (const RecordRef& record : records) {
      const std::uint64_t slot = slot_of(record);
      auto found = highest.find({process, slot});
      if (found != highest.end()) snapshot.emplace_back(slot, found->second);
    }
    return snapshot;
  }

  SendSnapshot snapshot_send(const Op& op, Id process) {
    const auto& records = send_records(op);
    return {snapshot_slots(highest_acknowledged_, process, records,
                           [&](const RecordRef& r) { return partition_slot(r); }),
            snapshot_slots(highest_final_of_key_, process, records,
                           [&](const RecordRef& r) { return key_slot(r); })};
  }

  void on_send(const Op& op, Id process, const Op* invoke, bool standalone) {
    if (op.type == OpType::invoke) {
      if (partner_[op.index] == kNoOp) {
        ++result_.sends_info;  // never completed
      } else {
        send_snapshots_.emplace(op.index, snapshot_send(op, process));
      }
      return;
    }
    assert(invoke != nullptr);
    if (op.type == OpType::ok) ++result_.sends_ok;
    if (op.type == OpType::info) ++result_.sends_info;
    if (op.type == OpType::fail) ++result_.sends_fail;
    SendSnapshot snapshot;
    if (standalone) {
      snapshot = snapshot_send(op, process);
    } else if (auto found = send_snapshots_.find(invoke->index); found != send_snapshots_.end()) {
      snapshot = std::move(found->second);
      send_snapshots_.erase(found);
    }
    if (op.type != OpType::ok) return;
    const auto& records = op.records.empty() ? invoke->records : op.records;
    check_send_offsets(op, process, records, snapshot.acknowledged);
    if (options_.check_per_key_order) check_key_order(op, process, records, snapshot.key_order);
  }

  // Walks one acknowledged send's records: per slot, each position (skipped when negative) must
  // be above the previous one in the same send or, for the first, above the highest the process
  // had reached before invoking the send. Calls out_of_order(record, position, bound,
  // within_send) otherwise, then raises `highest` to what the send reached.
  template <class SlotOf, class PositionOf, class OutOfOrder>
  void check_increasing(Id process, const std::vector<RecordRef>& records, const Slots& before,
                        Highest& highest, SlotOf&& slot_of, PositionOf&& position_of,
                        OutOfOrder&& out_of_order) {
    Slots last_in_send;
    auto find_slot = [](auto& slots, std::uint64_t slot) {
      return std::find_if(slots.begin(), slots.end(),
                          [&](const auto& s) { return s.first == slot; });
    };
    for (const RecordRef& record : records) {
      const std::int64_t position = position_of(record);
      if (position < 0) continue;
      const std::uint64_t slot = slot_of(record);
      auto last = find_slot(last_in_send, slot);
      auto earlier = find_slot(before, slot);
      const bool within_send = last != last_in_send.end();
      const std::int64_t bound = within_send               ? last->second
                                 : earlier != before.end() ? earlier->second
                                                           : -1;
      if (position <= bound) out_of_order(record, position, bound, within_send);
      if (within_send) {
        last->second = std::max(last->second, position);
      } else {
        last_in_send.emplace_back(slot, position);
      }
    }
    for (const auto& [slot, position] : last_in_send) {
      auto [it, inserted] = highest.try_emplace({process, slot}, position);
      if (!inserted) it->second = std::max(it->second, position);
    }
  }

  // nonmonotonic-send: the offsets one send acknowledges in a partition do not increase, or its
  // first is not above the highest offset the process had been acknowledged in that partition
  // before invoking it (that record was in the log before this one was even sent).
  void check_send_offsets(const Op& op, Id process, const std::vector<RecordRef>& records,
                          const Slots& before) {
    check_increasing(
        process, records, before, highest_acknowledged_,
        [&](const RecordRef& r) { return partition_slot(r); },
        [](const RecordRef& r) { return r.offset; },
        [&](const RecordRef& record, std::int64_t offset, std::int64_t bound, bool within_send) {
          reporter_.report("nonmonotonic-send", {op.index}, [&] {
            return show(record.tp) + ": " + op.process + " was acknowledged offset " +
                   std::to_string(offset) + " for " + show_value(record.value) +
                   (within_send ? " after offset " : " although it had been acknowledged offset ") +
                   std::to_string(bound) +
                   (within_send ? " in the same send" : " before sending it");
          });
        });
  }

  // per-key-order: the same walk over the final-read offsets (first appearances) of one key's
  // records: a producer's order of a key must be the log's order of that key. Records missing
  // from the final read are lost-write's to judge.
  void check_key_order(const Op& op, Id process, const std::vector<RecordRef>& records,
                       const Slots& before) {
    check_increasing(
        process, records, before, highest_final_of_key_,
        [&](const RecordRef& r) { return key_slot(r); },
        [&](const RecordRef& r) {
          const ValueFacts& facts = values_[value_id(r.value)];
          return facts.in_final ? facts.final_offset : std::int64_t{-1};
        },
        [&](const RecordRef& record, std::int64_t offset, std::int64_t bound, bool) {
          reporter_.report("per-key-order", {op.index}, [&] {
            return show(record.tp) + " key " + show_value(record.key) + ": " + op.process +
                   " sent " + show_value(record.value) +
                   " after a record of that key that the final read holds at offset " +
                   std::to_string(bound) + ", but it stands at offset " + std::to_string(offset);
          });
        });
  }

  // nonmonotonic-poll: within one continuous ownership of a partition by one process (from its
  // first poll, or an assign or revoke naming the partition, or a crash/restart, to the next of
  // those), a polled offset not above the previous one polled (in the same poll or an earlier).
  // poll-skip: in the same run, a polled offset more than one above the previous one while the
  // final read holds an offset in between. (Rebalances, crashes and seeks to a committed offset
  // legitimately rewind a consumer, which is why each ownership starts afresh.)
  void on_poll(const Op& op, Id process) {
    const bool consumer = !is_final_reader(op.process);
    std::string_view group_name = op.group;
    if (auto assigned = group_of_process_.find(process);
        group_name.empty() && assigned != group_of_process_.end()) {
      group_name = assigned->second;
    }
    const Id group = group_ids_.id(group_name);
    auto& positions = positions_[process];
    std::vector<Id> reported_backwards, reported_skip;
    for (const RecordRef& record : op.records) {
      const Id partition = partition_id(record.tp);
      if (consumer) note_group_poll(group, partition, record);
      if (record.offset < 0) continue;
      auto [position, first] = positions.try_emplace(partition, Position{record.offset, op.index});
      if (first) continue;
      const Position last = position->second;
      position->second = {record.offset, op.index};
      if (record.offset <= last.offset) {
        if (std::find(reported_backwards.begin(), reported_backwards.end(), partition) !=
            reported_backwards.end()) {
          continue;
        }
        reported_backwards.push_back(partition);
        reporter_.report("nonmonotonic-poll", {last.op, op.index}, [&] {
          return show(record.tp) + ": " + op.process + " polled offset " +
                 std::to_string(record.offset) + " after offset " + std::to_string(last.offset) +
                 " without a rebalance or restart between";
        });
        continue;
      }
      const PartitionFacts& facts = partitions_[partition];
      auto skipped = facts.final_at_or_after(last.offset + 1);
      if (skipped == facts.final_log.end() || skipped->first >= record.offset) continue;
      if (std::find(reported_skip.begin(), reported_skip.end(), partition) != reported_skip.end()) {
        continue;
      }
      reported_skip.push_back(partition);
      reporter_.report("poll-skip", {last.op, op.index}, [&] {
        return show(record.tp) + ": " + op.process + " polled offset " +
               std::to_string(record.offset) + " right after offset " +
               std::to_string(last.offset) + ", skipping offset " + std::to_string(skipped->first) +
               " (" + show_value(value_ids_.key(skipped->second.value)) + ")";
      });
    }
  }

  void note_group_poll(Id group, Id partition, const RecordRef& record) {
    auto& seen = seen_by_group_[group];
    const Id value = value_id(record.value);
    if (seen.size() <= value) seen.resize(values_.size(), false);
    seen[value] = true;
    if (record.offset < 0) return;
    auto [range, inserted] =
        group_poll_ranges_.try_emplace({group, partition}, PollRange{record.offset, record.offset});
    if (!inserted) {
      range->second.lowest = std::min(range->second.lowest, record.offset);
      range->second.highest = std::max(range->second.highest, record.offset);
    }
  }

  // group-exclusivity: a member is assigned a partition in a generation of a group while another
  // live member holds it in that same generation. A hold ends with the holder's revoke of the
  // partition, its crash or restart, or its assignment in a later generation of the group (a
  // member is in one generation at a time).
  void on_assign(const Op& op, Id process) {
    const Id group = group_ids_.id(op.group);
    group_of_process_[process] = group_ids_.key(group);
    auto& positions = positions_[process];
    for (const TopicPartition& tp : op.partitions) positions.erase(partition_id(tp));
    if (op.generation < 0) return;  // a manual assignment: no group generation to judge
    if (generations_seen_.emplace(group, op.generation).second) ++result_.rebalances;
    auto [highest, inserted] = highest_generation_.try_emplace(group, op.generation);
    if (!inserted) highest->second = std::max(highest->second, op.generation);
    release_owned(process, [&](const OwnedPartition& owned) {
      return owned.group == group && owned.generation < op.generation;
    });
    for (const TopicPartition& tp : op.partitions) {
      const Id partition = partition_id(tp);
      const OwnedPartition owned{group, op.generation, partition};
      auto [owner, free] = owners_.try_emplace(owned, Owner{process, op.index});
      if (free) {
        owned_by_process_[process].push_back(owned);
      } else if (owner->second.process != process) {
        reporter_.report("group-exclusivity", {owner->second.op, op.index}, [&] {
          return "group " + show_value(op.group) + " generation " + std::to_string(op.generation) +
                 ": " + show(tp) + " assigned to " + op.process + " while " +
                 std::string(process_ids_.key(owner->second.process)) + " owns it";
        });
      }
    }
  }

  void on_revoke(const Op& op, Id process) {
    const Id group = group_ids_.id(op.group);
    auto& positions = positions_[process];
    for (const TopicPartition& tp : op.partitions) {
      const Id partition = partition_id(tp);
      positions.erase(partition);
      release_owned(process, [&](const OwnedPartition& owned) {
        return owned.group == group && owned.partition == partition;
      });
    }
  }

  template <class Which>
  void release_owned(Id process, Which&& which) {
    auto held = owned_by_process_.find(process);
    if (held == owned_by_process_.end()) return;
    std::erase_if(held->second, [&](const OwnedPartition& owned) {
      if (!which(owned)) return false;
      auto owner = owners_.find(owned);
      if (owner != owners_.end() && owner->second.process == process) owners_.erase(owner);
      return true;
    });
  }

  struct CommitSnapshot {
    std::int32_t highest_generation = -1;
    std::vector<std::pair<Id, std::int64_t>> highest_committed;  // partition -> offset
  };

  CommitSnapshot snapshot_commit(const Op& op) {
    CommitSnapshot snapshot;
    const Id group = group_ids_.id(op.group);
    if (auto found = highest_generation_.find(group); found != highest_generation_.end()) {
      snapshot.highest_generation = found->second;
    }
    for (const CommittedOffset& committed : op.offsets) {
      const Id partition = partition_id(committed.tp);
      auto found = highest_committed_.find(pack(group, partition));
      if (found != highest_committed_.end()) {
        snapshot.highest_committed.emplace_back(partition, found->second);
      }
    }
    return snapshot;
  }

  void on_commit(const Op& op, const Op* invoke, bool standalone) {
    if (op.type == OpType::invoke) {
      if (partner_[op.index] != kNoOp) commit_snapshots_.emplace(op.index, snapshot_commit(op));
      return;
    }
    assert(invoke != nullptr);
    CommitSnapshot snapshot;
    if (standalone) {
      snapshot = snapshot_commit(op);
    } else if (auto found = commit_snapshots_.find(invoke->index);
               found != commit_snapshots_.end()) {
      snapshot = std::move(found->second);
      commit_snapshots_.erase(found);
    }
    if (op.type == OpType::ok) check_acknowledged_commit(op, *invoke, snapshot);
  }

  // stale-commit-accepted: a commit acknowledged although its generation is below one the group
  // had already assigned before the commit was invoked (the coordinator must refuse it).
  // commit-regression: a commit acknowledged for an offset below one acknowledged for that group
  // and partition before this commit was invoked. (Consumers commit what they polled and resume
  // from the committed offset, so acknowledged offsets never go back; commits in flight together
  // may be acknowledged in either order, which is why only those acknowledged earlier count.)
  void check_acknowledged_commit(const Op& op, const Op& invoke, const CommitSnapshot& snapshot) {
    ++result_.commits_ok;
    const std::string& group_name = op.group.empty() ? invoke.group : op.group;
    const Id group = group_ids_.id(group_name);
    const std::int32_t generation = invoke.generation >= 0 ? invoke.generation : op.generation;
    if (generation >= 0 && snapshot.highest_generation > generation) {
      reporter_.report("stale-commit-accepted", {invoke.index, op.index}, [&] {
        return "group " + show_value(group_name) + ": " + op.process + "'s commit of generation " +
               std::to_string(generation) + " was acknowledged although generation " +
               std::to_string(snapshot.highest_generation) +
               " had been assigned before it was sent";
      });
    }
    const auto& offsets = op.offsets.empty() ? invoke.offsets : op.offsets;
    for (const CommittedOffset& committed : offsets) {
      const Id partition = partition_id(committed.tp);
      auto before =
          std::find_if(snapshot.highest_committed.begin(), snapshot.highest_committed.end(),
                       [&](const auto& p) { return p.first == partition; });
      if (before != snapshot.highest_committed.end() && committed.offset < before->second) {
        reporter_.report("commit-regression", {invoke.index, op.index}, [&] {
          return "group " + show_value(group_name) + " " + show(committed.tp) + ": " + op.process +
                 "'s commit of offset " + std::to_string(committed.offset) +
                 " was acknowledged after offset " + std::to_string(before->second) + " had been";
        });
      }
      auto [it, inserted] =
          highest_committed_.try_emplace(pack(group, partition), committed.offset);
      if (!inserted) it->second = std::max(it->second, committed.offset);
    }
  }

  // unseen-write: a record of the final log that no consumer of a group polled, although that
  // group's consumers polled the partition both below and above its offset. Consumers that
  // resume from committed offsets (and commit only what they polled) read every record from
  // where they started to where they got.
  void check_unseen() {
    std::vector<std::pair<std::pair<Id, Id>, PollRange>> ranges(group_poll_ranges_.begin(),
                                                                group_poll_ranges_.end());
    std::sort(ranges.begin(), ranges.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [group_partition, range] : ranges) {
      const auto [group, partition] = group_partition;
      const PartitionFacts& facts = partitions_[partition];
      const auto& seen = seen_by_group_[group];
      for (auto entry = facts.final_at_or_after(range.lowest + 1);
           entry != facts.final_log.end() && entry->first < range.highest; ++entry) {
        const Id value = entry->second.value;
        if (value < seen.size() && seen[value]) continue;
        reporter_.report("unseen-write", {entry->second.op}, [&] {
          return show(partition_ids_.key(partition)) + " offset " + std::to_string(entry->first) +
                 ": " + show_value(value_ids_.key(value)) + " was never polled by group " +
                 show_value(group_ids_.key(group)) + ", which polled offsets " +
                 std::to_string(range.lowest) + " to " + std::to_string(range.highest);
        });
      }
    }
  }

  // liveness (groups): with require_final_groups_stable, a group whose last group-state op did
  // not succeed or reports a state other than Stable.
  void check_group_states() {
    if (!options_.require_final_groups_stable) return;
    for (const auto& [group, index] : last_group_state_) {
      const Op& op = ops_[index];
      if (op.type == OpType::ok && op.group_state == "Stable") continue;
      reporter_.report("liveness", {index}, [&] {
        return "group " + show_value(group) + " ends " +
               (op.type == OpType::ok
                    ? "in state " + show_value(op.group_state)
                    : "with its state unknown (" + std::string(to_string(op.type)) + ")");
      });
    }
  }

  const std::vector<Op>& ops_;
  const KafkaCheckOptions& options_;
  std::vector<std::int64_t> partner_;
  KafkaCheckResult result_;
  Reporter reporter_;

  Interner<TopicPartition, std::map<TopicPartition, Id>> partition_ids_;
  Interner<std::string_view> value_ids_;
  Interner<std::string_view> process_ids_;
  Interner<std::string_view> group_ids_;
  Interner<std::string_view> key_ids_;
  std::vector<PartitionFacts> partitions_;
  std::vector<ValueFacts> values_;
  std::set<std::pair<Id, std::int64_t>> inconsistent_reported_;

  Highest highest_acknowledged_;  // (process, partition) -> offset
  Highest highest_final_of_key_;  // (process, (partition, key)) -> final-read offset
  std::unordered_map<std::int64_t, SendSnapshot> send_snapshots_;       // by invoke index
  std::unordered_map<Id, std::unordered_map<Id, Position>> positions_;  // process -> partition
  std::unordered_map<Id, std::string_view> group_of_process_;
  std::unordered_map<Id, std::vector<bool>> seen_by_group_;  // group -> value -> polled
  std::unordered_map<std::pair<Id, Id>, PollRange, PairHash> group_poll_ranges_;
  std::map<OwnedPartition, Owner> owners_;
  std::unordered_map<Id, std::vector<OwnedPartition>> owned_by_process_;
  std::set<std::pair<Id, std::int32_t>> generations_seen_;
  std::unordered_map<Id, std::int32_t> highest_generation_;            // group -> generation
  std::unordered_map<std::uint64_t, std::int64_t> highest_committed_;  // (group, partition)
  std::unordered_map<std::int64_t, CommitSnapshot> commit_snapshots_;  // by invoke index
  std::map<std::string, std::int64_t> last_group_state_;               // group -> op index
};

}  // namespace

KafkaCheckResult check_kafka_history(const History& history, const KafkaCheckOptions& options) {
  return KafkaChecker(history, options).run();
}

std::string KafkaCheckResult::summary() const {
  std::string line =
      "sends ok=" + std::to_string(sends_ok) + " info=" + std::to_string(sends_info) +
      " fail=" + std::to_string(sends_fail) + " polls=" + std::to_string(polls_ok) +
      " records_polled=" + std::to_string(records_polled) +
      " commits=" + std::to_string(commits_ok) + " rebalances=" + std::to_string(rebalances) +
      " duplicates=" + std::to_string(duplicates) + " final_read=" +
      (final_read ? std::to_string(final_records) + "_records" : std::string("none"));
  std::uint64_t total = 0;
  std::string by_type;
  for (const auto& [type, count] : anomaly_counts) {
    total += count;
    by_type += " " + type + "=" + std::to_string(count);
  }
  line += " anomalies=" + std::to_string(total);
  if (!by_type.empty()) line += " (" + by_type.substr(1) + ")";
  return line;
}

}  // namespace sluice::checkers
