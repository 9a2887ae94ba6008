#include "export/exposition.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace kpistream {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// What /metrics served before export/exposition.cc: the families converted
// to prometheus-cpp's and written by its TextSerializer.
std::string Reference(const MetricsSnapshot& snapshot) {
  std::vector<prometheus::MetricFamily> out;
  for (const FamilySnapshot& family : snapshot) {
    prometheus::MetricFamily f;
    f.name = family.name;
    f.help = family.help;
    f.type =
        family.type == MetricType::kCounter ? prometheus::MetricType::Counter
        : family.type == MetricType::kGauge ? prometheus::MetricType::Gauge
                                            : prometheus::MetricType::Histogram;
    for (const MetricSample& sample : family.samples) {
      prometheus::ClientMetric m;
      for (size_t i = 0;
           i < family.label_names.size() && i < sample.label_values.size();
           ++i) {
        m.label.push_back({family.label_names[i], sample.label_values[i]});
      }
      switch (family.type) {
        case MetricType::kCounter:
          m.counter.value = sample.value;
          break;
        case MetricType::kGauge:
          m.gauge.value = sample.value;
          break;
        case MetricType::kHistogram: {
          m.histogram.sample_count = sample.count;
          m.histogram.sample_sum = sample.value;
          uint64_t cumulative = 0;
          for (size_t i = 0; i < family.bucket_bounds.size(); ++i) {
            if (i < sample.bucket_counts.size()) {
              cumulative += sample.bucket_counts[i];
            }
            m.histogram.bucket.push_back({cumulative, family.bucket_bounds[i]});
          }
          m.histogram.bucket.push_back({sample.count, kInf});
          break;
        }
      }
      f.metric.push_back(std::move(m));
    }
    out.push_back(std::move(f));
  }
  // Its one known difference: "Nan" (value lines end in the value; no
  // label value or HELP text here holds an "N").
  return absl::StrReplaceAll(prometheus::TextSerializer().Serialize(out),
                             {{" Nan\n", " NaN\n"}});
}

std::string Render(const MetricsSnapshot& snapshot) {
  std::string page;
  for (const FamilySnapshot& family : snapshot) {
    AppendExposition(family, &page);
  }
  return page;
}

std::string Value(double v) {
  std::string out;
  AppendExpositionValue(v, &out);
  return out;
}

TEST(ExpositionTest, ValuesAsPrintfWritesThemWithSixteenDigits) {
  EXPECT_EQ(Value(0), "0");
  EXPECT_EQ(Value(-0.0), "-0");
  EXPECT_EQ(Value(3), "3");
  EXPECT_EQ(Value(-42), "-42");
  EXPECT_EQ(Value(0.1), "0.1");
  EXPECT_EQ(Value(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(Value(9999999999999998.0), "9999999999999998");
  EXPECT_EQ(Value(1e16), "1e+16");
  EXPECT_EQ(Value(1e20), "1e+20");
  EXPECT_EQ(Value(123456789012345678.0), "1.234567890123457e+17");
  EXPECT_EQ(Value(1e-7), "1e-07");
  EXPECT_EQ(Value(12345678.9), "12345678.9");
  EXPECT_EQ(Value(std::nan("")), "NaN");
  EXPECT_EQ(Value(kInf), "+Inf");
  EXPECT_EQ(Value(-kInf), "-Inf");
}

TEST(ExpositionTest, LabelValuesAndHelpAreEscapedAsTheFormatAsks) {
  FamilySnapshot f;
  f.name = "x_total";
  f.help = "a \\ and a\nnewline";
  f.type = MetricType::kCounter;
  f.label_names = {"a", "b"};
  f.samples.push_back({{"q\"b\\c", "line\nbreak"}, 2});
  EXPECT_EQ(Render({f}),
            "# HELP x_total a \\\\ and a\\nnewline\n"
            "# TYPE x_total counter\n"
            "x_total{a=\"q\\\"b\\\\c\",b=\"line\\nbreak\"} 2\n");
}

TEST(ExpositionTest, HistogramBucketsAreCumulativeAndEndAtTheCount) {
  FamilySnapshot f;
  f.name = "d_seconds";
  f.type = MetricType::kHistogram;
  f.label_names = {"site"};
  f.bucket_bounds = {0.5, 10};
  MetricSample s;
  s.label_values = {"shop"};
  s.value = 12.5;
  s.bucket_counts = {1};  // fewer counts than bounds: the rest are 0
  s.count = 4;
  f.samples.push_back(s);
  EXPECT_EQ(Render({f}),
            "# TYPE d_seconds histogram\n"
            "d_seconds_count{site=\"shop\"} 4\n"
            "d_seconds_sum{site=\"shop\"} 12.5\n"
            "d_seconds_bucket{site=\"shop\",le=\"0.5\"} 1\n"
            "d_seconds_bucket{site=\"shop\",le=\"10\"} 1\n"
            "d_seconds_bucket{site=\"shop\",le=\"+Inf\"} 4\n");
}

// Random families, labels and values: the same bytes as TextSerializer
// (HELP text without backslash or newline, which it did not escape).
TEST(ExpositionTest, SameBytesAsPrometheusCppsTextSerializer) {
  std::mt19937_64 rng(20261201);
  const std::vector<double> special = {0.0,
                                       -0.0,
                                       1.0,
                                       -1.0,
                                       0.1,
                                       0.5,
                                       1e-300,
                                       5e-324,
                                       1e300,
                                       std::numeric_limits<double>::max(),
                                       kInf,
                                       -kInf,
                                       std::nan(""),
                                       9007199254740992.0,
                                       9007199254740993.0,
                                       9999999999999998.0,
                                       1e16,
                                       -1e16,
                                       1e15 + 0.5,
                                       123456789012345678.0,
                                       18446744073709551616.0,
                                       static_cast<double>(INT64_MAX),
                                       -static_cast<double>(INT64_MAX)};
  const auto value = [&]() -> double {
    switch (rng() % 4) {
      case 0:
        return special[rng() % special.size()];
      case 1:
        return static_cast<double>(static_cast<int64_t>(rng() % 100000));
      case 2:
        return static_cast<double>(rng() % 10000000) / 1000.0;
      default: {
        // Any bit pattern but NaNs' (all written "NaN" alike).
        uint64_t bits = rng();
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        return std::isnan(d) ? 0.0 : d;
      }
    }
  };
  const std::string alphabet = "abc XYZ019_-./:\"\\\n{}=,#\xC3\xA9\xE2\x82\xAC";
  const auto text = [&](size_t max) {
    std::string s;
    const size_t n = rng() % (max + 1);
    for (size_t i = 0; i < n; ++i) {
      s.push_back(alphabet[rng() % alphabet.size()]);
    }
    return s;
  };
  for (int round = 0; round < 200; ++round) {
    MetricsSnapshot snapshot;
    const int families = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < families; ++k) {
      FamilySnapshot f;
      f.name = "fam_" + std::to_string(round) + "_" + std::to_string(k);
      if (rng() % 3 != 0) f.help = "help text: " + std::to_string(k);
      f.type = static_cast<MetricType>(rng() % 3);
      const size_t labels = rng() % 4;
      for (size_t i = 0; i < labels; ++i) {
        f.label_names.push_back("l" + std::to_string(i));
      }
      if (f.type == MetricType::kHistogram) {
        double bound = 0.001;
        for (size_t i = rng() % 6; i > 0; --i) {
          bound *= 1 + static_cast<double>(rng() % 1000) / 7.0;
          f.bucket_bounds.push_back(bound);
        }
      }
      for (size_t n = rng() % 5; n > 0; --n) {
        MetricSample s;
        // Sometimes fewer values than names, as the renderers allow.
        const size_t values = rng() % 5 == 0 ? labels / 2 : labels;
        for (size_t i = 0; i < values; ++i) s.label_values.push_back(text(12));
        s.value = value();
        for (size_t i = rng() % (f.bucket_bounds.size() + 2); i > 0; --i) {
          s.bucket_counts.push_back(rng() % 1000);
        }
        s.count = rng() % 2 ? rng() : rng() % 5000;
        f.samples.push_back(std::move(s));
      }
      snapshot.push_back(std::move(f));
    }
    ASSERT_EQ(Render(snapshot), Reference(snapshot)) << "round " << round;
  }
}

}  // namespace
}  // namespace kpistream
