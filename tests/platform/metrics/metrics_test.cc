#include "platform/metrics/metrics.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace maplex::metrics {
namespace {

using ::testing::HasSubstr;

TEST(HistogramTest, CountsIntoCumulativeBucketsByUpperBound) {
  Histogram h({0.1, 1, 10});
  for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 50.0, 500.0}) h.Observe(v);
  Histogram::Snapshot s = h.Read();
  // le is inclusive: 0.1 falls in the 0.1 bucket, 1.0 in the 1 bucket.
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 5, 7}));
  EXPECT_EQ(s.count, 7u);
  EXPECT_DOUBLE_EQ(s.sum, 0.05 + 0.1 + 0.5 + 1.0 + 5.0 + 50.0 + 500.0);
}

TEST(HistogramTest, ConcurrentObservationsAreAllCounted) {
  Histogram h({1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.Observe(i % 2 == 0 ? 0.5 : 2.0);
    });
  }
  for (auto& t : threads) t.join();
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{20000, 40000}));
  EXPECT_DOUBLE_EQ(s.sum, 20000 * 0.5 + 20000 * 2.0);
}

TEST(ExpositionTest, WritesTheTextFormat) {
  MetricsRegistry registry;
  registry.AddCounter("requests_total", "Requests seen.", {"method", "code"})
      .WithLabels({"/a.B/C", "OK"})
      .Increment(3);
  registry.AddGauge("temperature", "A gauge.", {}).WithLabels({}).Set(-1.5);
  HistogramFamily& h =
      registry.AddHistogram("duration_seconds", "Durations.", {"method"}, {0.5, 1});
  h.WithLabels({"m"}).Observe(0.25);
  h.WithLabels({"m"}).Observe(2);
  registry.AddCallbackGauge("age_seconds", "Computed at scrape.", [] { return 42.0; });
  registry.AddCallbackGauge("absent", "No sample while unknown.",
                            []() -> std::optional<double> { return std::nullopt; });
  EXPECT_EQ(registry.Expose(),
            "# HELP requests_total Requests seen.\n"
            "# TYPE requests_total counter\n"
            "requests_total{method=\"/a.B/C\",code=\"OK\"} 3\n"
            "# HELP temperature A gauge.\n"
            "# TYPE temperature gauge\n"
            "temperature -1.5\n"
            "# HELP duration_seconds Durations.\n"
            "# TYPE duration_seconds histogram\n"
            "duration_seconds_bucket{method=\"m\",le=\"0.5\"} 1\n"
            "duration_seconds_bucket{method=\"m\",le=\"1\"} 1\n"
            "duration_seconds_bucket{method=\"m\",le=\"+Inf\"} 2\n"
            "duration_seconds_sum{method=\"m\"} 2.25\n"
            "duration_seconds_count{method=\"m\"} 2\n"
            "# HELP age_seconds Computed at scrape.\n"
            "# TYPE age_seconds gauge\n"
            "age_seconds 42\n"
            "# HELP absent No sample while unknown.\n"
            "# TYPE absent gauge\n");
}

TEST(ExpositionTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry.AddGauge("g", "line one\nback\\slash", {"device"})
      .WithLabels({"quote\" back\\ nl\n"})
      .Set(1);
  EXPECT_THAT(registry.Expose(), HasSubstr("# HELP g line one\\nback\\\\slash\n"));
  EXPECT_THAT(registry.Expose(), HasSubstr("g{device=\"quote\\\" back\\\\ nl\\n\"} 1\n"));
}

TEST(ExpositionTest, ChildrenAreListedInLabelOrderAndCanBeRetired) {
  MetricsRegistry registry;
  GaugeFamily& g = registry.AddGauge("samples", "Per device.", {"device"});
  g.WithLabels({"b"}).Set(2);
  g.WithLabels({"a"}).Set(1);
  g.WithLabels({"c"}).Set(3);
  g.RetainOnly({{"a"}, {"c"}});
  EXPECT_EQ(registry.Expose(),
            "# HELP samples Per device.\n# TYPE samples gauge\n"
            "samples{device=\"a\"} 1\nsamples{device=\"c\"} 3\n");
}

TEST(MetricsRegistryDeathTest, RefusesInvalidAndRepeatedNames) {
  MetricsRegistry registry;
  EXPECT_DEATH(registry.AddGauge("9lives", "Starts with a digit.", {}), "invalid or added twice");
  registry.AddGauge("once", "Added once.", {});
  EXPECT_DEATH(registry.AddCounter("once", "Again.", {}), "invalid or added twice");
}

TEST(FormatSampleValueTest, ShortestRoundTripAndSpecialValues) {
  EXPECT_EQ(FormatSampleValue(0.1), "0.1");
  EXPECT_EQ(FormatSampleValue(1e-7), "1e-07");
  EXPECT_EQ(FormatSampleValue(123456789), "123456789");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
}

}  // namespace
}  // namespace maplex::metrics
