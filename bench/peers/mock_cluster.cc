// sluice-mock-cluster: librdkafka's mock cluster (rd_kafka_mock_cluster_new) in a process of its
// own, so ci/bench.sh can measure its CPU and memory apart from the load client. It is an
// in-memory Kafka-protocol broker doing almost no work per request: its row is the ceiling the
// client library itself sets.
//
// Prints "bootstrap HOST:PORT" on stdout, then reads commands on stdin, one a line:
//   topic NAME PARTITIONS   create a topic (answers "ok" or "error ...")
// and exits when stdin closes or on SIGTERM/SIGINT.

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  const int brokers = argc > 1 ? std::atoi(argv[1]) : 1;
  rd_kafka_conf_t* config = rd_kafka_conf_new();
  char error[512];
  // The handle only owns the mock cluster's thread; it never talks to a broker.
  rd_kafka_t* handle = rd_kafka_new(RD_KAFKA_PRODUCER, config, error, sizeof error);
  if (handle == nullptr) {
    std::fprintf(stderr, "sluice-mock-cluster: %s\n", error);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle, brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "sluice-mock-cluster: rd_kafka_mock_cluster_new failed\n");
    return 1;
  }
  std::printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(cluster));
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string command;
    std::string topic;
    int partitions = 0;
    words >> command >> topic >> partitions;
    if (command != "topic" || topic.empty() || partitions <= 0) {
      std::printf("error: expected 'topic NAME PARTITIONS'\n");
    } else {
      const rd_kafka_resp_err_t created = rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, 1);
      if (created == RD_KAFKA_RESP_ERR_NO_ERROR) {
        std::printf("ok\n");
      } else {
        std::printf("error %s\n", rd_kafka_err2name(created));
      }
    }
    std::fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(cluster);
  rd_kafka_destroy(handle);
  return 0;
}
