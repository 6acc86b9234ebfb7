// Mixed load against a running maplex-server (issue #5, item 6): Predict clients and
// streaming agents at the same time, for a fixed duration. bench/load_run.py starts the
// server process, imports the bundled data, samples the server's RSS and runs this.
//
//   build/bin/load_test --server=127.0.0.1:50051 --duration_s=60 --predict_clients=64
//       --agents=16            (one command line; from the source tree, for data/)
//
// Predict: the async load generator (bench/load_generator.h) keeps --predict_clients calls
// in flight over --channels connections; each call is a single cell or, every fourth call,
// a batch of 8, on one of the imported devices in turn. Agents: one thread each registers
// its own new device (the spec of a bundled device, its own fingerprint) and every
// --agent_interval_ms sends --agent_batch measurements with new unique ids, real NB201 arch
// indices and that bundled device's latencies scaled and noised, each batch on its own
// Ingest stream through MaplexClient::SendMeasurements. Prints one JSON line of results.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench/load_generator.h"
#include "client/client.h"
#include "client/data_files.h"
#include "core/hardware/spec_proto.h"
#include "maplex/v1/predictor.grpc.pb.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "address of the running maplex-server");
ABSL_FLAG(int, duration_s, 60, "measured window, seconds (after the warm-up)");
ABSL_FLAG(int, warmup_s, 2, "seconds of the same load before the measured window");
ABSL_FLAG(int, predict_clients, 64, "Predict calls kept in flight");
ABSL_FLAG(int, channels, 8, "connections the Predict calls spread over");
ABSL_FLAG(int, agents, 16, "streaming agents, one thread and one new device each");
ABSL_FLAG(int, agent_batch, 10, "measurements per batch of each agent");
ABSL_FLAG(int, agent_interval_ms, 200, "time between the starts of an agent's batches");
ABSL_FLAG(std::string, data_dir, "data", "folder of nb201_latency.csv.gz and nb201_devices.csv");
ABSL_FLAG(std::string, predict_devices, "",
          "comma-separated devices to predict on (default: every device of the data set)");

namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = maplex::v1;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "load_test: %s\n", what.c_str());
  std::exit(1);
}

struct AgentResult {
  int64_t batches = 0;
  int64_t measurements = 0;  // acknowledged as inserted
  int64_t errors = 0;        // failed batches
  std::string first_error;
  std::vector<double> batch_latencies_ms;  // batch sent until its ack
};

// One agent: registers `device_id` like `like` (its own fingerprint, so a new device) and
// streams batches until `stop`; counts only what completes in [measure_from, measure_to).
AgentResult RunAgent(const std::string& address, const maplex::core::DeviceData& like,
                     const std::string& device_id, uint32_t seed, int batch_size,
                     Clock::duration interval, Clock::time_point measure_from,
                     Clock::time_point measure_to) {
  AgentResult r;
  maplex::client::ClientOptions options;
  options.address = address;
  options.stream_timeout = absl::Seconds(30);
  absl::StatusOr<maplex::client::MaplexClient> client =
      maplex::client::MaplexClient::Connect(options);
  if (!client.ok()) Die(absl::StrCat("agent connect: ", client.status().ToString()));
  v1::RegisterDeviceRequest reg;
  reg.set_id(device_id);
  reg.set_hardware_fingerprint(absl::StrCat("load-test:", device_id));
  reg.set_hardware_name(absl::StrCat("load test agent like ", like.hardware));
  maplex::core::SpecToProto(like.descriptor.spec, reg.mutable_spec(), reg.mutable_config());
  reg.mutable_config()->set_runtime("load-test");
  if (absl::StatusOr<v1::RegisterDeviceResponse> d = client->RegisterDevice(reg); !d.ok()) {
    Die(absl::StrCat("agent register ", device_id, ": ", d.status().ToString()));
  }
  // Architectures in a random order without repeats, latencies of the bundled device
  // scaled (a different machine of the same kind) and noised (run-to-run variation).
  std::vector<size_t> order(like.samples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::lognormal_distribution<double> noise(0.0, 0.03);
  const double scale = 0.8 + 0.05 * (seed % 8);
  size_t next = 0;
  int64_t sequence = 0;
  Clock::time_point due = Clock::now();
  while (Clock::now() < measure_to) {
    std::vector<v1::Measurement> batch;
    for (int i = 0; i < batch_size; ++i) {
      const maplex::core::LatencySample& s = like.samples[order[next++ % order.size()]];
      v1::Measurement& m = batch.emplace_back();
      m.set_id(absl::StrCat("load:", device_id, ":", sequence++));
      m.set_device_id(device_id);
      m.mutable_arch()->set_index(s.arch_index);
      const double ms = s.latency_ms * scale * noise(rng);
      m.mutable_stats()->set_median_ms(ms);
      m.mutable_stats()->set_p90_ms(ms * 1.03);
      m.mutable_stats()->set_stddev_ms(ms * 0.01);
      m.mutable_stats()->set_repeats(20);
      m.mutable_protocol()->set_tool("bench/load_test");
      m.set_measured_at_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
    }
    const Clock::time_point sent = Clock::now();
    absl::StatusOr<v1::MeasurementAck> ack = client->SendMeasurements(batch, batch_size);
    const Clock::time_point done = Clock::now();
    if (done >= measure_from && done < measure_to) {
      if (ack.ok()) {
        ++r.batches;
        r.measurements += ack->inserted();
        r.batch_latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(done - sent).count());
      } else if (r.errors++ == 0) {
        r.first_error = ack.status().ToString();
      }
    }
    // A steady rate: the next batch starts one interval after this one was due.
    due += interval;
    std::this_thread::sleep_until(due);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string address = absl::GetFlag(FLAGS_server);
  const int predict_clients = absl::GetFlag(FLAGS_predict_clients);
  const int channel_count = absl::GetFlag(FLAGS_channels);
  const int agent_count = absl::GetFlag(FLAGS_agents);
  const int agent_batch = absl::GetFlag(FLAGS_agent_batch);
  const int interval_ms = absl::GetFlag(FLAGS_agent_interval_ms);
  if (predict_clients < 1 || channel_count < 1 || agent_count < 0 || agent_batch < 1 ||
      interval_ms < 1 || absl::GetFlag(FLAGS_duration_s) < 1 || absl::GetFlag(FLAGS_warmup_s) < 0) {
    Die("--predict_clients, --channels, --agent_batch, --agent_interval_ms and --duration_s "
        "want positive numbers, --agents and --warmup_s zero or more");
  }
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  absl::StatusOr<std::vector<maplex::core::DeviceData>> data = maplex::client::LoadLatencyData(
      data_dir + "/nb201_latency.csv.gz", data_dir + "/nb201_devices.csv");
  if (!data.ok()) Die(absl::StrCat("load data: ", data.status().ToString()));

  std::vector<std::string> predict_devices;
  if (const std::string only = absl::GetFlag(FLAGS_predict_devices); !only.empty()) {
    for (absl::string_view d : absl::StrSplit(only, ',', absl::SkipEmpty())) {
      predict_devices.emplace_back(d);
    }
  } else {
    for (const auto& d : *data) predict_devices.push_back(d.device);
  }
  // Single cells on each device, and every fourth request a batch of 8 cells.
  std::vector<v1::PredictRequest> requests;
  for (size_t i = 0; i < 4 * predict_devices.size(); ++i) {
    v1::PredictRequest& r = requests.emplace_back();
    r.set_device_id(predict_devices[i % predict_devices.size()]);
    const int cells = i % 4 == 3 ? 8 : 1;
    for (int c = 0; c < cells; ++c) {
      r.add_archs()->set_index(static_cast<int32_t>((i * 7919 + c * 1237) % 15625));
    }
  }

  maplex::bench::LoadOptions options;
  options.outstanding = predict_clients;
  options.warmup = absl::Seconds(absl::GetFlag(FLAGS_warmup_s));
  options.duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  const Clock::time_point begin = Clock::now();
  const Clock::time_point measure_from = begin + absl::ToChronoNanoseconds(options.warmup);
  const Clock::time_point measure_to = measure_from + absl::ToChronoNanoseconds(options.duration);

  std::vector<AgentResult> agent_results(static_cast<size_t>(agent_count));
  std::vector<std::thread> agents;
  const int64_t run_id = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  for (int a = 0; a < agent_count; ++a) {
    agents.emplace_back([&, a] {
      const auto& like = (*data)[static_cast<size_t>(a) % data->size()];
      agent_results[static_cast<size_t>(a)] = RunAgent(
          address, like, absl::StrCat("load-agent-", run_id, "-", a), static_cast<uint32_t>(a + 1),
          agent_batch, std::chrono::milliseconds(interval_ms), measure_from, measure_to);
    });
  }

  std::vector<std::shared_ptr<grpc::Channel>> channels =
      maplex::bench::MakeChannels(address, channel_count);
  std::vector<std::unique_ptr<v1::Predictor::Stub>> stubs;
  for (const auto& c : channels) stubs.push_back(v1::Predictor::NewStub(c));
  std::atomic<size_t> next_request{0};
  maplex::bench::LoadResult predict = maplex::bench::RunUnaryLoad<v1::PredictResponse>(
      options, stubs.size(), [&](size_t c, grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
        ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        const v1::PredictRequest& r = requests[next_request++ % requests.size()];
        return stubs[c]->PrepareAsyncPredict(ctx, r, cq);
      });
  for (std::thread& t : agents) t.join();

  AgentResult ingest;
  for (AgentResult& r : agent_results) {
    ingest.batches += r.batches;
    ingest.measurements += r.measurements;
    if (r.errors > 0 && ingest.errors == 0) ingest.first_error = r.first_error;
    ingest.errors += r.errors;
    ingest.batch_latencies_ms.insert(ingest.batch_latencies_ms.end(), r.batch_latencies_ms.begin(),
                                     r.batch_latencies_ms.end());
  }
  const double seconds = predict.seconds;
  std::vector<double>& batch_ms = ingest.batch_latencies_ms;
  const double ingest_p50 = maplex::bench::NearestRankPercentile(batch_ms, 0.5);
  const double ingest_p99 = maplex::bench::NearestRankPercentile(batch_ms, 0.99);
  // One line, keys in this order (bench/load_run.py reads it).
  auto decimals = [](double v, int digits) {
    double rounded = v;
    if (std::isfinite(v) && !absl::SimpleAtod(absl::StrFormat("%.*f", digits, v), &rounded)) {
      rounded = v;
    }
    return rounded;
  };
  const nlohmann::ordered_json summary = {
      {"seconds", decimals(seconds, 0)},
      {"predict_in_flight", predict_clients},
      {"channels", channel_count},
      {"predict_calls", static_cast<long long>(predict.calls)},
      {"predict_per_s", decimals(predict.CallsPerSecond(), 1)},
      {"predict_p50_us", decimals(predict.Percentile(0.5), 1)},
      {"predict_p99_us", decimals(predict.Percentile(0.99), 1)},
      {"predict_errors", static_cast<long long>(predict.errors)},
      {"predict_first_error", predict.first_error},
      {"agents", agent_count},
      {"agent_batch", agent_batch},
      {"agent_interval_ms", interval_ms},
      {"ingest_batches", static_cast<long long>(ingest.batches)},
      {"ingest_measurements", static_cast<long long>(ingest.measurements)},
      {"ingest_per_s", decimals(static_cast<double>(ingest.measurements) / seconds, 1)},
      {"ingest_batch_p50_ms", decimals(ingest_p50, 2)},
      {"ingest_batch_p99_ms", decimals(ingest_p99, 2)},
      {"ingest_errors", static_cast<long long>(ingest.errors)},
      {"ingest_first_error", ingest.first_error}};
  // Invalid UTF-8 in an error message is replaced, not thrown on.
  std::printf("%s\n",
              summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  return predict.errors == 0 && ingest.errors == 0 ? 0 : 1;
}
