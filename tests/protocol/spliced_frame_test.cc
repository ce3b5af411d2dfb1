// FileRecords: a message whose record bytes stay in a file encodes and sends exactly like the
// same message with the bytes in memory.
#include "core/protocol/spliced_frame.h"

#include <gtest/gtest.h>

#include "core/util/frame_io.h"
#include "sim/world.h"

namespace sluice::protocol {
namespace {

constexpr Field kPartition[] = {
    {.name = "index", .type = FieldType::int32},
    {.name = "records", .type = FieldType::records},
};
constexpr Field kMessage[] = {
    {.name = "partitions", .type = FieldType::array, .fields = fields_of(kPartition)},
    {.name = "trailer", .type = FieldType::string},
};

TEST(SplicedFrame, file_records_send_the_same_frame_as_in_memory_records) {
  sim::SimWorld world(5);
  bool done = false;
  world.add_node("node", [&](Env& env) {
    ASSERT_TRUE(env.disk().create_directories("data").has_value());
    auto file = env.disk().open("data/segment.log", OpenMode::create);
    ASSERT_TRUE(file.has_value());
    Bytes data(300'000);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 7 + 3);
    ASSERT_TRUE((*file)->append(data).has_value());

    // Two partitions: one with two slices of the file, one with in-memory bytes, one null.
    auto in_memory = StructValue::with_defaults(fields_of(kMessage));
    auto spliced = StructValue::with_defaults(fields_of(kMessage));
    const std::pair<std::uint64_t, std::uint64_t> ranges[] = {{100, 50'000}, {200'000, 99'000}};
    Bytes first(data.begin() + 100, data.begin() + 50'100);
    first.insert(first.end(), data.begin() + 200'000, data.begin() + 299'000);
    in_memory.add("partitions").set("index", std::int64_t{0}).set("records", first);
    FileRecords records;
    for (const auto& [position, size] : ranges) {
      records.slices.push_back(FileSlice{nullptr, file->get(), position, size});
      records.size_bytes += size;
    }
    spliced.add("partitions").set("index", std::int64_t{0}).set("records", records);
    for (StructValue* message : {&in_memory, &spliced}) {
      message->add("partitions").set("index", std::int64_t{1}).set("records", Bytes{std::byte{1}, std::byte{2}});
      message->add("partitions").set("index", std::int64_t{2});  // records stay null
      message->set("trailer", std::string("end"));
    }

    Bytes expected;
    encode_struct(fields_of(kMessage), 0, false, in_memory, expected);
    Bytes encoded;
    std::vector<Splice> splices;
    encode_struct(fields_of(kMessage), 0, false, spliced, encoded, splices);
    ASSERT_EQ(splices.size(), 1u);
    EXPECT_EQ(encoded.size() + records.size_bytes, expected.size());

    auto listener = env.net().listen(Address{"127.0.0.1", 0});
    ASSERT_TRUE(listener.has_value());
    env.scheduler().current_scope().spawn("sender", [&] {
      auto stream = (*listener)->accept(env.deadline_after(seconds(5)));
      ASSERT_TRUE(stream.has_value());
      ASSERT_TRUE(write_spliced_frame(**stream, encoded, splices, env.deadline_after(seconds(5))).has_value());
    });
    auto client = env.net().connect((*listener)->local_address(), env.deadline_after(seconds(5)));
    ASSERT_TRUE(client.has_value());
    auto frame = read_frame(**client, 1 << 20, env.deadline_after(seconds(5)));
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(*frame, expected);
    auto decoded = decode_message(fields_of(kMessage), 0, false, *frame);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->get_structs("partitions")[0]["records"].as_bytes(), first);
    done = true;
  });
  ASSERT_TRUE(world.run_until([&] { return done; }));
}

}  // namespace
}  // namespace sluice::protocol
