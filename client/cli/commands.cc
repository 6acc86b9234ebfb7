#include "client/cli/commands.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/cli/args.h"
#include "client/client.h"
#include "client/data_files.h"
#include "client/report/accuracy_report.h"
#include "core/arch/nb201_space.h"
#include "core/arch/space_registry.h"
#include "core/dataset/latency_table.h"
#include "core/eval/cross_validation.h"
#include "core/eval/metrics.h"
#include "core/hardware/spec_proto.h"
#include "core/model/function_model.h"
#include "core/model/function_trainer.h"
#include "platform/sqlite_backup.h"

namespace maplex::cli {
namespace {

using client::MaplexClient;
using Rows = std::vector<std::vector<std::string>>;

struct Globals {
  client::ClientOptions options;
};

struct Command {
  const char* name;  // "devices list"
  const char* summary;
  const char* usage;  // options, one per line
  int (*run)(const Command&, const Globals&, const std::vector<std::string>&);
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "maplex: %s: %s\n", absl::StatusCodeToString(status.code()).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

void PrintCommandHelp(const Command& c) {
  std::printf("maplex %s — %s\n\nUsage: maplex [--server ADDR] %s %s\n", c.name, c.summary, c.name,
              c.usage);
}

int UsageError(const Command& c, absl::string_view problem) {
  std::fprintf(stderr, "maplex %s: %s\n\n", c.name, std::string(problem).c_str());
  std::fprintf(stderr, "Usage: maplex %s %s\nSee: maplex %s --help\n", c.name, c.usage, c.name);
  return 2;
}

std::string CsvField(const std::string& v) {
  if (v.find_first_of(",\"\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Rows[0] is the header. "table": aligned columns; "csv": comma-separated.
std::string FormatRows(const Rows& rows, const std::string& format) {
  std::string out;
  if (format == "csv") {
    for (const auto& row : rows) {
      std::vector<std::string> fields;
      for (const auto& f : row) fields.push_back(CsvField(f));
      absl::StrAppend(&out, absl::StrJoin(fields, ","), "\n");
    }
    return out;
  }
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &json, options);
  return json;
}

// Prints `text` to stdout, or writes it to the --output file when given.
int Emit(const Args& args, const std::string& text) {
  if (std::optional<std::string> path = args.Get("output")) {
    if (absl::Status s = client::WriteTextFile(*path, text); !s.ok()) return Fail(s);
    return 0;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

std::string Ms(double v) { return absl::StrFormat("%.4g", v); }

std::string FormatTime(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

absl::StatusOr<MaplexClient> Connect(const Globals& g) { return MaplexClient::Connect(g.options); }

bool CheckFormat(const Args& args, std::initializer_list<const char*> allowed, std::string* out) {
  *out = args.GetOr("format", "table");
  for (const char* a : allowed) {
    if (*out == a) return true;
  }
  return false;
}

// ---------- devices ----------

constexpr char kDevicesListUsage[] =
    "[--category C] [--label KEY=VALUE]... [--all] [--format table|csv|json] [--output FILE]";

int DevicesList(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int DevicesShow(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int DevicesRetire(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int DevicesLabel(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int Predict(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int ModelsList(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int ModelsShow(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int Retrain(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int Import(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int Health(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int Backup(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int TokensCreate(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int TokensList(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int TokensRevoke(const Command& c, const Globals& g, const std::vector<std::string>& argv);
int Report(const Command& c, const Globals& g, const std::vector<std::string>& argv);

const Command kCommands[] = {
    {"devices list", "list device configurations", kDevicesListUsage, DevicesList},
    {"devices show",
     "show one device: config, specs, labels, sample count, cross-validated accuracy",
     "ID [--format table|json]", DevicesShow},
    {"devices retire", "retire a device: it keeps its data but gets no more predictions", "ID",
     DevicesRetire},
    {"devices label", "set or remove labels of a device", "ID [KEY=VALUE]... [--remove KEY]...",
     DevicesLabel},
    {"predict", "predict latencies of architectures on a device",
     "--device ID [--space nb201|fbnet] (ARCH... | --file FILE | --all) [--model-version N]\n"
     "              [--format table|csv|json] [--output FILE] [--compare-with LATENCY.csv[.gz]]\n"
     "  ARCH is an NB201 index (0..15624) or cell string |op~0|+|op~0|op~1|+|op~0|op~1|op~2|;\n"
     "  with --space fbnet, a canonical FBNet string (22 block names joined by '-').\n"
     "  --file: one ARCH per line ('#' starts a comment). --all: every NB201 cell.\n"
     "  --compare-with: measured latencies — a wide latency CSV of the space with the device's\n"
     "  column, or the CSV of maplex-agent --measure_only; prints the accuracy of the\n"
     "  predictions against them (architectures with a connected output).",
     Predict},
    {"models list", "list model versions, newest first", "[--format table|json]", ModelsList},
    {"models show", "show a model version and its per-device cross-validated accuracy",
     "[VERSION] [--format table|json]   (default: the version being served)\n"
     "  Accuracy is cross-validated: each scored measurement of a device is predicted by a\n"
     "  refit of its adaptation without it. Reference devices are not scored.",
     ModelsShow},
    {"retrain", "train a new model version now and wait for it", "", Retrain},
    {"import", "load a wide latency CSV and its devices CSV into the server",
     "(F.csv[.gz] | --latency F.csv[.gz]) --devices D.csv [--only DEV,DEV...] [--keep DEV=K]...\n"
     "              [--seed N] [--batch N] [--replace] [--hold-out SHARE --hold-out-list FILE]\n"
     "  NB201 (arch_index,arch_str,<device>...) or any space's file (arch,<device>...: canonical\n"
     "  strings, e.g. data/fbnet_latency.csv.gz). Every column becomes a device (id = column\n"
     "  name; the same device in both spaces' files is one device) and every cell a measurement\n"
     "  with the id import:<device>:<arch_index> (NB201) or import:<device>:<space>:<choices>,\n"
     "  so importing again stores nothing twice.\n"
     "  --keep DEV=K imports only K randomly chosen cells of DEV (a new device with K samples).\n"
     "  --hold-out SHARE: a seeded share of the file's architectures is imported for no device\n"
     "  and listed in --hold-out-list FILE (one canonical string per line), to be predicted\n"
     "  and scored as architectures the model never saw.\n"
     "  --replace (operator) replaces the stored measurements of each imported (device, arch)\n"
     "  with the file's values, in the same transaction: how corrected values are imported\n"
     "  (without it a changed value under the same id is refused with ALREADY_EXISTS).",
     Import},
    {"health", "grpc.health.v1 status of the server and each service",
     "[--service NAME]   only this service (\"\" = the server); e.g. a container health check",
     Health},
    {"backup", "copy the server's database while it runs (on the server's host)",
     "--db maplex.db --out BACKUP.db\n"
     "  SQLite's online backup: one consistent snapshot, taken without stopping the server.\n"
     "  Never overwrites BACKUP.db. Restore: stop the server, put the copy in place of --db.",
     Backup},
    {"tokens create", "create a bearer token (operators); its secret is printed once",
     "--role agent|client|operator|replica [--device ID] [--name TEXT]\n"
     "  agent: enrolls, describes and measures the one device --device (required);\n"
     "  client: predicts and reads; operator: everything, including tokens.",
     TokensCreate},
    {"tokens list", "list bearer tokens, revoked ones included (operators)",
     "[--format table|json]", TokensList},
    {"tokens revoke", "revoke a bearer token: refused from its next call on (operators)", "ID",
     TokensRevoke},
    {"report", "write a device's accuracy report: one self-contained HTML page",
     "--device ID --out REPORT.html [--compare-with LATENCY.csv[.gz]] [--space nb201|fbnet]\n"
     "  Figures: predicted vs measured, error histogram, accuracy vs number of samples,\n"
     "  most similar known devices. Measured = the device's stored measurements, or the\n"
     "  --compare-with file (as for predict). The last two figures are recomputed here\n"
     "  from every device's measurements on the server.\n"
     "  --space: default the --compare-with file's space, else the device's only space.\n"
     "  FBNet (a function model): every figure is scored on held-out architectures — with\n"
     "  --compare-with, the file's architectures no device on the server measured (import\n"
     "  with --hold-out to keep some); else each stored measurement predicted by a refit\n"
     "  without it.",
     Report},
};

int DevicesList(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"category", "label", "format", "output"}, {"all"});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::string format;
  if (!CheckFormat(*args, {"table", "csv", "json"}, &format)) return UsageError(c, "bad --format");
  v1::ListDevicesRequest request;
  request.set_category(args->GetOr("category", ""));
  request.set_include_retired(args->Has("all"));
  for (const std::string& label : args->GetAll("label")) {
    std::pair<std::string, std::string> kv = absl::StrSplit(label, absl::MaxSplits('=', 1));
    if (kv.first.empty() || label.find('=') == std::string::npos) {
      return UsageError(c, absl::StrCat("--label wants KEY=VALUE, got \"", label, "\""));
    }
    (*request.mutable_labels())[kv.first] = kv.second;
  }
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<std::vector<v1::Device>> devices = client->ListDevices(request);
  if (!devices.ok()) return Fail(devices.status());
  if (format == "json") {
    v1::ListDevicesResponse all;
    for (auto& d : *devices) *all.add_devices() = d;
    return Emit(*args, ToJson(all));
  }
  Rows rows = {{"ID", "HARDWARE", "CATEGORY", "RUNTIME", "PRECISION", "BATCH", "THREADS",
                "MEASURED", "LABELS", "STATE"}};
  for (const v1::Device& d : *devices) {
    std::vector<std::string> labels;
    for (const auto& [k, v] :
         std::map<std::string, std::string>(d.labels().begin(), d.labels().end())) {
      labels.push_back(absl::StrCat(k, "=", v));
    }
    rows.push_back({d.id(), d.hardware_name(), d.spec().category(), d.config().runtime(),
                    d.config().precision(), absl::StrCat(d.config().batch_size()),
                    absl::StrCat(d.config().threads()), absl::StrCat(d.measurement_count()),
                    absl::StrJoin(labels, ";"), d.retired() ? "retired" : "active"});
  }
  return Emit(*args, FormatRows(rows, format));
}

// The served model's cross-validated accuracy of `device`, in one line.
std::string ServedAccuracy(MaplexClient& client, const std::string& device) {
  absl::StatusOr<v1::ModelInfo> m = client.GetModel(0);
  if (!m.ok()) return absl::StrCat("unknown (", m.status().message(), ")");
  for (const v1::DeviceAccuracy& a : m->device_accuracy()) {
    if (a.device_id() != device) continue;
    if (a.scored() == 0) return absl::StrCat(a.basis(), " (model version ", m->version(), ")");
    return absl::StrFormat(
        "cross-validated (model version %d): Spearman %.3f, within 10 %% %.3f, MAPE %.2f %%, "
        "90 %% coverage %.3f; %d measurements held out, %d folds",
        m->version(), a.spearman(), a.acc10(), a.mape(), a.coverage90(), a.scored(), a.folds());
  }
  return absl::StrCat("not in model version ", m->version());
}

int DevicesShow(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"format"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  if (args->positionals().size() != 1) return UsageError(c, "give exactly one device ID");
  std::string format;
  if (!CheckFormat(*args, {"table", "json"}, &format)) return UsageError(c, "bad --format");
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::Device> d = client->GetDevice(args->positionals()[0]);
  if (!d.ok()) return Fail(d.status());
  if (format == "json") return Emit(*args, ToJson(*d));
  Rows rows = {{"FIELD", "VALUE"},
               {"id", d->id()},
               {"hardware", d->hardware_name()},
               {"fingerprint", d->hardware_fingerprint()},
               {"runtime", d->config().runtime()},
               {"precision", d->config().precision()},
               {"batch_size", absl::StrCat(d->config().batch_size())},
               {"threads", absl::StrCat(d->config().threads())},
               {"category", d->spec().category()},
               {"isa", d->spec().isa()},
               {"measured_archs", absl::StrCat(d->measurement_count())},
               {"registered", FormatTime(d->registered_at_unix_ms())},
               {"state", d->retired() ? "retired" : "active"}};
  for (const auto& [space, count] : std::map<std::string, int64_t>(
           d->measurement_count_by_space().begin(), d->measurement_count_by_space().end())) {
    rows.push_back({absl::StrCat("measured_archs ", space), absl::StrCat(count)});
  }
  const v1::HardwareSpec& s = d->spec();
  auto spec = [&](const char* name, bool has, double v) {
    rows.push_back({name, has ? absl::StrFormat("%g", v) : "unknown"});
  };
  spec("compute_units", s.has_compute_units(), s.compute_units());
  spec("threads_hw", s.has_threads(), s.threads());
  spec("base_clock_ghz", s.has_base_clock_ghz(), s.base_clock_ghz());
  spec("boost_clock_ghz", s.has_boost_clock_ghz(), s.boost_clock_ghz());
  spec("l2_mib", s.has_l2_mib(), s.l2_mib());
  spec("llc_mib", s.has_llc_mib(), s.llc_mib());
  spec("memory_gib", s.has_memory_gib(), s.memory_gib());
  spec("memory_bandwidth_gbs", s.has_memory_bandwidth_gbs(), s.memory_bandwidth_gbs());
  spec("tdp_w", s.has_tdp_w(), s.tdp_w());
  for (const auto& [k, v] :
       std::map<std::string, std::string>(d->labels().begin(), d->labels().end())) {
    rows.push_back({absl::StrCat("label ", k), v});
  }
  rows.push_back({"cv_accuracy", ServedAccuracy(*client, d->id())});
  return Emit(*args, FormatRows(rows, "table"));
}

int DevicesRetire(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  if (args->positionals().size() != 1) return UsageError(c, "give exactly one device ID");
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::Device> d = client->RetireDevice(args->positionals()[0]);
  if (!d.ok()) return Fail(d.status());
  std::printf("retired %s\n", d->id().c_str());
  return 0;
}

int DevicesLabel(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"remove"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  if (args->positionals().empty()) return UsageError(c, "give the device ID");
  v1::UpdateDeviceRequest request;
  request.set_id(args->positionals()[0]);
  for (size_t i = 1; i < args->positionals().size(); ++i) {
    const std::string& kv = args->positionals()[i];
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(c, absl::StrCat("labels are KEY=VALUE, got \"", kv, "\""));
    }
    (*request.mutable_set_labels())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const std::string& key : args->GetAll("remove")) request.add_remove_labels(key);
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::Device> d = client->UpdateDevice(request);
  if (!d.ok()) return Fail(d.status());
  std::printf("%s: %d labels\n", d->id().c_str(), d->labels_size());
  return 0;
}

// ---------- predict ----------

bool IsNb201(const std::string& space) {
  return space.empty() || space == "nb201" || space == "nasbench201";
}

// An ARCH argument. NB201: all digits = index, anything else = cell string; any other space:
// its canonical string (the server parses it and names the position of a fault).
v1::Architecture ParseArch(const std::string& text, const std::string& space) {
  if (!IsNb201(space)) return client::Canonical(space, text);
  int32_t index = 0;
  if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit) &&
      absl::SimpleAtoi(text, &index)) {
    return client::Nb201Index(index);
  }
  return client::Nb201Cell(text);
}

// The measured latencies of `device` by NB201 index, from either a wide latency CSV (the
// device's column) or the CSV `maplex-agent --measure_only` prints (arch_index,median_ms,...).
absl::StatusOr<absl::flat_hash_map<int32_t, double>> MeasuredLatencies(const std::string& path,
                                                                       const std::string& device) {
  absl::StatusOr<std::string> text = client::ReadMaybeGzippedFile(path);
  if (!text.ok()) return text.status();
  absl::flat_hash_map<int32_t, double> measured;
  if (absl::StartsWith(*text, "arch_index,median_ms")) {
    std::vector<absl::string_view> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<absl::string_view> f = absl::StrSplit(lines[i], ',');
      int32_t arch = 0;
      double ms = 0;
      if (f.size() < 2 || !absl::SimpleAtoi(f[0], &arch) || !absl::SimpleAtod(f[1], &ms)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", i + 1, ": not arch_index,median_ms"));
      }
      measured[arch] = ms;
    }
    return measured;
  }
  absl::StatusOr<std::vector<core::DeviceData>> table = client::LoadLatencyData(path, "");
  if (!table.ok()) return table.status();
  for (const core::DeviceData& d : *table) {
    if (d.device != device) continue;
    for (const core::LatencySample& s : d.samples) measured[s.arch_index] = s.latency_ms;
    return measured;
  }
  return absl::NotFoundError(absl::StrCat(path, " has no column \"", device, "\""));
}

// The measured latencies of `device` in `space` by canonical string, from either a wide
// latency CSV of that space (the device's column) or the CSV of `maplex-agent --measure_only`
// (columns found by name: arch, median_ms).
absl::StatusOr<absl::flat_hash_map<std::string, double>> MeasuredBySpace(
    const std::string& path, const std::string& device, const core::ArchitectureSpace& space) {
  absl::StatusOr<std::string> text = client::ReadMaybeGzippedFile(path);
  if (!text.ok()) return text.status();
  absl::flat_hash_map<std::string, double> measured;
  std::vector<absl::string_view> lines = absl::StrSplit(*text, '\n', absl::SkipEmpty());
  std::vector<absl::string_view> header =
      lines.empty() ? std::vector<absl::string_view>{} : absl::StrSplit(lines[0], ',');
  const auto arch_col = std::find(header.begin(), header.end(), "arch");
  const auto ms_col = std::find(header.begin(), header.end(), "median_ms");
  if (arch_col != header.end() && ms_col != header.end()) {
    const size_t a = arch_col - header.begin(), m = ms_col - header.begin();
    for (size_t i = 1; i < lines.size(); ++i) {
      std::vector<absl::string_view> f = absl::StrSplit(lines[i], ',');
      double ms = 0;
      if (f.size() <= std::max(a, m) || !absl::SimpleAtod(f[m], &ms)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", i + 1, ": no arch and median_ms in this row"));
      }
      absl::StatusOr<core::Architecture> arch =
          space.Parse(std::string_view(f[a].data(), f[a].size()));
      if (!arch.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ":", i + 1, ": ", arch.status().message()));
      }
      measured[arch->ToString()] = ms;
    }
    return measured;
  }
  absl::StatusOr<core::SpaceLatencyTable> table = client::LoadSpaceLatencyData(path, "");
  if (!table.ok()) return table.status();
  if (table->space != &space) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds space ",
                                                   std::string(table->space->name()), ", not ",
                                                   std::string(space.name())));
  }
  for (const core::SpaceLatencyTable::Column& d : table->devices) {
    if (d.device != device) continue;
    for (size_t i = 0; i < table->archs.size(); ++i) {
      if (!std::isnan(d.latency_ms[i])) measured[table->archs[i].ToString()] = d.latency_ms[i];
    }
    return measured;
  }
  return absl::NotFoundError(absl::StrCat(path, " has no column \"", device, "\""));
}

// Prints the accuracy of `predicted` against `truth` (the evaluation protocol's metrics).
void PrintAccuracy(const std::string& path, const std::vector<core::LatencyPrediction>& predicted,
                   const std::vector<double>& truth, int disconnected, const char* unit) {
  core::AccuracyMetrics m = core::ComputeAccuracy(predicted, truth);
  std::printf(
      "accuracy against %s (%d %s with a connected output; %d disconnected left out):\n"
      "  Spearman rho %.4f   within ±5%% %.3f   within ±10%% %.3f   MAPE %.2f%%   "
      "90%% interval coverage %.3f\n",
      path.c_str(), m.count, unit, disconnected, m.spearman, m.acc5, m.acc10, 100 * m.mape,
      m.coverage90);
}

// `archs` as a compact batch when every one is the canonical string of one space other than
// NB201 that parses here: a few bytes per architecture instead of its string (and
// MaplexClient::PredictBatch packs a large batch two choices per byte). nullopt otherwise,
// so the server sees the messages and names a bad one as usual.
std::optional<v1::ArchitectureBatch> CompactBatch(const std::vector<v1::Architecture>& archs) {
  if (archs.empty() || IsNb201(archs[0].space())) return std::nullopt;
  const core::ArchitectureSpace* space = core::FindSpace(archs[0].space());
  if (space == nullptr) return std::nullopt;
  v1::ArchitectureBatch batch;
  batch.set_space(archs[0].space());
  std::string* codes = batch.mutable_choices();
  codes->reserve(archs.size() * static_cast<size_t>(space->positions()));
  for (const v1::Architecture& a : archs) {
    if (a.space() != archs[0].space() || a.id_case() != v1::Architecture::kCanonical) {
      return std::nullopt;
    }
    absl::StatusOr<core::Architecture> parsed = space->Parse(a.canonical());
    if (!parsed.ok()) return std::nullopt;
    for (uint8_t c : parsed->choices()) codes->push_back(static_cast<char>(c));
  }
  return batch;
}

// Predicts `archs` in requests below the server's per-request limit, all from one model
// version (`version`, or the one that answers the first request when 0). Architectures of
// spaces other than NB201 go as compact batches when they parse here (CompactBatch); the
// answer has one Prediction per architecture either way.
absl::StatusOr<v1::PredictResponse> PredictInChunks(MaplexClient& client, const std::string& device,
                                                    const std::vector<v1::Architecture>& archs,
                                                    uint64_t version) {
  v1::PredictResponse all;
  constexpr size_t kChunk = 10000;
  for (size_t start = 0; start < archs.size(); start += kChunk) {
    std::vector<v1::Architecture> chunk(archs.begin() + start,
                                        archs.begin() + std::min(archs.size(), start + kChunk));
    const std::optional<v1::ArchitectureBatch> batch = CompactBatch(chunk);
    absl::StatusOr<v1::PredictResponse> r = batch ? client.PredictBatch(device, *batch, version)
                                                  : client.Predict(device, chunk, version);
    if (!r.ok()) return r.status();
    if (version == 0) version = r->model_version();
    all.set_model_version(r->model_version());
    all.set_method(r->method());
    if (batch) {
      const v1::PredictionColumns& c = r->columns();
      if (c.latency_ms_size() != static_cast<int>(chunk.size()) ||
          c.lower_ms_size() != c.latency_ms_size() || c.upper_ms_size() != c.latency_ms_size()) {
        return absl::InternalError(absl::StrCat(
            "the server answered ", c.latency_ms_size(), " predictions with ", c.lower_ms_size(),
            " and ", c.upper_ms_size(), " interval bounds for ", chunk.size(), " architectures"));
      }
      for (int i = 0; i < c.latency_ms_size(); ++i) {
        v1::Prediction* p = all.add_predictions();
        p->set_latency_ms(c.latency_ms(i));
        p->set_lower_ms(c.lower_ms(i));
        p->set_upper_ms(c.upper_ms(i));
      }
      continue;
    }
    for (auto& p : *r->mutable_predictions()) *all.add_predictions() = std::move(p);
  }
  return all;
}

int Predict(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(
      argv, {"device", "space", "file", "format", "output", "compare-with", "model-version"},
      {"all"});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::string format;
  if (!CheckFormat(*args, {"table", "csv", "json"}, &format)) return UsageError(c, "bad --format");
  std::optional<std::string> device = args->Get("device");
  if (!device) return UsageError(c, "--device is required");
  uint64_t version = 0;
  if (args->Has("model-version") && !absl::SimpleAtoi(*args->Get("model-version"), &version)) {
    return UsageError(c, absl::StrCat("--model-version: \"", *args->Get("model-version"),
                                      "\" is not a version number"));
  }
  const std::string space_name = args->GetOr("space", "");
  const bool nb201 = IsNb201(space_name);
  if (!nb201 && args->Has("all")) return UsageError(c, "--all is for nb201 only");
  const core::ArchitectureSpace* other_space = nb201 ? nullptr : core::FindSpace(space_name);
  if (!nb201 && other_space == nullptr) {
    return UsageError(c, absl::StrCat("--space: unknown space \"", space_name, "\""));
  }
  std::vector<v1::Architecture> archs;
  std::vector<std::string> texts;  // as given, for the table of other spaces
  auto add = [&](const std::string& text) {
    archs.push_back(ParseArch(text, space_name));
    texts.push_back(text);
  };
  for (const std::string& a : args->positionals()) add(a);
  if (std::optional<std::string> file = args->Get("file")) {
    absl::StatusOr<std::string> text = client::ReadMaybeGzippedFile(*file);
    if (!text.ok()) return Fail(text.status());
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
      if (!line.empty()) add(std::string(line));
    }
  }
  if (args->Has("all")) {
    for (int32_t i = 0; i < core::kNb201CellCount; ++i) archs.push_back(client::Nb201Index(i));
  }
  if (archs.empty()) return UsageError(c, "name architectures: ARCH..., --file or --all");

  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::PredictResponse> predicted = PredictInChunks(*client, *device, archs, version);
  if (!predicted.ok()) return Fail(predicted.status());
  const v1::PredictResponse& all = *predicted;

  std::optional<absl::flat_hash_map<int32_t, double>> measured;
  std::optional<absl::flat_hash_map<std::string, double>> measured_by_arch;  // other spaces
  if (std::optional<std::string> path = args->Get("compare-with"); path && !nb201) {
    absl::StatusOr<absl::flat_hash_map<std::string, double>> m =
        MeasuredBySpace(*path, *device, *other_space);
    if (!m.ok()) return Fail(m.status());
    measured_by_arch = *std::move(m);
  } else if (path) {
    absl::StatusOr<absl::flat_hash_map<int32_t, double>> m = MeasuredLatencies(*path, *device);
    if (!m.ok()) return Fail(m.status());
    measured = *std::move(m);
  }

  // The measured latency of each requested architecture of another space, parsed once for
  // the table and the accuracy (nullopt: not measured or not parsable here).
  std::vector<std::optional<double>> measured_ms(texts.size());
  std::vector<bool> connected(texts.size(), true);
  if (measured_by_arch) {
    for (size_t i = 0; i < texts.size(); ++i) {
      absl::StatusOr<core::Architecture> a = other_space->Parse(texts[i]);
      if (!a.ok()) continue;
      auto it = measured_by_arch->find(a->ToString());
      if (it != measured_by_arch->end()) measured_ms[i] = it->second;
      connected[i] = other_space->IsOutputConnected(*a);
    }
  }

  int rc = 0;
  const core::Nb201Space& space = core::Nb201Space::Get();
  if (format == "json") {
    rc = Emit(*args, ToJson(all));
  } else if (!nb201) {
    // Answers follow the request's order.
    Rows rows = {{"ARCH", "LATENCY_MS", "LOWER_MS", "UPPER_MS"}};
    if (measured_by_arch) rows[0].push_back("MEASURED_MS");
    for (int i = 0; i < all.predictions_size(); ++i) {
      const v1::Prediction& p = all.predictions(i);
      rows.push_back({texts[i], Ms(p.latency_ms()), Ms(p.lower_ms()), Ms(p.upper_ms())});
      if (measured_by_arch) rows.back().push_back(measured_ms[i] ? Ms(*measured_ms[i]) : "");
    }
    rc = Emit(*args, FormatRows(rows, format));
  } else {
    Rows rows = {{"INDEX", "CELL", "LATENCY_MS", "LOWER_MS", "UPPER_MS"}};
    if (measured) rows[0].push_back("MEASURED_MS");
    for (const v1::Prediction& p : all.predictions()) {
      rows.push_back({absl::StrCat(p.arch_index()), *space.ArchString(p.arch_index()),
                      Ms(p.latency_ms()), Ms(p.lower_ms()), Ms(p.upper_ms())});
      if (measured) {
        auto it = measured->find(p.arch_index());
        rows.back().push_back(it == measured->end() ? "" : Ms(it->second));
      }
    }
    rc = Emit(*args, FormatRows(rows, format));
  }
  std::fprintf(stderr, "device %s: %d predictions from model version %llu (%s)\n", device->c_str(),
               all.predictions_size(), static_cast<unsigned long long>(all.model_version()),
               all.method().c_str());
  if (measured) {
    // The evaluation protocol: cells whose output is connected to the input.
    std::vector<core::LatencyPrediction> predicted;
    std::vector<double> truth;
    int disconnected = 0;
    for (const v1::Prediction& p : all.predictions()) {
      auto it = measured->find(p.arch_index());
      if (it == measured->end()) continue;
      if (!space.IsOutputConnected(p.arch_index())) {
        ++disconnected;
        continue;
      }
      predicted.push_back({p.latency_ms(), p.lower_ms(), p.upper_ms()});
      truth.push_back(it->second);
    }
    PrintAccuracy(*args->Get("compare-with"), predicted, truth, disconnected, "cells");
  }
  if (measured_by_arch) {
    std::vector<core::LatencyPrediction> predicted;
    std::vector<double> truth;
    int disconnected = 0;
    for (int i = 0; i < all.predictions_size(); ++i) {
      if (!measured_ms[i]) continue;
      if (!connected[i]) {
        ++disconnected;
        continue;
      }
      const v1::Prediction& p = all.predictions(i);
      predicted.push_back({p.latency_ms(), p.lower_ms(), p.upper_ms()});
      truth.push_back(*measured_ms[i]);
    }
    PrintAccuracy(*args->Get("compare-with"), predicted, truth, disconnected, "architectures");
  }
  return rc;
}

// ---------- models ----------

Rows ModelRows(const std::vector<v1::ModelInfo>& models) {
  Rows rows = {
      {"VERSION", "METHOD", "CREATED_UTC", "DEVICES", "MEASUREMENTS", "TRAIN_S", "SERVING"}};
  for (const v1::ModelInfo& m : models) {
    rows.push_back({absl::StrCat(m.version()), m.method(), FormatTime(m.created_at_unix_ms()),
                    absl::StrCat(m.training_devices()), absl::StrCat(m.training_measurements()),
                    absl::StrFormat("%.2f", m.train_seconds()), m.serving() ? "yes" : ""});
  }
  return rows;
}

int ModelsList(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"format", "output"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::string format;
  if (!CheckFormat(*args, {"table", "json"}, &format)) return UsageError(c, "bad --format");
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<std::vector<v1::ModelInfo>> models = client->ListModels();
  if (!models.ok()) return Fail(models.status());
  if (format == "json") {
    v1::ListModelsResponse r;
    for (auto& m : *models) *r.add_models() = m;
    return Emit(*args, ToJson(r));
  }
  return Emit(*args, FormatRows(ModelRows(*models), "table"));
}

int ModelsShow(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"format", "output"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::string format;
  if (!CheckFormat(*args, {"table", "json"}, &format)) return UsageError(c, "bad --format");
  uint64_t version = 0;
  if (args->positionals().size() > 1 ||
      (args->positionals().size() == 1 && !absl::SimpleAtoi(args->positionals()[0], &version))) {
    return UsageError(c, "VERSION is one number");
  }
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::ModelInfo> m = client->GetModel(version);
  if (!m.ok()) return Fail(m.status());
  if (format == "json") return Emit(*args, ToJson(*m));
  std::string out = FormatRows(ModelRows({*m}), "table");
  // What the version serves per space (versions trained before spaces were reported have
  // no such list: they serve nb201 alone).
  if (m->spaces_size() > 0) {
    Rows spaces = {
        {"SPACE", "SERVED", "MODEL", "METHOD", "REFERENCES", "TARGETS", "MEASUREMENTS", "REASON"}};
    for (const v1::SpaceModelInfo& s : m->spaces()) {
      spaces.push_back({s.space(), s.served() ? "yes" : "no", s.kind(),
                        s.method().empty() ? "-" : s.method(), absl::StrCat(s.references()),
                        absl::StrCat(s.targets()), absl::StrCat(s.measurements()),
                        s.reason().empty() ? "-" : s.reason()});
    }
    absl::StrAppend(&out, "\n", FormatRows(spaces, "table"));
  }
  Rows acc = {{"DEVICE", "SPACE", "SAMPLES", "ROLE", "CV_SCORED", "CV_FOLDS", "CV_SPEARMAN",
               "CV_ACC10", "CV_MAPE_%", "CV_COVERAGE90", "BASIS"}};
  for (const v1::DeviceAccuracy& a : m->device_accuracy()) {
    const bool scored = a.scored() > 0;
    auto figure = [scored](const char* format, double v) {
      return scored ? absl::StrFormat(format, v) : std::string("-");
    };
    acc.push_back({a.device_id(), a.space().empty() ? "nb201" : a.space(),
                   absl::StrCat(a.samples()), a.reference() ? "reference" : "adapted",
                   scored ? absl::StrCat(a.scored()) : "-", scored ? absl::StrCat(a.folds()) : "-",
                   figure("%.4f", a.spearman()), figure("%.3f", a.acc10()),
                   figure("%.2f", a.mape()), figure("%.3f", a.coverage90()), a.basis()});
  }
  absl::StrAppend(&out, "\n", FormatRows(acc, "table"),
                  "\nCV_*: cross-validated: each scored measurement predicted by a refit of the "
                  "device without it (k-fold, leave-one-out for few samples).\n");
  return Emit(*args, out);
}

int Retrain(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  if (!args->positionals().empty()) return UsageError(c, "takes no arguments");
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::ModelInfo> m = client->Retrain();
  if (!m.ok()) return Fail(m.status());
  std::printf("%s", FormatRows(ModelRows({*m}), "table").c_str());
  return 0;
}

// ---------- import ----------

// "public:" + the hardware name in lower case with runs of other characters as '-'.
std::string PublicFingerprint(const std::string& hardware) {
  std::string out = "public:";
  bool dash = false;
  for (char ch : absl::AsciiStrToLower(hardware)) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(ch))) {
      if (dash && out.back() != ':') out += '-';
      out += ch;
      dash = false;
    } else {
      dash = true;
    }
  }
  return out;
}

// One measurement to import: its architecture, the id's suffix that names it, its latency.
struct ImportRow {
  v1::Architecture arch;
  std::string key;
  double ms = 0;
  std::string canonical;  // the architecture's canonical string (--hold-out lists these)
};
struct ImportColumn {
  std::string device;
  std::string hardware;
  core::HardwareSpec spec;
  std::string space;
  std::vector<ImportRow> rows;
};

// A short, stable id suffix for an architecture of any space: the space and one character
// per choice (0-9a-z while a position has at most 36 options, else two hex digits). The
// canonical string itself can outgrow an id (FBNet's is ~130 characters; ids stop at 128).
std::string ArchitectureKey(const core::Architecture& a) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string key = absl::StrCat(std::string(a.space()->name()), ":");
  for (int p = 0; p < a.size(); ++p) {
    if (a.space()->options(p) <= 36) {
      key.push_back(kDigits[a.choice(p)]);
    } else {
      absl::StrAppend(&key, absl::Hex(a.choice(p), absl::kZeroPad2));
    }
  }
  return key;
}

// The rows of a wide latency CSV by device column. NB201's file (`arch_index,arch_str,...`)
// imports as before canonical strings existed (ids import:<device>:<index>, architectures by
// index), so importing it again stores nothing twice; any other space's file (`arch,...`)
// by canonical string, ids import:<device>:<ArchitectureKey>.
absl::StatusOr<std::vector<ImportColumn>> ReadImportTable(const std::string& latency_path,
                                                          const std::string& devices_path) {
  absl::StatusOr<std::string> head = client::ReadMaybeGzippedFile(latency_path);
  if (!head.ok()) return head.status();
  std::vector<ImportColumn> columns;
  if (absl::StartsWith(*head, "arch_index,")) {
    absl::StatusOr<std::vector<core::DeviceData>> table =
        client::LoadLatencyData(latency_path, devices_path);
    if (!table.ok()) return table.status();
    for (const core::DeviceData& d : *table) {
      ImportColumn& c = columns.emplace_back();
      c.device = d.device;
      c.hardware = d.hardware;
      c.spec = d.descriptor.spec;
      c.space = "nb201";
      for (const core::LatencySample& s : d.samples) {
        c.rows.push_back({client::Nb201Index(s.arch_index), absl::StrCat(s.arch_index),
                          s.latency_ms, *core::Nb201Space::Get().ArchString(s.arch_index)});
      }
    }
    return columns;
  }
  absl::StatusOr<core::SpaceLatencyTable> table =
      client::LoadSpaceLatencyData(latency_path, devices_path);
  if (!table.ok()) return table.status();
  const std::string space(table->space->name());
  for (const core::SpaceLatencyTable::Column& d : table->devices) {
    ImportColumn& c = columns.emplace_back();
    c.device = d.device;
    c.hardware = d.hardware;
    c.spec = d.descriptor.spec;
    c.space = space;
    for (size_t i = 0; i < table->archs.size(); ++i) {
      if (std::isnan(d.latency_ms[i])) continue;  // not measured
      const std::string canonical = table->archs[i].ToString();
      c.rows.push_back({client::Canonical(space, canonical), ArchitectureKey(table->archs[i]),
                        d.latency_ms[i], canonical});
    }
  }
  return columns;
}

int Import(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(
      argv, {"latency", "devices", "only", "keep", "seed", "batch", "hold-out", "hold-out-list"},
      {"replace"});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::optional<std::string> latency_path = args->Get("latency");
  if (!latency_path && args->positionals().size() == 1) latency_path = args->positionals()[0];
  std::optional<std::string> devices_path = args->Get("devices");
  if (!latency_path || !devices_path) {
    return UsageError(c, "a latency file (LATENCY or --latency) and --devices are required");
  }
  if (args->positionals().size() > (args->Has("latency") ? 0u : 1u)) {
    return UsageError(c, "one latency file");
  }
  int batch = 5000;
  uint32_t seed = 1;
  if (!absl::SimpleAtoi(args->GetOr("batch", "5000"), &batch) || batch < 1) {
    return UsageError(
        c, absl::StrCat("--batch: \"", args->GetOr("batch", ""), "\" is not a positive number"));
  }
  if (!absl::SimpleAtoi(args->GetOr("seed", "1"), &seed)) {
    return UsageError(c, absl::StrCat("--seed: \"", args->GetOr("seed", ""), "\" is not a number"));
  }
  std::set<std::string> only;
  if (std::optional<std::string> o = args->Get("only")) {
    for (absl::string_view d : absl::StrSplit(*o, ',', absl::SkipEmpty())) only.emplace(d);
  }
  std::map<std::string, int> keep;
  for (const std::string& k : args->GetAll("keep")) {
    std::pair<std::string, std::string> kv = absl::StrSplit(k, absl::MaxSplits('=', 1));
    int n = 0;
    if (kv.first.empty() || !absl::SimpleAtoi(kv.second, &n) || n < 1) {
      return UsageError(c, absl::StrCat("--keep wants DEVICE=K with K >= 1, got \"", k, "\""));
    }
    keep[kv.first] = n;
  }

  double hold_out = 0;
  if (args->Has("hold-out") &&
      (!absl::SimpleAtod(*args->Get("hold-out"), &hold_out) || !(hold_out > 0 && hold_out < 1))) {
    return UsageError(c, absl::StrCat("--hold-out wants a share in (0, 1), got \"",
                                      *args->Get("hold-out"), "\""));
  }
  if (args->Has("hold-out") != args->Has("hold-out-list")) {
    return UsageError(c, "--hold-out and --hold-out-list go together");
  }

  absl::StatusOr<std::vector<ImportColumn>> table = ReadImportTable(*latency_path, *devices_path);
  if (!table.ok()) return Fail(table.status());
  for (const std::string& d : only) {
    if (std::none_of(table->begin(), table->end(), [&](const auto& t) { return t.device == d; })) {
      return Fail(
          absl::NotFoundError(absl::StrCat("--only: no column \"", d, "\" in ", *latency_path)));
    }
  }

  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  std::mt19937 rng(seed);
  // Architectures no device is given: a seeded share of the file's distinct ones, listed
  // for the caller to predict and score (architectures the model never saw).
  std::set<std::string> held_out;
  if (hold_out > 0) {
    std::set<std::string> distinct;
    for (const ImportColumn& d : *table) {
      for (const ImportRow& row : d.rows) distinct.insert(row.canonical);
    }
    std::vector<std::string> shuffled(distinct.begin(), distinct.end());
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    shuffled.resize(static_cast<size_t>(std::lround(hold_out * shuffled.size())));
    held_out.insert(shuffled.begin(), shuffled.end());
    std::string list;
    for (const std::string& a : shuffled) absl::StrAppend(&list, a, "\n");
    std::FILE* f = std::fopen(args->Get("hold-out-list")->c_str(), "w");
    if (f == nullptr || std::fwrite(list.data(), 1, list.size(), f) != list.size() ||
        std::fclose(f) != 0) {
      return Fail(
          absl::UnavailableError(absl::StrCat("cannot write ", *args->Get("hold-out-list"))));
    }
    std::printf("held out: %zu of %zu architectures, for every device (listed in %s)\n",
                shuffled.size(), distinct.size(), args->Get("hold-out-list")->c_str());
  }
  // Every device is registered first, then all their measurements go through one stream
  // (a batch never spans two devices, so each device's counts come back on their own).
  std::vector<const ImportColumn*> sent;
  std::vector<std::vector<v1::Measurement>> groups;
  for (ImportColumn& d : *table) {
    if (!only.empty() && !only.count(d.device)) continue;
    v1::RegisterDeviceRequest reg;
    reg.set_id(d.device);
    reg.set_hardware_fingerprint(PublicFingerprint(d.hardware));
    reg.set_hardware_name(d.hardware);
    core::SpecToProto(d.spec, reg.mutable_spec(), reg.mutable_config());
    reg.mutable_config()->set_runtime("public");
    (*reg.mutable_labels())["source"] = "import";
    absl::StatusOr<v1::RegisterDeviceResponse> r = client->RegisterDevice(reg);
    if (!r.ok()) return Fail(r.status());
    if (r->device().id() != d.device) {
      return Fail(absl::AlreadyExistsError(
          absl::StrCat("column ", d.device, " is the same hardware and configuration as device ",
                       r->device().id(), " already registered")));
    }
    if (!held_out.empty()) {
      d.rows.erase(std::remove_if(d.rows.begin(), d.rows.end(),
                                  [&](const ImportRow& r) { return held_out.count(r.canonical); }),
                   d.rows.end());
    }
    if (auto k = keep.find(d.device);
        k != keep.end() && k->second < static_cast<int>(d.rows.size())) {
      std::shuffle(d.rows.begin(), d.rows.end(), rng);
      d.rows.resize(k->second);
    }
    std::vector<v1::Measurement>& measurements = groups.emplace_back();
    sent.push_back(&d);
    measurements.reserve(d.rows.size());
    for (const ImportRow& row : d.rows) {
      v1::Measurement& m = measurements.emplace_back();
      m.set_id(absl::StrCat("import:", d.device, ":", row.key));
      m.set_device_id(d.device);
      *m.mutable_arch() = row.arch;
      m.mutable_stats()->set_median_ms(row.ms);
      m.mutable_protocol()->set_tool("maplex import (public data)");
      m.mutable_protocol()->set_notes(absl::StrCat("from ", *latency_path));
    }
  }
  std::vector<size_t> sizes;
  for (const auto& g : groups) sizes.push_back(g.size());
  absl::StatusOr<std::vector<v1::MeasurementAck>> acks =
      client->SendMeasurementGroups(std::move(groups), batch, args->Has("replace"));
  if (!acks.ok()) return Fail(acks.status());
  int64_t inserted = 0, already = 0;
  for (size_t i = 0; i < sent.size(); ++i) {
    const v1::MeasurementAck& ack = (*acks)[i];
    inserted += ack.inserted();
    already += ack.already_stored();
    std::printf("%-16s %6zu %s measurements (%d new, %d already stored)\n", sent[i]->device.c_str(),
                sizes[i], sent[i]->space.c_str(), ack.inserted(), ack.already_stored());
  }
  std::printf("imported: %lld new measurements, %lld already stored\n",
              static_cast<long long>(inserted), static_cast<long long>(already));
  return 0;
}

// ---------- health ----------

int Health(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"service"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::vector<std::string> services = {"", "maplex.v1.DeviceRegistry", "maplex.v1.Ingest",
                                       "maplex.v1.Predictor", "maplex.v1.Models"};
  if (std::optional<std::string> only = args->Get("service")) services = {*only};
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  int rc = 0;
  Rows rows = {{"SERVICE", "STATUS"}};
  for (const std::string& service : services) {
    auto status = client->Health(service);
    if (absl::IsNotFound(status.status())) {
      // A predictor replica registers neither the registry nor ingest.
      rows.push_back({service, "not served here"});
      continue;
    }
    if (!status.ok()) return Fail(status.status());
    if (*status != grpc::health::v1::HealthCheckResponse::SERVING) rc = 1;
    rows.push_back({service.empty() ? "(server)" : service,
                    grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*status)});
  }
  std::printf("%s", FormatRows(rows, "table").c_str());
  return rc;
}

// ---------- tokens ----------

std::string RoleName(v1::Role role) {
  std::string name = v1::Role_Name(role);
  return absl::AsciiStrToLower(absl::StripPrefix(name, "ROLE_"));
}

int TokensCreate(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"role", "device", "name"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  if (!args->positionals().empty()) return UsageError(c, "takes no positional arguments");
  v1::Role role = v1::ROLE_UNSPECIFIED;
  if (!v1::Role_Parse(absl::StrCat("ROLE_", absl::AsciiStrToUpper(args->GetOr("role", ""))),
                      &role) ||
      role == v1::ROLE_UNSPECIFIED) {
    return UsageError(c, "--role must be agent, client, operator or replica");
  }
  v1::CreateTokenRequest request;
  request.set_role(role);
  request.set_device_id(args->GetOr("device", ""));
  request.set_name(args->GetOr("name", ""));
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::CreateTokenResponse> created = client->CreateToken(request);
  if (!created.ok()) return Fail(created.status());
  // The secret alone on stdout, so that `maplex tokens create ... > agent.token` works.
  std::fprintf(stderr, "created token %lld (%s%s); its secret is shown only now:\n",
               static_cast<long long>(created->token().id()),
               RoleName(created->token().role()).c_str(),
               created->token().device_id().empty()
                   ? ""
                   : absl::StrCat(", device ", created->token().device_id()).c_str());
  std::printf("%s\n", created->secret().c_str());
  return 0;
}

int TokensList(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"format"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::string format;
  if (!CheckFormat(*args, {"table", "json"}, &format)) return UsageError(c, "bad --format");
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<std::vector<v1::Token>> tokens = client->ListTokens();
  if (!tokens.ok()) return Fail(tokens.status());
  if (format == "json") {
    v1::ListTokensResponse all;
    for (const v1::Token& t : *tokens) *all.add_tokens() = t;
    std::printf("%s\n", ToJson(all).c_str());
    return 0;
  }
  Rows rows = {{"ID", "ROLE", "DEVICE", "NAME", "CREATED_UTC", "STATE"}};
  for (const v1::Token& t : *tokens) {
    rows.push_back({absl::StrCat(t.id()), RoleName(t.role()), t.device_id(), t.name(),
                    FormatTime(t.created_at_unix_ms()), t.revoked() ? "revoked" : "active"});
  }
  std::printf("%s", FormatRows(rows, "table").c_str());
  return 0;
}

int TokensRevoke(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  int64_t id = 0;
  if (args->positionals().size() != 1 || !absl::SimpleAtoi(args->positionals()[0], &id)) {
    return UsageError(c, "give exactly one token ID (see maplex tokens list)");
  }
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());
  absl::StatusOr<v1::Token> t = client->RevokeToken(id);
  if (!t.ok()) return Fail(t.status());
  std::printf("revoked token %lld\n", static_cast<long long>(t->id()));
  return 0;
}

// ---------- report ----------

// The space of a latency file's architectures, from its header and first row: NB201's
// `arch_index,...`, or the first registered space that parses the first `arch` value.
// nullptr when neither tells.
const core::ArchitectureSpace* DetectFileSpace(const std::string& path) {
  absl::StatusOr<std::string> text = client::ReadMaybeGzippedFile(path);
  if (!text.ok()) return nullptr;
  std::vector<absl::string_view> lines =
      absl::StrSplit(*text, absl::MaxSplits('\n', 2), absl::SkipEmpty());
  if (lines.size() < 2) return nullptr;
  if (absl::StartsWith(lines[0], "arch_index")) return &core::Nb201Space::Get();
  std::vector<absl::string_view> header = absl::StrSplit(lines[0], ',');
  std::vector<absl::string_view> row = absl::StrSplit(lines[1], ',');
  const auto arch = std::find(header.begin(), header.end(), "arch");
  if (arch == header.end() || static_cast<size_t>(arch - header.begin()) >= row.size()) {
    return nullptr;
  }
  const absl::string_view first = row[arch - header.begin()];
  for (std::string_view name : core::SpaceNames()) {
    const core::ArchitectureSpace* space = core::FindSpace(name);
    if (space->Parse(std::string_view(first.data(), first.size())).ok()) return space;
  }
  return nullptr;
}

// `maplex report` for a device of a function-model space (FBNet): every figure scored on
// architectures the model did not see (client/report/accuracy_report.h).
int ReportFunctionSpace(MaplexClient& client, const v1::Device& target,
                        const core::ArchitectureSpace& space,
                        const std::optional<std::string>& compare_with, const std::string& out) {
  const std::string space_name(space.name());
  client::FunctionReportInput in;
  in.device = target;
  in.table.space = &space;
  // Every active device's measurements in the space, one column each.
  absl::flat_hash_map<core::Architecture, size_t> row_of;
  auto row = [&](const core::Architecture& a) {
    auto [it, added] = row_of.try_emplace(a, in.table.archs.size());
    if (added) {
      in.table.archs.push_back(a);
      for (auto& column : in.table.devices) column.latency_ms.push_back(std::nan(""));
    }
    return it->second;
  };
  absl::StatusOr<std::vector<v1::Device>> fleet = client.ListDevices({});
  if (!fleet.ok()) return Fail(fleet.status());
  int target_column = -1;
  for (const v1::Device& f : *fleet) {
    absl::StatusOr<std::vector<v1::MeasuredLatency>> latencies =
        client.ListMeasurements(f.id(), space_name);
    if (!latencies.ok()) return Fail(latencies.status());
    if (latencies->empty() && f.id() != target.id()) continue;
    if (f.id() == target.id()) {
      target_column = static_cast<int>(in.table.devices.size());
      in.stored_samples = static_cast<int>(latencies->size());
    }
    core::SpaceLatencyTable::Column& column = in.table.devices.emplace_back();
    column.device = f.id();
    column.hardware = f.hardware_fingerprint();  // as the server's trainer groups hardware
    column.descriptor.spec = core::SpecFromProto(f.spec(), f.config());
    column.latency_ms.assign(in.table.archs.size(), std::nan(""));
    for (const v1::MeasuredLatency& m : *latencies) {
      absl::StatusOr<core::Architecture> a = space.Parse(m.arch().canonical());
      if (!a.ok()) return Fail(a.status());
      const size_t r = row(*a);
      in.table.devices.back().latency_ms[r] = m.latency_ms();
    }
    in.hardware_names[f.id()] = f.hardware_name();
  }
  if (target_column < 0) {
    return Fail(absl::NotFoundError(absl::StrCat(
        "device \"", target.id(), "\" is not active (retired devices have no report)")));
  }

  absl::StatusOr<v1::ModelInfo> model = client.GetModel(0);
  if (!model.ok()) return Fail(model.status());
  if (compare_with) {
    // Scored: the file's architectures no device on the server measured, so that no fit of
    // the served model read them; the device's column becomes the file's measurements.
    absl::StatusOr<absl::flat_hash_map<std::string, double>> file =
        MeasuredBySpace(*compare_with, target.id(), space);
    if (!file.ok()) return Fail(file.status());
    absl::flat_hash_set<core::Architecture> measured_by_fleet(in.table.archs.begin(),
                                                              in.table.archs.end());
    std::vector<std::pair<core::Architecture, double>> rows;
    for (const auto& [text, ms] : *file) {
      absl::StatusOr<core::Architecture> a = space.Parse(text);
      if (!a.ok()) return Fail(a.status());
      rows.push_back({*a, ms});
    }
    std::sort(rows.begin(), rows.end());  // deterministic pages
    std::vector<v1::Architecture> asked;
    for (const auto& [a, ms] : rows) {
      in.table.devices[target_column].latency_ms[row(a)] = ms;
      if (measured_by_fleet.contains(a)) continue;
      in.scored.push_back(a);
      in.measured_ms.push_back(ms);
      asked.push_back(client::Canonical(space_name, a.ToString()));
    }
    if (in.scored.empty()) {
      return Fail(absl::FailedPreconditionError(absl::StrCat(
          "every architecture of ", *compare_with, " was measured by a device on the server, ",
          "so the served model saw them all; hold some out (maplex import --hold-out SHARE "
          "--hold-out-list FILE) to score it")));
    }
    absl::StatusOr<v1::PredictResponse> predicted =
        PredictInChunks(client, target.id(), asked, model->version());
    if (!predicted.ok()) return Fail(predicted.status());
    for (const v1::Prediction& p : predicted->predictions()) {
      in.predicted.push_back({p.latency_ms(), p.lower_ms(), p.upper_ms()});
    }
    in.truth_source = absl::StrCat("measurements in ", *compare_with, " of the ", in.scored.size(),
                                   " architectures no device on the server measured");
    in.predictions_source = absl::StrCat("the served model (version ", model->version(), ")");
    in.scored_unseen_by_fleet = true;
  } else {
    // The served model was fit on the device's stored measurements: score each one as
    // predicted by a refit of the whole space without it (core/eval/cross_validation.h's
    // folds; the kept FunctionModelTrainer refits only this device after the first fold).
    std::vector<core::SpaceDeviceData> devices;
    for (const auto& column : in.table.devices) {
      core::SpaceDeviceData& data = devices.emplace_back();
      data.device = column.device;
      data.hardware = column.hardware;
      data.descriptor = column.descriptor;
      for (size_t r = 0; r < in.table.archs.size(); ++r) {
        if (std::isfinite(column.latency_ms[r])) {
          data.samples.push_back({in.table.archs[r], column.latency_ms[r]});
        }
      }
    }
    const std::vector<core::FunctionSample> stored = devices[target_column].samples;
    // CrossValidate keys samples by an int: here the position in `stored`.
    std::vector<core::LatencySample> keyed;
    for (size_t i = 0; i < stored.size(); ++i) {
      keyed.push_back({static_cast<int32_t>(i), stored[i].latency_ms});
    }
    core::FunctionTrainOptions train;
    absl::StatusOr<core::Method> method = core::ParseMethod(model->method());
    if (!method.ok()) return Fail(method.status());
    train.method = *method;
    core::FunctionModelTrainer trainer(space, train);
    core::CrossValidationOptions options;
    options.max_scored_samples = std::numeric_limits<int>::max();
    absl::StatusOr<core::CrossValidation> cv = core::CrossValidate(
        keyed, options,
        [&](absl::Span<const core::LatencySample> training, absl::Span<const int32_t> held_out,
            absl::Span<core::LatencyPrediction> predictions) -> absl::Status {
          devices[target_column].samples.clear();
          for (const core::LatencySample& s : training) {
            devices[target_column].samples.push_back(stored[s.arch_index]);
          }
          absl::StatusOr<core::TrainedFunctionModel> t = trainer.Train(devices);
          if (!t.ok()) return t.status();
          absl::StatusOr<core::FunctionModel> refit = core::FunctionModel::Create(t->params);
          if (!refit.ok()) return refit.status();
          std::vector<core::Architecture> archs;
          for (int32_t i : held_out) archs.push_back(stored[i].arch);
          return refit->Predict(target.id(), archs, predictions);
        });
    if (!cv.ok()) {
      return Fail(absl::Status(cv.status().code(),
                               absl::StrCat("device \"", target.id(), "\" in ", space_name,
                                            " is not cross-validated (", cv.status().message(),
                                            "); give --compare-with FILE to score the served "
                                            "model on architectures no device measured")));
    }
    for (const core::HeldOutPrediction& h : cv->held_out) {
      in.scored.push_back(stored[h.measured.arch_index].arch);
      in.measured_ms.push_back(h.measured.latency_ms);
      in.predicted.push_back(h.predicted);
    }
    in.truth_source = "the device's stored measurements";
    in.predictions_source =
        absl::StrCat("cross-validated refits of ", model->method(), " (", cv->folds,
                     " folds, each measurement held out of the fit that predicts it; "
                     "core/model/function_trainer.h, computed in the client)");
  }
  in.model = *std::move(model);

  absl::StatusOr<std::string> html = client::FunctionAccuracyReportHtml(in);
  if (!html.ok()) return Fail(html.status());
  if (absl::Status s = client::WriteTextFile(out, *html); !s.ok()) return Fail(s);
  std::printf("wrote %s: device %s, space %s, model version %llu, %zu held-out architectures\n",
              out.c_str(), target.id().c_str(), space_name.c_str(),
              static_cast<unsigned long long>(in.model.version()), in.scored.size());
  return 0;
}

int Report(const Command& c, const Globals& g, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"device", "out", "compare-with", "space"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::optional<std::string> device = args->Get("device");
  std::optional<std::string> out = args->Get("out");
  if (!device || !out) return UsageError(c, "--device and --out are required");
  if (!args->positionals().empty()) return UsageError(c, "takes no positional arguments");
  const core::ArchitectureSpace* space = nullptr;  // null: detected below
  if (std::optional<std::string> name = args->Get("space")) {
    space = IsNb201(*name) ? &core::Nb201Space::Get() : core::FindSpace(*name);
    if (space == nullptr)
      return UsageError(c, absl::StrCat("--space: unknown space \"", *name, "\""));
  }
  absl::StatusOr<MaplexClient> client = Connect(g);
  if (!client.ok()) return Fail(client.status());

  client::AccuracyReportInput in;
  absl::StatusOr<v1::Device> d = client->GetDevice(*device);
  if (!d.ok()) return Fail(d.status());
  // Not given: the --compare-with file's space, else the device's only space with
  // measurements, else NB201.
  if (space == nullptr && args->Has("compare-with"))
    space = DetectFileSpace(*args->Get("compare-with"));
  if (space == nullptr) {
    std::vector<std::string> measured;
    for (const auto& [name, count] : d->measurement_count_by_space()) {
      if (count > 0) measured.push_back(name);
    }
    if (measured.size() == 1) space = core::FindSpace(measured[0]);
  }
  if (space != nullptr && space != &core::Nb201Space::Get()) {
    return ReportFunctionSpace(*client, *d, *space, args->Get("compare-with"), *out);
  }
  in.device = *std::move(d);
  absl::StatusOr<std::vector<v1::Device>> fleet = client->ListDevices({});
  if (!fleet.ok()) return Fail(fleet.status());
  for (const v1::Device& f : *fleet) {
    absl::StatusOr<std::vector<v1::MeasuredLatency>> latencies = client->ListMeasurements(f.id());
    if (!latencies.ok()) return Fail(latencies.status());
    if (latencies->empty()) continue;
    core::DeviceData& data = in.fleet.emplace_back();
    data.device = f.id();
    data.hardware = f.hardware_fingerprint();  // as the server's trainer groups hardware
    data.descriptor.spec = core::SpecFromProto(f.spec(), f.config());
    for (const v1::MeasuredLatency& m : *latencies) {
      data.samples.push_back({m.arch_index(), m.latency_ms()});
    }
    in.hardware_names[f.id()] = f.hardware_name();
  }

  std::vector<v1::Architecture> archs;
  if (std::optional<std::string> path = args->Get("compare-with")) {
    absl::StatusOr<absl::flat_hash_map<int32_t, double>> m = MeasuredLatencies(*path, *device);
    if (!m.ok()) return Fail(m.status());
    for (const auto& [arch, ms] : *m) in.truth.push_back({arch, ms});
    in.truth_source = absl::StrCat("measurements in ", *path);
    std::sort(in.truth.begin(), in.truth.end(),
              [](const core::LatencySample& a, const core::LatencySample& b) {
                return a.arch_index < b.arch_index;
              });
    if (in.truth.empty()) {
      return Fail(absl::FailedPreconditionError(
          absl::StrCat("device \"", *device, "\" has no measurements to report on")));
    }
    for (const core::LatencySample& s : in.truth) archs.push_back(client::Nb201Index(s.arch_index));
    absl::StatusOr<v1::PredictResponse> predicted = PredictInChunks(*client, *device, archs, 0);
    if (!predicted.ok()) return Fail(predicted.status());
    for (const v1::Prediction& p : predicted->predictions()) {
      in.predicted.push_back({p.latency_ms(), p.lower_ms(), p.upper_ms()});
    }
    absl::StatusOr<v1::ModelInfo> model = client->GetModel(predicted->model_version());
    if (!model.ok()) return Fail(model.status());
    in.model = *std::move(model);
  } else {
    // The served model answers a stored measurement with itself: score held-out predictions
    // instead, each from a refit of the device without it (what the server reports too).
    absl::StatusOr<v1::ModelInfo> model = client->GetModel(0);
    if (!model.ok()) return Fail(model.status());
    in.model = *std::move(model);
    core::TrainOptions train;
    absl::StatusOr<core::Method> method = core::ParseMethod(in.model.method());
    if (!method.ok()) return Fail(method.status());
    train.method = *method;
    // Every measurement held out once (the server caps them at 200 per retrain; a report
    // is a one-off and its figure 3 draws from all of them).
    core::CrossValidationOptions options;
    options.max_scored_samples = std::numeric_limits<int>::max();
    absl::StatusOr<std::vector<core::DeviceCrossValidation>> cv =
        core::CrossValidateDevices(in.fleet, train, options, {*device});
    if (!cv.ok()) return Fail(cv.status());
    if (cv->empty()) {
      return Fail(absl::FailedPreconditionError(
          absl::StrCat("device \"", *device, "\" has no measurements to report on")));
    }
    if (!cv->front().cv.has_value()) {
      return Fail(absl::FailedPreconditionError(absl::StrCat(
          "device \"", *device, "\" is not cross-validated (", cv->front().not_scored,
          "); give --compare-with FILE to score the served model against other measurements")));
    }
    for (const core::HeldOutPrediction& h : cv->front().cv->held_out) {
      in.truth.push_back(h.measured);
      in.predicted.push_back(h.predicted);
    }
    in.truth_source = "the device's stored measurements";
    in.predictions_source = absl::StrCat(
        "cross-validated refits of ", in.model.method(), " (", cv->front().cv->folds,
        " folds, each measurement predicted without it; computed in the client from specs "
        "and latencies)");
  }

  absl::StatusOr<std::string> html = client::AccuracyReportHtml(in);
  if (!html.ok()) return Fail(html.status());
  if (absl::Status s = client::WriteTextFile(*out, *html); !s.ok()) return Fail(s);
  std::printf("wrote %s: device %s, model version %llu, %zu measured cells\n", out->c_str(),
              device->c_str(), static_cast<unsigned long long>(in.model.version()),
              in.truth.size());
  return 0;
}

void PrintOverview() {
  std::printf(
      "maplex — latency predictions for neural architectures on hardware devices\n\n"
      "Usage: maplex [--server ADDR] [--timeout SECONDS] [--token T | --token_file F]\n"
      "              [--ca CA.pem [--client_cert C.pem --client_key K.pem]] COMMAND [options]\n"
      "  --server       server address (env MAPLEX_SERVER; default 127.0.0.1:50051)\n"
      "  --timeout      deadline of each call in seconds (default 30)\n"
      "  --token        bearer token (env MAPLEX_TOKEN); --token_file reads it from a file\n"
      "  --ca           CA bundle (PEM) that signed the server's certificate: use TLS\n"
      "  --client_cert, --client_key  this client's certificate, for servers requiring one\n"
      "\nCommands:\n");
  for (const Command& c : kCommands) std::printf("  %-16s %s\n", c.name, c.summary);
  std::printf("\nmaplex COMMAND --help shows a command's options.\n");
}

// ---------- backup ----------

int Backup(const Command& c, const Globals& /*g*/, const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = Args::Parse(argv, {"db", "out"}, {});
  if (!args.ok()) return UsageError(c, args.status().message());
  std::optional<std::string> db = args->Get("db");
  std::optional<std::string> out = args->Get("out");
  if (!db || !out || !args->positionals().empty()) return UsageError(c, "needs --db and --out");
  absl::StatusOr<int64_t> bytes = BackupDatabase(*db, *out, kMaplexApplicationId);
  if (!bytes.ok()) return Fail(bytes.status());
  std::printf("backed up %s to %s (%lld bytes, integrity_check ok)\n", db->c_str(), out->c_str(),
              static_cast<long long>(*bytes));
  return 0;
}

}  // namespace

int RunMaplexCli(const std::vector<std::string>& argv) {
  Globals g;
  if (const char* env = std::getenv("MAPLEX_SERVER"); env != nullptr && *env) {
    g.options.address = env;
  }
  const std::set<std::string> valued = {"server", "timeout",     "token",     "token_file",
                                        "ca",     "client_cert", "client_key"};
  std::string token, token_file;
  size_t i = 0;
  while (i < argv.size() && absl::StartsWith(argv[i], "--")) {
    std::string a = argv[i];
    std::string value;
    std::string name = a.substr(2);
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (valued.count(name)) {
      if (i + 1 >= argv.size()) {
        std::fprintf(stderr, "maplex: --%s needs a value\n", name.c_str());
        return 2;
      }
      value = argv[++i];
    }
    if (name == "help") {
      PrintOverview();
      return 0;
    } else if (name == "server") {
      g.options.address = value;
    } else if (name == "timeout") {
      double seconds = 0;
      if (!absl::SimpleAtod(value, &seconds) || seconds <= 0) {
        std::fprintf(stderr, "maplex: --timeout: \"%s\" is not a positive number of seconds\n",
                     value.c_str());
        return 2;
      }
      g.options.timeout = absl::Seconds(seconds);
    } else if (name == "token") {
      token = value;
    } else if (name == "token_file") {
      token_file = value;
    } else if (name == "ca") {
      g.options.security.ca_file = value;
    } else if (name == "client_cert") {
      g.options.security.client_cert_file = value;
    } else if (name == "client_key") {
      g.options.security.client_key_file = value;
    } else {
      std::fprintf(stderr, "maplex: unknown option %s (see maplex --help)\n", a.c_str());
      return 2;
    }
    ++i;
  }
  absl::StatusOr<std::string> resolved = ResolveToken(token, token_file);
  if (!resolved.ok()) {
    std::fprintf(stderr, "maplex: %s\n", std::string(resolved.status().message()).c_str());
    return 2;
  }
  g.options.security.token = *resolved;
  if (i >= argv.size() || argv[i] == "help") {
    PrintOverview();
    return i >= argv.size() ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    std::vector<std::string> words = absl::StrSplit(c.name, ' ');
    if (i + words.size() > argv.size()) continue;
    if (!std::equal(words.begin(), words.end(), argv.begin() + i)) continue;
    std::vector<std::string> rest(argv.begin() + i + words.size(), argv.end());
    if (std::find(rest.begin(), rest.end(), "--help") != rest.end()) {
      PrintCommandHelp(c);
      return 0;
    }
    return c.run(c, g, rest);
  }
  std::fprintf(stderr, "maplex: unknown command \"%s\" (see maplex --help)\n", argv[i].c_str());
  return 2;
}

}  // namespace maplex::cli
