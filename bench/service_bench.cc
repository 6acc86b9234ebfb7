// The service's speed against the limits measured in the same run (docs/BENCHMARKS.md,
// "Performance against the limits"; issue #6). One process: a real MaplexServer on a fresh
// database with a bench-only Echo service (same request/response types as Predict, no
// model) added to the same grpc::Server by a builder plugin, and an async load generator
// (bench/load_generator.h) as client.
//
//   build/bin/service_bench [--quick] [--json=out.json]   (from the source tree, for data/)
//
// Measures, in this order:
//   ingest      raw SQLite inserts (same schema, WAL + synchronous=FULL, same batch per
//               transaction) vs durable acknowledged StreamMeasurements through gRPC
//   retrain     Trainer::TrainNow on everything ingested; in-process TrainLatencyModel
//   predict     unary single-cell Predict vs Echo (1 and 8 in flight), 15,625-cell batches
//               vs Echo, in-process Predict and PredictorService::Answer throughput
//   retraining  single-cell Predict latency while TrainNow runs in a loop vs without
//   adapt       a new device with k samples: ack + TrainNow + first Predict
// Every figure goes to --json (flat keys, numbers) for bench/run_all.py.
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <grpcpp/server_builder.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "bench/load_generator.h"
#include "client/client.h"
#include "client/data_files.h"
#include "core/arch/nb201_space.h"
#include "core/hardware/spec_proto.h"
#include "core/model/latency_model.h"
#include "maplex/bench/v1/echo.grpc.pb.h"
#include "maplex/v1/predictor.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "platform/process.h"
#include "server/server.h"
#include "server/services/predictor_service.h"
#include "server/store/store.h"

ABSL_FLAG(bool, quick, false, "short runs and 4 devices: checks the harness, figures are rough");
ABSL_FLAG(std::string, json, "", "write the figures here as one JSON object");
ABSL_FLAG(std::string, data_dir, "data", "folder of nb201_latency.csv.gz and nb201_devices.csv");
ABSL_FLAG(std::string, workdir, "", "folder for the databases (default: a new one under $TMPDIR)");
ABSL_FLAG(int, ingest_batch, 5000, "measurements per batch (and per raw transaction)");
ABSL_FLAG(int, k, 10, "samples of the new device in the adaptation figure");
ABSL_FLAG(bool, ingest_only, false,
          "stop after the ingest figures (to profile them: perf record -e task-clock -g)");

namespace {

using Clock = std::chrono::steady_clock;
using maplex::bench::LoadOptions;
using maplex::bench::LoadResult;
using maplex::bench::RunUnaryLoad;
namespace v1 = maplex::v1;

constexpr int kSpaceSize = 15625;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// CPU seconds used so far by every thread of this process (client and server alike): on
// a shared machine a phase's CPU says what it costs when its wall time says how much CPU
// it got.
double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// CPU seconds used so far by this process's threads named `name` (/proc/self/task/*/comm;
// utime + stime of /proc/self/task/*/stat, in clock ticks). 0 when there is none.
double ThreadCpuSeconds(const std::string& name) {
  double seconds = 0;
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", error)) {
    std::ifstream comm(task.path() / "comm");
    std::string thread_name;
    if (!std::getline(comm, thread_name) || thread_name != name) continue;
    std::ifstream stat_file(task.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i >= 14) ticks += std::strtod(field.c_str(), nullptr);
    }
    seconds += ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return seconds;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "service_bench: %s\n", what.c_str());
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

// Flat figures, printed as they come and written as JSON at the end.
class Figures {
 public:
  void Set(const std::string& key, double value) {
    values_[key] = value;
    std::printf("%-44s %14.4g\n", key.c_str(), value);
    std::fflush(stdout);
  }
  void Note(const std::string& key, const std::string& value) {
    notes_[key] = value;
    std::printf("%-44s %14s\n", key.c_str(), value.c_str());
  }
  std::string Json() const {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (const auto& [k, v] : values_) {
      // 6 significant digits, as the figures were always written; null when not finite.
      double rounded = v;
      if (std::isfinite(v)) {
        absl::SimpleAtod(absl::StrFormat("%.6g", v), &rounded);
        out[k] = rounded;
      } else {
        out[k] = nullptr;
      }
    }
    for (const auto& [k, v] : notes_) out[k] = v;
    out["complete"] = true;
    return out.dump(2) + "\n";
  }

 private:
  std::map<std::string, double> values_;
  std::map<std::string, std::string> notes_;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ---------- the bench-only baseline service ----------

// Answers a PredictRequest with a response of the same shape as Predictor.Predict's: one
// Prediction per architecture, constant values, no validation, no model lookup.
class EchoService final : public maplex::bench::v1::Echo::Service {
 public:
  grpc::Status Predict(grpc::ServerContext*, const v1::PredictRequest* request,
                       v1::PredictResponse* response) override {
    response->set_model_version(1);
    response->set_method("maplex");
    response->mutable_predictions()->Reserve(request->archs_size());
    for (const v1::Architecture& a : request->archs()) {
      v1::Prediction* p = response->add_predictions();
      p->set_arch_index(a.index());
      p->set_latency_ms(1.25);
      p->set_lower_ms(1.0);
      p->set_upper_ms(1.5);
    }
    return grpc::Status::OK;
  }
};

// Adds Echo to every grpc::ServerBuilder of this process (here only the MaplexServer's)
// through gRPC's builder-plugin hook, the one its reflection service uses, so that the
// server needs no bench-only option.
class EchoPlugin final : public grpc::ServerBuilderPlugin {
 public:
  std::string name() override { return "maplex_bench_echo"; }
  void InitServer(grpc::ServerInitializer* si) override { si->RegisterService(service_); }
  void Finish(grpc::ServerInitializer*) override {}
  void ChangeArguments(const std::string&, void*) override {}
  bool has_sync_methods() const override { return true; }

 private:
  std::shared_ptr<EchoService> service_ = std::make_shared<EchoService>();
};

std::unique_ptr<grpc::ServerBuilderPlugin> CreateEchoPlugin() {
  return std::make_unique<EchoPlugin>();
}

// ---------- data ----------

// As `maplex import` names public hardware.
std::string PublicFingerprint(const std::string& hardware) {
  std::string out = "public:";
  for (char ch : absl::AsciiStrToLower(hardware)) {
    out += absl::ascii_isalnum(static_cast<unsigned char>(ch)) ? ch : '-';
  }
  return out;
}

v1::RegisterDeviceRequest Registration(const maplex::core::DeviceData& d) {
  v1::RegisterDeviceRequest reg;
  reg.set_id(d.device);
  reg.set_hardware_fingerprint(PublicFingerprint(d.hardware));
  reg.set_hardware_name(d.hardware);
  maplex::core::SpecToProto(d.descriptor.spec, reg.mutable_spec(), reg.mutable_config());
  reg.mutable_config()->set_runtime("public");
  return reg;
}

// The measurements `maplex import` would send for this device.
std::vector<v1::Measurement> Measurements(const maplex::core::DeviceData& d) {
  std::vector<v1::Measurement> out;
  out.reserve(d.samples.size());
  for (const maplex::core::LatencySample& s : d.samples) {
    v1::Measurement& m = out.emplace_back();
    m.set_id(absl::StrCat("import:", d.device, ":", s.arch_index));
    m.set_device_id(d.device);
    m.mutable_arch()->set_index(s.arch_index);
    m.mutable_stats()->set_median_ms(s.latency_ms);
    m.mutable_stats()->set_p90_ms(s.latency_ms * 1.02);
    m.mutable_stats()->set_stddev_ms(s.latency_ms * 0.01);
    m.mutable_stats()->set_repeats(20);
    m.mutable_protocol()->set_tool("maplex import (public data)");
    m.mutable_protocol()->set_notes("from data/nb201_latency.csv.gz");
    m.set_measured_at_unix_ms(1764000000000);
  }
  return out;
}

// ---------- ingest ----------

// Raw SQLite: the store's schema (created by Store::Open, devices registered through it),
// then the store's INSERT through the C API on a fresh connection with the store's pragmas,
// `batch` rows per transaction. Returns measurements per second.
double RawSqliteIngest(const std::string& path,
                       const std::vector<maplex::core::DeviceData>& devices,
                       const std::vector<std::vector<v1::Measurement>>& measurements, int batch,
                       double* cpu_seconds) {
  {
    auto store = OrDie(maplex::server::Store::Open(path), "raw: open store");
    for (const auto& d : devices) OrDie(store->RegisterDevice(Registration(d)), "raw: register");
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    Die(absl::StrCat("raw: cannot open ", path));
  }
  auto exec = [db](const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
      Die(absl::StrCat("raw: ", sql, ": ", error ? error : "?"));
    }
  };
  exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;");
  // The row's key as schema v4 stores it: the space and the NB201 cell string (made before
  // the clock starts: this limit measures SQLite alone).
  const maplex::core::Nb201Space& nb201 = maplex::core::Nb201Space::Get();
  std::vector<std::string> cells(nb201.size());
  for (int32_t i = 0; i < nb201.size(); ++i) {
    cells[i] = maplex::core::Nb201Space::FormatCell(nb201.CellAt(i));
  }
  sqlite3_stmt* insert = nullptr;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO measurements (measurement_id, device_id, space, arch, "
                         "median_ms, p90_ms, stddev_ms, repeats, protocol, measured_at_ms, "
                         "received_at_ms) VALUES (?1, ?2, 'nb201', ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                         "?10) ON CONFLICT (measurement_id) DO NOTHING",
                         -1, &insert, nullptr) != SQLITE_OK) {
    Die(absl::StrCat("raw: prepare: ", sqlite3_errmsg(db)));
  }
  int64_t rows = 0;
  std::string protocol;
  const Clock::time_point start = Clock::now();
  const double cpu_start = ProcessCpuSeconds();
  for (const std::vector<v1::Measurement>& device : measurements) {
    for (size_t from = 0; from < device.size(); from += batch) {
      const size_t to = std::min(device.size(), from + static_cast<size_t>(batch));
      exec("BEGIN IMMEDIATE");
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      for (size_t i = from; i < to; ++i) {
        const v1::Measurement& m = device[i];
        // One buffer for every row, bound in place: the store's insert loop does the same.
        protocol.clear();
        m.protocol().SerializeToString(&protocol);
        sqlite3_bind_text(insert, 1, m.id().data(), static_cast<int>(m.id().size()), SQLITE_STATIC);
        sqlite3_bind_text(insert, 2, m.device_id().data(), static_cast<int>(m.device_id().size()),
                          SQLITE_STATIC);
        const std::string& cell = cells[m.arch().index()];
        sqlite3_bind_text(insert, 3, cell.data(), static_cast<int>(cell.size()), SQLITE_STATIC);
        sqlite3_bind_double(insert, 4, m.stats().median_ms());
        sqlite3_bind_double(insert, 5, m.stats().p90_ms());
        sqlite3_bind_double(insert, 6, m.stats().stddev_ms());
        sqlite3_bind_int64(insert, 7, m.stats().repeats());
        sqlite3_bind_blob(insert, 8, protocol.data(), static_cast<int>(protocol.size()),
                          SQLITE_STATIC);
        sqlite3_bind_int64(insert, 9, m.measured_at_unix_ms());
        sqlite3_bind_int64(insert, 10, now);
        if (sqlite3_step(insert) != SQLITE_DONE)
          Die(absl::StrCat("raw: insert: ", sqlite3_errmsg(db)));
        sqlite3_reset(insert);
        ++rows;
      }
      exec("COMMIT");
    }
  }
  const double seconds = SecondsSince(start);
  *cpu_seconds = ProcessCpuSeconds() - cpu_start;
  sqlite3_finalize(insert);
  sqlite3_close(db);
  return static_cast<double>(rows) / seconds;
}

// ---------- prediction ----------

v1::PredictRequest PredictRequestFor(const std::string& device, int cells) {
  v1::PredictRequest request;
  request.set_device_id(device);
  for (int i = 0; i < cells; ++i) {
    request.add_archs()->set_index(cells == 1 ? 4242
                                              : static_cast<int32_t>((i * 7919) % kSpaceSize));
  }
  return request;
}

struct Target {
  std::vector<std::unique_ptr<v1::Predictor::Stub>> predictor;
  std::vector<std::unique_ptr<maplex::bench::v1::Echo::Stub>> echo;
};

LoadResult RunPredictLoad(Target& t, bool echo, const v1::PredictRequest& request,
                          const LoadOptions& options, size_t channels) {
  LoadResult r = RunUnaryLoad<v1::PredictResponse>(
      options, channels, [&](size_t c, grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
        return echo ? t.echo[c]->PrepareAsyncPredict(ctx, request, cq)
                    : t.predictor[c]->PrepareAsyncPredict(ctx, request, cq);
      });
  if (r.errors > 0) {
    std::fprintf(stderr, "service_bench: %lld failed calls, first: %s\n",
                 static_cast<long long>(r.errors), r.first_error.c_str());
  }
  return r;
}

// Cells per second of `predict` called in a loop for about `seconds`.
template <typename F>
double InProcessCellsPerSecond(double seconds, int cells, F predict) {
  int64_t calls = 0;
  const Clock::time_point start = Clock::now();
  do {
    predict();
    ++calls;
  } while (SecondsSince(start) < seconds);
  return static_cast<double>(calls) * cells / SecondsSince(start);
}

// A device of the same kind as `like` with every latency scaled and noised (deterministic).
maplex::core::DeviceData SynthesisedDevice(const maplex::core::DeviceData& like,
                                           const std::string& id, uint32_t seed) {
  maplex::core::DeviceData d = like;
  d.device = id;
  d.hardware = absl::StrCat("bench synthetic ", id);
  std::mt19937 rng(seed);
  std::lognormal_distribution<double> noise(0.0, 0.05);
  const double scale = 1.37;
  for (maplex::core::LatencySample& s : d.samples) s.latency_ms *= scale * noise(rng);
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const bool quick = absl::GetFlag(FLAGS_quick);
  const int batch = absl::GetFlag(FLAGS_ingest_batch);
  const std::string data_dir = absl::GetFlag(FLAGS_data_dir);
  Figures f;

  std::string workdir = absl::GetFlag(FLAGS_workdir);
  if (workdir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/maplex-bench-XXXXXX");
    if (mkdtemp(templ.data()) == nullptr) Die("cannot create a work folder");
    workdir = templ;
  }
  f.Note("workdir", workdir);

  std::vector<maplex::core::DeviceData> all =
      OrDie(maplex::client::LoadLatencyData(data_dir + "/nb201_latency.csv.gz",
                                            data_dir + "/nb201_devices.csv"),
            "load data");
  std::vector<maplex::core::DeviceData> devices;
  for (size_t i = 0; i < all.size(); ++i) {
    // Quick: 4 devices spread over the kinds (GPU, CPU, phone).
    if (!quick || i % 5 == 0) devices.push_back(all[i]);
  }
  const std::string predict_device = devices.back().device;
  std::vector<std::vector<v1::Measurement>> measurements;
  int64_t total_measurements = 0;
  for (const auto& d : devices) {
    measurements.push_back(Measurements(d));
    total_measurements += static_cast<int64_t>(measurements.back().size());
  }
  f.Set("devices", static_cast<double>(devices.size()));
  f.Set("ingest.measurements", static_cast<double>(total_measurements));
  f.Set("ingest.batch", batch);

  // ---- ingest: raw, gRPC, raw again (the raw rate is the mean of the two) ----
  double raw1_cpu = 0;
  const double raw1 =
      RawSqliteIngest(workdir + "/raw1.db", devices, measurements, batch, &raw1_cpu);
  f.Set("ingest.raw_per_s.first", raw1);
  f.Set("ingest.raw_cpu_s.first", raw1_cpu);

  grpc::ServerBuilder::InternalAddPluginFactory(&CreateEchoPlugin);
  maplex::server::ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.database_path = workdir + "/server.db";
  options.shutdown_grace = absl::Seconds(1);
  // Retraining happens when this benchmark says so, not in the middle of a measurement.
  options.trainer.debounce = absl::Hours(1);
  options.trainer.max_delay = absl::Hours(1);
  std::unique_ptr<maplex::server::MaplexServer> server =
      OrDie(maplex::server::MaplexServer::Start(options), "start server");
  const std::string address = absl::StrCat("127.0.0.1:", server->port());
  maplex::client::ClientOptions client_options;
  client_options.address = address;
  client_options.timeout = absl::Seconds(120);
  maplex::client::MaplexClient client =
      OrDie(maplex::client::MaplexClient::Connect(client_options), "connect");
  for (const auto& d : devices) OrDie(client.RegisterDevice(Registration(d)), "register");
  double grpc_per_s = 0;
  {
    // The client moves its measurements into the batches, as the agent's uplink does; the
    // copy it moves from is made before the clock starts (the raw loop, too, starts from
    // messages built before). One stream for all devices, a batch never spanning two, as
    // `maplex import` sends them.
    std::vector<std::vector<v1::Measurement>> to_send = measurements;
    const Clock::time_point start = Clock::now();
    const double cpu_start = ProcessCpuSeconds();
    const double commit_cpu_start = ThreadCpuSeconds("ingest-commit");
    OrDie(client.SendMeasurementGroups(std::move(to_send), batch), "ingest");
    grpc_per_s = static_cast<double>(total_measurements) / SecondsSince(start);
    f.Set("ingest.grpc_per_s", grpc_per_s);
    f.Set("ingest.grpc_cpu_s", ProcessCpuSeconds() - cpu_start);
    // The server's committer thread alone: the serial part of the gRPC path, to set
    // against a raw loop's CPU (the raw loop runs on one thread).
    f.Set("ingest.grpc_commit_thread_cpu_s", ThreadCpuSeconds("ingest-commit") - commit_cpu_start);
  }
  double raw2_cpu = 0;
  const double raw2 =
      RawSqliteIngest(workdir + "/raw2.db", devices, measurements, batch, &raw2_cpu);
  f.Set("ingest.raw_per_s.second", raw2);
  f.Set("ingest.raw_cpu_s.second", raw2_cpu);
  f.Set("ingest.raw_per_s", (raw1 + raw2) / 2);
  f.Set("ingest.ratio", grpc_per_s / ((raw1 + raw2) / 2));
  const bool ingest_only = absl::GetFlag(FLAGS_ingest_only);

  auto finish = [&] {
    server->Shutdown();
    server.reset();
    if (const std::string json = absl::GetFlag(FLAGS_json); !json.empty()) {
      OrDie(maplex::client::WriteTextFile(json, f.Json()), "write json");
    }
    if (absl::GetFlag(FLAGS_workdir).empty()) std::filesystem::remove_all(workdir);
    return 0;
  };
  if (ingest_only) return finish();

  // ---- retrain on everything ingested ----
  {
    const Clock::time_point start = Clock::now();
    OrDie(server->trainer().TrainNow(), "train");
    f.Set("retrain.service_s", SecondsSince(start));
    std::vector<double> times;
    for (int i = 0; i < (quick ? 1 : 3); ++i) {
      const Clock::time_point t = Clock::now();
      auto model = OrDie(maplex::core::TrainLatencyModel(devices, {}), "train in process");
      times.push_back(SecondsSince(t));
    }
    f.Set("retrain.inprocess_s", Median(times));
  }

  // ---- prediction ----
  Target target;
  const int channels = 2;
  for (const auto& ch : maplex::bench::MakeChannels(address, channels)) {
    target.predictor.push_back(v1::Predictor::NewStub(ch));
    target.echo.push_back(maplex::bench::v1::Echo::NewStub(ch));
  }
  const v1::PredictRequest one = PredictRequestFor(predict_device, 1);
  const v1::PredictRequest whole = PredictRequestFor(predict_device, kSpaceSize);
  LoadOptions load;
  load.duration = quick ? absl::Milliseconds(800) : absl::Seconds(4);
  load.warmup = quick ? absl::Milliseconds(200) : absl::Seconds(1);
  f.Set("predict.load_seconds", absl::ToDoubleSeconds(load.duration));
  // Single cell, at 1 and at 8 calls in flight: Echo and Predict alternate in short slices
  // (order drawn per pair) and each kind's latencies are pooled, so that both see the same
  // moments of a shared machine rather than one kind getting a quiet window.
  LoadOptions slice = load;
  slice.duration = quick ? absl::Milliseconds(150) : absl::Seconds(1);
  slice.warmup = quick ? absl::Milliseconds(50) : absl::Milliseconds(200);
  const int slices = quick ? 4 : 16;
  f.Set("predict.slices", slices);
  f.Set("predict.slice_seconds", absl::ToDoubleSeconds(slice.duration));
  std::mt19937 order(5);
  for (int in_flight : {1, 8}) {
    slice.outstanding = in_flight;
    LoadResult pooled[2];  // [0] Predict, [1] Echo
    for (int i = 0; i < slices; ++i) {
      const bool echo_first = order() % 2 == 0;
      for (bool is_echo : {echo_first, !echo_first}) {
        LoadResult r = RunPredictLoad(target, is_echo, one, slice, channels);
        LoadResult& p = pooled[is_echo ? 1 : 0];
        p.calls += r.calls;
        p.errors += r.errors;
        p.seconds += r.seconds;
        p.latencies_us.insert(p.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
      }
    }
    for (bool is_echo : {true, false}) {
      LoadResult& p = pooled[is_echo ? 1 : 0];
      const std::string key = absl::StrCat("unary", in_flight, ".", is_echo ? "echo" : "predict");
      f.Set(key + ".p50_us", p.Percentile(0.50));
      f.Set(key + ".p99_us", p.Percentile(0.99));
      f.Set(key + ".calls_per_s", p.CallsPerSecond());
      f.Set(key + ".errors", static_cast<double>(p.errors));
    }
  }
  // A whole device: 15,625 cells per call, one call in flight (latency), then two; Echo,
  // Predict answered one message per cell, and Predict answered in packed columns.
  // Then the same cells as a compact batch of op codes (one bytes field), answered in columns.
  v1::PredictRequest whole_columnar = whole;
  whole_columnar.set_columnar(true);
  v1::PredictRequest whole_compact = whole_columnar;
  whole_compact.clear_archs();
  for (const v1::Architecture& a : whole.archs()) {
    for (maplex::core::Nb201Op op : maplex::core::Nb201Space::Get().CellAt(a.index())) {
      whole_compact.mutable_arch_batch()->mutable_choices()->push_back(static_cast<char>(op));
    }
  }
  for (int in_flight : {1, 2}) {
    for (const char* variant : {"echo", "predict", "columnar", "compact"}) {
      const std::string_view v = variant;
      const bool is_echo = v == "echo";
      const v1::PredictRequest& request = v == "columnar"  ? whole_columnar
                                          : v == "compact" ? whole_compact
                                                           : whole;
      load.outstanding = in_flight;
      LoadResult r = RunPredictLoad(target, is_echo, request, load, channels);
      const std::string key = absl::StrCat("batch", in_flight, ".", variant);
      f.Set(key + ".p50_ms", r.Percentile(0.50) / 1000);
      f.Set(key + ".p99_ms", r.Percentile(0.99) / 1000);
      f.Set(key + ".cells_per_s", r.CallsPerSecond() * kSpaceSize);
      f.Set(key + ".errors", static_cast<double>(r.errors));
    }
  }
  {
    std::shared_ptr<const maplex::server::ServedModel> served = server->model_slot().Get();
    if (served == nullptr) Die("no model served");
    std::vector<int32_t> archs;
    for (const auto& a : whole.archs()) archs.push_back(a.index());
    std::vector<maplex::core::LatencyPrediction> out(archs.size());
    const double seconds = quick ? 0.3 : 1.0;
    f.Set("inprocess.model_cells_per_s", InProcessCellsPerSecond(seconds, kSpaceSize, [&] {
            OrDie(served->model->Predict(predict_device, archs, absl::MakeSpan(out)), "predict");
          }));
    // The service's handler without the transport: validation, lookup, response message.
    const maplex::server::PredictorService& handler = server->predictor();
    f.Set("inprocess.handler_cells_per_s", InProcessCellsPerSecond(seconds, kSpaceSize, [&] {
            v1::PredictResponse response;
            OrDie(handler.Answer(whole, &response), "answer");
          }));
  }

  // ---- single-cell Predict latency while retraining runs, and without ----
  // Slices with a retrain loop running alternate with slices without (order drawn per
  // pair); a slice without starts only after the last retrain finished.
  {
    absl::Mutex mu;
    bool want_training = false, stop = false, training = false;
    int retrains = 0;
    std::thread trainer([&] {
      // At the priority of the server's own retrain loop (TrainerOptions::background_nice).
      maplex::LowerThreadPriority(options.trainer.background_nice);
      while (true) {
        {
          absl::MutexLock lock(&mu);
          // `stop` also sets want_training, so one condition covers both.
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
    slice.outstanding = 1;
    slice.duration = quick ? absl::Milliseconds(400) : absl::Seconds(2);
    slice.warmup = quick ? absl::Milliseconds(50) : absl::Milliseconds(200);
    const int pairs = quick ? 2 : 8;
    f.Set("retrain_load.pairs", pairs);
    f.Set("retrain_load.slice_seconds", absl::ToDoubleSeconds(slice.duration));
    LoadResult pooled[2];  // [0] without, [1] during
    for (int i = 0; i < pairs; ++i) {
      const bool busy_first = order() % 2 == 0;
      for (bool busy : {busy_first, !busy_first}) {
        if (busy) {
          absl::MutexLock lock(&mu);
          want_training = true;
        }
        LoadResult r = RunPredictLoad(target, false, one, slice, channels);
        if (busy) {
          absl::MutexLock lock(&mu);
          want_training = false;
          mu.Await(absl::Condition(
              +[](bool* t) { return !*t; }, &training));
        }
        LoadResult& p = pooled[busy ? 1 : 0];
        p.errors += r.errors;
        p.latencies_us.insert(p.latencies_us.end(), r.latencies_us.begin(), r.latencies_us.end());
      }
    }
    {
      absl::MutexLock lock(&mu);
      stop = true;
      want_training = true;  // wakes the trainer thread, which sees `stop`
    }
    trainer.join();
    f.Set("during_retrain.retrains", retrains);
    f.Set("during_retrain.p50_us", pooled[1].Percentile(0.50));
    f.Set("during_retrain.p99_us", pooled[1].Percentile(0.99));
    f.Set("during_retrain.errors", static_cast<double>(pooled[1].errors));
    f.Set("without_retrain.p50_us", pooled[0].Percentile(0.50));
    f.Set("without_retrain.p99_us", pooled[0].Percentile(0.99));
    f.Set("without_retrain.errors", static_cast<double>(pooled[0].errors));
  }

  // ---- a new device from k samples: acknowledged, retrained, predictable ----
  {
    const int k = absl::GetFlag(FLAGS_k);
    const auto& like = *std::find_if(devices.begin(), devices.end(),
                                     [&](const auto& d) { return d.device == predict_device; });
    maplex::core::DeviceData fresh = SynthesisedDevice(like, "bench_new_device", 7);
    std::mt19937 rng(11);
    std::shuffle(fresh.samples.begin(), fresh.samples.end(), rng);
    fresh.samples.resize(static_cast<size_t>(k));
    std::sort(fresh.samples.begin(), fresh.samples.end(),
              [](const auto& a, const auto& b) { return a.arch_index < b.arch_index; });
    OrDie(client.RegisterDevice(Registration(fresh)), "register new device");
    const std::vector<v1::Measurement> sent = Measurements(fresh);
    const Clock::time_point start = Clock::now();
    OrDie(client.SendMeasurements(sent, batch), "send k");
    const Clock::time_point acked = Clock::now();
    OrDie(server->trainer().TrainNow(), "adapt");
    const double train_s = SecondsSince(acked);
    OrDie(client.Predict(fresh.device, {maplex::client::Nb201Index(4242)}), "predict new device");
    f.Set("adapt.k", k);
    f.Set("adapt.service_s", SecondsSince(start));
    f.Set("adapt.service_train_s", train_s);
    // The model fit alone, in process, on the same data.
    std::vector<maplex::core::DeviceData> with_new = devices;
    with_new.push_back(fresh);
    std::vector<double> times;
    for (int i = 0; i < (quick ? 1 : 3); ++i) {
      const Clock::time_point t = Clock::now();
      auto model = OrDie(maplex::core::TrainLatencyModel(with_new, {}), "adapt in process");
      times.push_back(SecondsSince(t));
    }
    f.Set("adapt.inprocess_s", Median(times));
  }

  return finish();
}
