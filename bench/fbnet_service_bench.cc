// FBNet served by the function model through the real server (docs/BENCHMARKS.md, "FBNet
// through the server"; issues #12, #13). One process: a MaplexServer on a fresh database
// holding every bundled FBNet device (data/fbnet_latency.csv.gz, 19 references), and an
// async load generator (bench/load_generator.h) as client.
//
//   build/bin/fbnet_service_bench [--quick] [--json=out.json]   (from the source tree)
//
// Measures, in this order:
//   adapt       a new FBNet device with k samples: SendMeasurements acknowledged, then
//               Trainer::TrainNow (the kept FunctionModelTrainer refits that one target),
//               then its first Predict; median over --new_devices devices
//   batch       Predicts of 100,000 FBNet architectures each (compact arch_batch as
//               MaplexClient::PredictBatch sends it: packed two choices per byte unless
//               --packed=false; columnar answer, the interval as two factors unless
//               --interval_factors=false) over loopback gRPC, one call in flight and two, vs
//               FunctionModel::Predict in process on the same architectures (and the
//               service's handler, PredictorService::Answer, without the transport); the
//               gRPC answer, its factors expanded as the client does (ExpandIntervalFactors,
//               timed too), is checked equal to the in-process one, value for value
//   retraining  single-architecture FBNet Predict latency while TrainNow runs in a loop vs
//               without (alternating slices, as service_bench does for NB201)
// Every figure goes to --json (flat keys, numbers).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/load_generator.h"
#include "client/client.h"
#include "client/data_files.h"
#include "core/arch/fbnet_space.h"
#include "core/hardware/spec_proto.h"
#include "maplex/v1/predictor.grpc.pb.h"
#include "platform/grpc_transport.h"
#include "platform/process.h"
#include "server/server.h"
#include "server/services/predictor_service.h"

ABSL_FLAG(bool, quick, false, "short runs: checks the harness, figures are rough");
ABSL_FLAG(std::string, json, "", "write the figures here as one JSON object");
ABSL_FLAG(std::string, data_dir, "data", "folder of fbnet_latency.csv.gz and fbnet_devices.csv");
ABSL_FLAG(int, k, 10, "samples of each new device in the adaptation figure");
ABSL_FLAG(int, new_devices, 5, "new devices onboarded one after the other (median reported)");
ABSL_FLAG(int, batch_archs, 100000, "architectures of the large Predict");
ABSL_FLAG(bool, large_message_tcp_reads, true,
          "as maplex-server and the maplex CLI: gRPC's TCP reads sized to the message "
          "(platform/grpc_transport.h); false measures gRPC's defaults");
ABSL_FLAG(bool, packed, true,
          "the batch request as the client sends it by default: two choices per byte "
          "(ArchitectureBatch.bits_per_choice = 4); false sends one byte per choice");
ABSL_FLAG(bool, interval_factors, true,
          "the batch answer as the client asks for it by default: the latency column and the "
          "interval's two factors; false asks for the lower_ms and upper_ms columns too");

namespace {

using Clock = std::chrono::steady_clock;
using maplex::bench::LoadOptions;
using maplex::bench::LoadResult;
using maplex::bench::RunUnaryLoad;
namespace v1 = maplex::v1;
namespace core = maplex::core;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "fbnet_service_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return *std::move(v);
}
void OrDie(const absl::Status& s, const char* what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.ToString()));
}

std::map<std::string, double> figures;
void Set(const std::string& key, double value) {
  figures[key] = value;
  std::printf("%-40s %14.4g\n", key.c_str(), value);
  std::fflush(stdout);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

v1::RegisterDeviceRequest Registration(const std::string& id,
                                       const core::SpaceLatencyTable::Column& c) {
  v1::RegisterDeviceRequest reg;
  reg.set_id(id);
  std::string fingerprint = "public:";
  for (char ch : absl::AsciiStrToLower(c.hardware)) {
    fingerprint += absl::ascii_isalnum(static_cast<unsigned char>(ch)) ? ch : '-';
  }
  reg.set_hardware_fingerprint(id == c.device ? fingerprint : "bench:" + id);
  reg.set_hardware_name(c.hardware);
  core::SpecToProto(c.descriptor.spec, reg.mutable_spec(), reg.mutable_config());
  reg.mutable_config()->set_runtime("public");
  return reg;
}

v1::Measurement FbnetMeasurement(const std::string& device, size_t row, const core::Architecture& a,
                                 double ms) {
  v1::Measurement m;
  const std::string canonical = a.ToString();
  m.set_id(absl::StrCat("bench:", device, ":", row));
  m.set_device_id(device);
  m.mutable_arch()->set_space("fbnet");
  m.mutable_arch()->set_canonical(canonical);
  m.mutable_stats()->set_median_ms(ms);
  m.mutable_stats()->set_p90_ms(ms * 1.02);
  m.mutable_stats()->set_repeats(20);
  m.mutable_protocol()->set_tool("fbnet_service_bench");
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Before any gRPC object exists (the server and the client of this process share it).
  const char* experiments = absl::GetFlag(FLAGS_large_message_tcp_reads)
                                ? maplex::EnableLargeMessageTcpReads()
                                : std::getenv("GRPC_EXPERIMENTS");
  std::printf("GRPC_EXPERIMENTS=%s\n", experiments == nullptr ? "" : experiments);
  Set("large_message_tcp_reads",
      experiments != nullptr && std::string(experiments) == maplex::kLargeMessageGrpcExperiments);
  const bool quick = absl::GetFlag(FLAGS_quick);
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  const core::SpaceLatencyTable table =
      OrDie(maplex::client::LoadSpaceLatencyData(data_dir + "/fbnet_latency.csv.gz",
                                                 data_dir + "/fbnet_devices.csv"),
            "load data");
  const char* tmp = std::getenv("TMPDIR");
  std::string workdir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/maplex-fbnet-bench-XXXXXX");
  if (mkdtemp(workdir.data()) == nullptr) Die("cannot create a work folder");

  maplex::server::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.database_path = workdir + "/server.db";
  options.shutdown_grace = absl::Seconds(1);
  options.trainer.debounce = absl::Hours(1);  // trains when this benchmark says so
  options.trainer.max_delay = absl::Hours(1);
  // One request of --batch_archs architectures (the default limit is 20,000 per request).
  options.limits.max_archs_per_predict =
      std::max(options.limits.max_archs_per_predict, absl::GetFlag(FLAGS_batch_archs));
  std::unique_ptr<maplex::server::MaplexServer> server =
      OrDie(maplex::server::MaplexServer::Start(options), "start server");
  const std::string address = absl::StrCat("127.0.0.1:", server->port());
  maplex::client::ClientOptions client_options;
  client_options.address = address;
  client_options.timeout = absl::Seconds(120);
  if (!absl::GetFlag(FLAGS_packed)) client_options.pack_batches_from_bytes = SIZE_MAX;
  maplex::client::MaplexClient client =
      OrDie(maplex::client::MaplexClient::Connect(client_options), "connect");

  // Every bundled device as a reference.
  int64_t imported = 0;
  for (const auto& c : table.devices) {
    OrDie(client.RegisterDevice(Registration(c.device, c)), "register");
    std::vector<v1::Measurement> ms;
    for (size_t i = 0; i < table.archs.size(); ++i) {
      if (std::isfinite(c.latency_ms[i])) {
        ms.push_back(FbnetMeasurement(c.device, i, table.archs[i], c.latency_ms[i]));
      }
    }
    imported += static_cast<int64_t>(ms.size());
    OrDie(client.SendMeasurements(ms, 5000), "import");
  }
  Set("references", static_cast<double>(table.devices.size()));
  Set("imported_measurements", static_cast<double>(imported));
  {
    const Clock::time_point start = Clock::now();
    OrDie(server->trainer().TrainNow(), "train");
    Set("train_cold_s", SecondsSince(start));
  }

  // ---- adapt: ack -> TrainNow -> first Predict, for new devices one after the other ----
  const int k = absl::GetFlag(FLAGS_k);
  std::vector<double> ack_to_predict, train_s;
  std::mt19937 rng(11);
  const int new_devices = quick ? 2 : absl::GetFlag(FLAGS_new_devices);
  for (int n = 0; n < new_devices; ++n) {
    // A device like one of the references, scaled and noised, with k random samples.
    const auto& like = table.devices[static_cast<size_t>(n) % table.devices.size()];
    const std::string id = absl::StrCat("bench_new_", n);
    OrDie(client.RegisterDevice(Registration(id, like)), "register new device");
    std::lognormal_distribution<double> noise(0.0, 0.05);
    std::vector<size_t> rows(table.archs.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    std::shuffle(rows.begin(), rows.end(), rng);
    std::vector<v1::Measurement> sent;
    for (size_t i = 0; i < rows.size() && static_cast<int>(sent.size()) < k; ++i) {
      const double ms = like.latency_ms[rows[i]];
      if (std::isfinite(ms)) {
        sent.push_back(FbnetMeasurement(id, rows[i], table.archs[rows[i]], 1.37 * ms * noise(rng)));
      }
    }
    OrDie(client.SendMeasurements(sent, k), "send k");
    const Clock::time_point acked = Clock::now();
    OrDie(server->trainer().TrainNow(), "adapt");
    train_s.push_back(SecondsSince(acked));
    OrDie(client.Predict(id, {maplex::client::Canonical("fbnet", table.archs[0].ToString())}),
          "predict new device");
    ack_to_predict.push_back(SecondsSince(acked));
  }
  Set("adapt.k", k);
  Set("adapt.devices", new_devices);
  Set("adapt.ack_to_predict_ms", 1000 * Median(ack_to_predict));
  Set("adapt.train_ms", 1000 * Median(train_s));
  Set("adapt.ack_to_predict_max_ms",
      1000 * *std::max_element(ack_to_predict.begin(), ack_to_predict.end()));

  // ---- batch: 100,000 architectures over gRPC vs in process ----
  const std::string device = "bench_new_0";
  const int batch_archs = absl::GetFlag(FLAGS_batch_archs);
  const std::vector<core::Architecture> archs = core::FbnetSpace::Get().Sample(batch_archs, 5);
  v1::ArchitectureBatch batch;
  batch.set_space("fbnet");
  std::string* choices = batch.mutable_choices();
  for (const core::Architecture& a : archs) {
    for (uint8_t c : a.choices()) choices->push_back(static_cast<char>(c));
  }
  // What MaplexClient::PredictBatch sends for it.
  v1::PredictRequest request = client.PredictBatchRequest(device, batch);
  request.set_interval_factors(absl::GetFlag(FLAGS_interval_factors));
  Set("batch.archs", static_cast<double>(archs.size()));
  Set("batch.bits_per_choice", request.arch_batch().bits_per_choice() == 4 ? 4 : 8);
  Set("batch.request_bytes", static_cast<double>(request.ByteSizeLong()));
  const int channels = 1;
  std::vector<std::unique_ptr<v1::Predictor::Stub>> stubs;
  for (const auto& ch : maplex::bench::MakeChannels(address, channels)) {
    stubs.push_back(v1::Predictor::NewStub(ch));
  }
  auto run = [&](const v1::PredictRequest& r, const LoadOptions& load) {
    LoadResult result = RunUnaryLoad<v1::PredictResponse>(
        load, stubs.size(), [&](size_t c, grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
          return stubs[c]->PrepareAsyncPredict(ctx, r, cq);
        });
    if (result.errors > 0) Die(absl::StrCat("predict failed: ", result.first_error));
    return result;
  };
  LoadOptions load;
  load.outstanding = 1;
  load.duration = quick ? absl::Seconds(1) : absl::Seconds(5);
  load.warmup = quick ? absl::Milliseconds(200) : absl::Seconds(1);
  {
    // The process's CPU time per call (client and server are both in this process): near
    // the wall time per call when the call is bound by work, far below it when by waiting.
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    LoadResult r = run(request, load);
    getrusage(RUSAGE_SELF, &after);
    auto cpu_s = [](const rusage& u) {
      return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
    };
    Set("batch.grpc_archs_per_s", r.CallsPerSecond() * static_cast<double>(archs.size()));
    Set("batch.grpc_p50_ms", r.Percentile(0.5) / 1000);
    // Over warmup and measured window alike (getrusage cannot tell them apart).
    Set("batch.grpc_cpu_ms_per_call",
        1000 * (cpu_s(after) - cpu_s(before)) /
            (static_cast<double>(r.calls) * absl::ToDoubleSeconds(load.duration + load.warmup) /
             absl::ToDoubleSeconds(load.duration)));
    std::shared_ptr<const maplex::server::ServedModel> served = server->model_slot().Get();
    const maplex::server::ServedFunctionModel* f = served->FunctionModelOf(core::FbnetSpace::Get());
    if (f == nullptr) Die("no fbnet model served");
    std::vector<core::LatencyPrediction> out(archs.size());
    int64_t calls = 0;
    const Clock::time_point start = Clock::now();
    do {
      OrDie(f->model->Predict(device, archs, absl::MakeSpan(out)), "predict in process");
      ++calls;
    } while (SecondsSince(start) < (quick ? 0.3 : 2.0));
    const double inprocess = static_cast<double>(calls) * archs.size() / SecondsSince(start);
    Set("batch.inprocess_archs_per_s", inprocess);
    double expand_ms_per_call = 0;
    {  // What crossed the wire is what the model computes: every column equal, bit for bit.
      grpc::ClientContext context;
      v1::PredictResponse response;
      const grpc::Status s = stubs[0]->Predict(&context, request, &response);
      if (!s.ok()) Die(absl::StrCat("predict for the check: ", s.error_message()));
      Set("batch.response_bytes", static_cast<double>(response.ByteSizeLong()));
      if (request.interval_factors() != (response.columns().lower_factor() > 0)) {
        Die("the gRPC answer's interval factors do not follow the request");
      }
      // The client's share of an answer with factors: expanding them into two columns.
      const Clock::time_point expand_loop = Clock::now();
      double expand_s = 0;
      int expands = 0;
      do {
        v1::PredictionColumns copy = response.columns();
        const Clock::time_point t = Clock::now();
        maplex::client::ExpandIntervalFactors(&copy);
        expand_s += SecondsSince(t);
        ++expands;
      } while (SecondsSince(expand_loop) < (quick ? 0.1 : 0.5));
      // Columns need no expansion: 0 then.
      expand_ms_per_call = request.interval_factors() ? 1000 * expand_s / expands : 0;
      Set("batch.client_expand_ms", expand_ms_per_call);
      maplex::client::ExpandIntervalFactors(response.mutable_columns());
      const v1::PredictionColumns& c = response.columns();
      const int n = static_cast<int>(out.size());
      if (c.latency_ms_size() != n || c.lower_ms_size() != n || c.upper_ms_size() != n) {
        Die("the gRPC answer has the wrong number of predictions");
      }
      for (int i = 0; i < n; ++i) {
        if (c.latency_ms(i) != out[i].latency_ms || c.lower_ms(i) != out[i].lower_ms ||
            c.upper_ms(i) != out[i].upper_ms) {
          Die(absl::StrCat("the gRPC answer differs from in-process at architecture ", i));
        }
      }
      Set("batch.grpc_equals_inprocess", 1);
    }
    // The service's handler without the transport: validation, lookup, response columns.
    const maplex::server::PredictorService& handler = server->predictor();
    calls = 0;
    const Clock::time_point handler_start = Clock::now();
    do {
      v1::PredictResponse response;
      OrDie(handler.Answer(request, &response), "answer");
      ++calls;
    } while (SecondsSince(handler_start) < (quick ? 0.3 : 2.0));
    Set("batch.handler_archs_per_s",
        static_cast<double>(calls) * archs.size() / SecondsSince(handler_start));
    Set("batch.grpc_over_inprocess", r.CallsPerSecond() * archs.size() / inprocess);
    // The same with the client's expansion of the factors added to every call.
    Set("batch.grpc_expanded_over_inprocess",
        static_cast<double>(archs.size()) / (1 / r.CallsPerSecond() + expand_ms_per_call / 1000) /
            inprocess);
    // Two calls in flight: the transport of one overlaps the handler of the other.
    LoadOptions two = load;
    two.outstanding = 2;
    LoadResult r2 = run(request, two);
    Set("batch2.grpc_archs_per_s", r2.CallsPerSecond() * static_cast<double>(archs.size()));
    Set("batch2.grpc_over_inprocess", r2.CallsPerSecond() * archs.size() / inprocess);
  }

  // ---- single-architecture Predict latency while retraining runs, and without ----
  {
    v1::PredictRequest one;
    one.set_device_id(device);
    *one.add_archs() = maplex::client::Canonical("fbnet", archs[42].ToString());
    absl::Mutex mu;
    bool want_training = false, stop = false, training = false;
    int retrains = 0;
    std::thread trainer([&] {
      maplex::LowerThreadPriority(options.trainer.background_nice);
      while (true) {
        {
          absl::MutexLock lock(&mu);
          mu.Await(absl::Condition(
              +[](bool* go) { return *go; }, &want_training));
          if (stop) return;
          training = true;
        }
        OrDie(server->trainer().TrainNow(), "retrain under load");
        absl::MutexLock lock(&mu);
        training = false;
        ++retrains;
      }
    });
    LoadOptions slice = load;
    slice.duration = quick ? absl::Milliseconds(400) : absl::Seconds(2);
    slice.warmup = quick ? absl::Milliseconds(50) : absl::Milliseconds(200);
    const int pairs = quick ? 2 : 8;
    std::mt19937 order(5);
    LoadResult pooled[2];  // [0] without, [1] during
    for (int i = 0; i < pairs; ++i) {
      const bool busy_first = order() % 2 == 0;
      for (bool busy : {busy_first, !busy_first}) {
        if (busy) {
          absl::MutexLock lock(&mu);
          want_training = true;
        }
        LoadResult r = run(one, slice);
        if (busy) {
          absl::MutexLock lock(&mu);
          want_training = false;
          mu.Await(absl::Condition(
              +[](bool* t) { return !*t; }, &training));
        }
        LoadResult& p = pooled[busy ? 1 : 0];
        p.latencies_us.insert(p.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
      }
    }
    {
      absl::MutexLock lock(&mu);
      stop = true;
      want_training = true;
    }
    trainer.join();
    Set("retrain_load.pairs", pairs);
    Set("during_retrain.retrains", retrains);
    Set("during_retrain.p99_us", pooled[1].Percentile(0.99));
    Set("without_retrain.p99_us", pooled[0].Percentile(0.99));
    Set("during_over_without_p99", pooled[1].Percentile(0.99) / pooled[0].Percentile(0.99));
  }
  double load_avg[3] = {0, 0, 0};
  if (getloadavg(load_avg, 3) == 3) Set("loadavg_1min", load_avg[0]);

  server->Shutdown();
  server.reset();
  std::filesystem::remove_all(workdir);
  if (const std::string json = absl::GetFlag(FLAGS_json); !json.empty()) {
    std::string out = "{\n";
    for (const auto& [key, value] : figures) {
      absl::StrAppend(&out, out.size() > 2 ? ",\n" : "", "  \"", key, "\": ", value);
    }
    absl::StrAppend(&out, "\n}\n");
    OrDie(maplex::client::WriteTextFile(json, out), "write json");
  }
  return 0;
}
