#include "core/model/latency_model.h"

#include <atomic>
#include <cmath>
#include <thread>

#include "core/arch/nb201_space.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/synthetic_devices.h"

namespace maplex::core {
namespace {

using ::testing::HasSubstr;
using testing::ReferenceShapes;
using testing::SyntheticDevice;
using testing::SyntheticLogLatency;

// Four references covering the space and a sparse target with 6 samples.
std::vector<DeviceData> Devices() {
  std::vector<DeviceData> devices;
  for (const auto& s : ReferenceShapes()) devices.push_back(SyntheticDevice(s));
  const testing::DeviceShape target_shape{
      "target", "target", 1.5, 0.6, 0.08, 0.075, DeviceCategory::kDesktopCpu, 12};
  DeviceData target = SyntheticDevice(target_shape, 2601);
  devices.push_back(target);
  return devices;
}

TrainOptions Options(Method method) {
  TrainOptions o;
  o.method = method;
  o.seed = 7;
  o.reference_min_coverage = 0.4;
  return o;
}

std::vector<int32_t> AllArchs() {
  std::vector<int32_t> a(kNb201CellCount);
  for (int32_t i = 0; i < kNb201CellCount; ++i) a[i] = i;
  return a;
}

class LatencyModelTest : public ::testing::TestWithParam<Method> {};

TEST_P(LatencyModelTest, SnapshotRoundTripPredictsIdentically) {
  absl::StatusOr<std::unique_ptr<LatencyModel>> model =
      TrainLatencyModel(Devices(), Options(GetParam()));
  ASSERT_TRUE(model.ok()) << model.status();
  const maplex::v1::ModelSnapshot snapshot = (*model)->ToProto();
  EXPECT_EQ(snapshot.format_version(), 1u);
  EXPECT_EQ(snapshot.method(), MethodName(GetParam()));
  // Through bytes, as the server stores it.
  maplex::v1::ModelSnapshot parsed;
  ASSERT_TRUE(parsed.ParseFromString(snapshot.SerializeAsString()));
  absl::StatusOr<std::unique_ptr<LatencyModel>> loaded = LoadLatencyModel(parsed);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->method(), GetParam());
  ASSERT_EQ((*loaded)->devices(), (*model)->devices());
  const std::vector<int32_t> archs = AllArchs();
  for (const std::string& device : (*model)->devices()) {
    std::vector<LatencyPrediction> a(archs.size()), b(archs.size());
    ASSERT_TRUE((*model)->Predict(device, archs, absl::MakeSpan(a)).ok());
    ASSERT_TRUE((*loaded)->Predict(device, archs, absl::MakeSpan(b)).ok());
    for (size_t i = 0; i < archs.size(); ++i) {
      ASSERT_EQ(a[i].latency_ms, b[i].latency_ms) << device << " " << i;
      ASSERT_EQ(a[i].lower_ms, b[i].lower_ms);
      ASSERT_EQ(a[i].upper_ms, b[i].upper_ms);
      ASSERT_LE(a[i].lower_ms, a[i].latency_ms);
      ASSERT_LE(a[i].latency_ms, a[i].upper_ms);
    }
  }
}

TEST_P(LatencyModelTest, PredictErrorContractWritesNothing) {
  auto model = TrainLatencyModel(Devices(), Options(GetParam()));
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<LatencyPrediction> out(3, LatencyPrediction{-1, -1, -1});
  const std::vector<int32_t> good = {0, 1, 2};
  absl::Status s = (*model)->Predict("no_such_device", good, absl::MakeSpan(out));
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no_such_device"));
  const std::vector<int32_t> bad = {0, 15625, 2};
  s = (*model)->Predict("target", bad, absl::MakeSpan(out));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("15625"));
  for (const LatencyPrediction& p : out) EXPECT_EQ(p.latency_ms, -1);
  std::vector<LatencyPrediction> small(2);
  EXPECT_EQ((*model)->Predict("target", good, absl::MakeSpan(small)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*model)->descriptor_use("nope").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<DescriptorUse> use = (*model)->descriptor_use("target");
  ASSERT_TRUE(use.ok());
  EXPECT_TRUE(use->measured_latencies);
}

TEST_P(LatencyModelTest, TargetPredictionsTrackTheTruth) {
  auto model = TrainLatencyModel(Devices(), Options(GetParam()));
  ASSERT_TRUE(model.ok()) << model.status();
  const testing::DeviceShape truth{"target", "target", 1.5, 0.6, 0.08, 0.075};
  const std::vector<int32_t> archs = AllArchs();
  std::vector<LatencyPrediction> out(archs.size());
  ASSERT_TRUE((*model)->Predict("target", archs, absl::MakeSpan(out)).ok());
  double abs_log_error = 0;
  for (int32_t a : archs)
    abs_log_error += std::abs(std::log(out[a].latency_ms) - SyntheticLogLatency(truth, a));
  EXPECT_LT(abs_log_error / archs.size(), 0.08);
}

INSTANTIATE_TEST_SUITE_P(AllMethods, LatencyModelTest,
                         ::testing::Values(Method::kBaseline, Method::kMaple,
                                           Method::kMapleVirtualExamples, Method::kMapleWeights,
                                           Method::kMapleX),
                         [](const auto& info) {
                           std::string name = MethodName(info.param);
                           for (char& c : name) c = std::isalnum(c) ? c : '_';
                           return name;
                         });

TEST(LatencyModelContractTest, ConcurrentReadsAgree) {
  auto model = TrainLatencyModel(Devices(), Options(Method::kMapleX));
  ASSERT_TRUE(model.ok());
  const std::vector<int32_t> archs = AllArchs();
  std::vector<LatencyPrediction> expected(archs.size());
  ASSERT_TRUE((*model)->Predict("target", archs, absl::MakeSpan(expected)).ok());
  std::vector<std::thread> readers;
  std::atomic<int> mismatches{0};
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      std::vector<LatencyPrediction> out(archs.size());
      for (int i = 0; i < 5; ++i) {
        if (!(*model)->Predict("target", archs, absl::MakeSpan(out)).ok()) ++mismatches;
        for (size_t a = 0; a < archs.size(); a += 101) {
          if (out[a].latency_ms != expected[a].latency_ms) ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(LatencyModelContractTest, ServesMeasurementsWhereTheDeviceHasThem) {
  const std::vector<DeviceData> devices = Devices();
  auto model = TrainLatencyModel(devices, Options(Method::kMapleX));
  ASSERT_TRUE(model.ok());
  const LatencySample s = devices.back().samples[1];
  LatencyPrediction p;
  ASSERT_TRUE((*model)->Predict("target", {&s.arch_index, 1}, {&p, 1}).ok());
  EXPECT_DOUBLE_EQ(p.latency_ms, s.latency_ms);
}

// Two targets on one machine, both paying a cost per primitive the references lack: the
// sparse one (six samples, all with six primitives) borrows it from the better-measured one.
TEST(LatencyModelContractTest, TargetsOnTheSameHardwareShareTheCostPerPrimitive) {
  const testing::DeviceShape shape{"x", "x", 2.2, 0.75, 0.12, 0.07, DeviceCategory::kDesktopCpu, 8};
  const Nb201Space& space = Nb201Space::Get();
  auto truth = [&](int32_t a) {
    return SyntheticLogLatency(shape, a) + 0.15 * space.PrimitiveCount(a);
  };
  auto error = [&](const std::string& hardware_of_sibling) {
    std::vector<DeviceData> devices;
    for (const auto& s : ReferenceShapes()) devices.push_back(SyntheticDevice(s));
    DeviceData& sibling = devices.emplace_back();
    sibling.device = "sibling";
    sibling.hardware = hardware_of_sibling;
    for (int32_t a = 3; a < kNb201CellCount; a += 75)
      sibling.samples.push_back({a, std::exp(truth(a))});
    DeviceData& sparse = devices.emplace_back();
    sparse.device = "sparse";
    sparse.hardware = "machine";
    sparse.descriptor.spec.category = DeviceCategory::kDesktopCpu;
    for (int32_t a = 11; a < kNb201CellCount && sparse.samples.size() < 6; a += 997) {
      if (space.PrimitiveCount(a) == 6) sparse.samples.push_back({a, std::exp(truth(a))});
    }
    auto model = TrainLatencyModel(devices, Options(Method::kMapleX));
    EXPECT_TRUE(model.ok());
    const std::vector<int32_t> archs = AllArchs();
    std::vector<LatencyPrediction> out(archs.size());
    EXPECT_TRUE((*model)->Predict("sparse", archs, absl::MakeSpan(out)).ok());
    double sum = 0;
    for (int32_t a : archs) sum += std::abs(std::log(out[a].latency_ms) - truth(a));
    return sum / static_cast<double>(archs.size());
  };
  EXPECT_LT(error("machine"), 0.7 * error("elsewhere"));
}

TEST(LatencyModelContractTest, BaselineReproducesReferenceDevices) {
  auto model = TrainLatencyModel(Devices(), Options(Method::kBaseline));
  ASSERT_TRUE(model.ok());
  const std::vector<int32_t> archs = {0, 2, 5000, 15624};
  std::vector<LatencyPrediction> out(archs.size());
  ASSERT_TRUE((*model)->Predict("cpu_b", archs, absl::MakeSpan(out)).ok());
  for (size_t i = 0; i < archs.size(); ++i) {
    EXPECT_NEAR(std::log(out[i].latency_ms), SyntheticLogLatency(ReferenceShapes()[3], archs[i]),
                1e-9);
  }
}

TEST(LatencyModelContractTest, RejectsBadTrainingInputAndSnapshots) {
  std::vector<DeviceData> devices = Devices();
  TrainOptions strict = Options(Method::kBaseline);
  strict.reference_min_coverage = 1.01;  // nobody qualifies as a reference
  EXPECT_EQ(TrainLatencyModel(devices, strict).status().code(), absl::StatusCode::kInvalidArgument);
  devices.back().samples.push_back({20000, 1.0});
  auto bad = TrainLatencyModel(devices, Options(Method::kBaseline));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("20000"));
  devices.back().samples.back() = {3, -2.0};
  EXPECT_EQ(TrainLatencyModel(devices, Options(Method::kBaseline)).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto model = TrainLatencyModel(Devices(), Options(Method::kBaseline));
  ASSERT_TRUE(model.ok());
  maplex::v1::ModelSnapshot s = (*model)->ToProto();
  s.set_format_version(99);
  EXPECT_THAT(std::string(LoadLatencyModel(s).status().message()), HasSubstr("format_version 99"));
  s = (*model)->ToProto();
  s.mutable_devices(0)->mutable_log_latency()->RemoveLast();
  EXPECT_EQ(LoadLatencyModel(s).status().code(), absl::StatusCode::kInvalidArgument);
  s = (*model)->ToProto();
  s.set_method("magic");
  EXPECT_EQ(LoadLatencyModel(s).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LatencyModelContractTest, MethodNamesRoundTrip) {
  for (Method m : {Method::kBaseline, Method::kMaple, Method::kMapleVirtualExamples,
                   Method::kMapleWeights, Method::kMapleX}) {
    EXPECT_EQ(*ParseMethod(MethodName(m)), m);
  }
  EXPECT_FALSE(ParseMethod("maple-x").ok());
}

}  // namespace
}  // namespace maplex::core
