// The KPI catalog (aggregate/kpi_catalog.h): its rows are consistent with
// the metric families they are made of, and aggregate/KPIS.md documents
// every row as the catalog defines it.
#include "aggregate/kpi_catalog.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "aggregate/metric_families.h"
#include "gtest/gtest.h"

namespace kpistream {
namespace {

bool Counted(const MetricFamilyDef* family) {
  const auto counted = CountedFamilies();
  return std::find(counted.begin(), counted.end(), family) != counted.end();
}

bool HasLabels(const MetricFamilyDef* family, absl::string_view labels) {
  for (const absl::string_view label : absl::StrSplit(labels, ", ")) {
    if (std::find(family->labels.begin(), family->labels.end(), label) ==
        family->labels.end()) {
      return false;
    }
  }
  return true;
}

void ExpectSeriesOfACountedFamily(const KpiSeries& series) {
  ASSERT_NE(series.family, nullptr);
  EXPECT_TRUE(Counted(series.family)) << series.family->name;
  // A counter itself, or a histogram's _sum / _count.
  if (series.family->type == MetricType::kHistogram) {
    EXPECT_TRUE(series.suffix == "_sum" || series.suffix == "_count")
        << series.family->name;
  } else {
    EXPECT_EQ(series.family->type, MetricType::kCounter);
    EXPECT_TRUE(series.suffix.empty()) << series.family->name;
  }
  EXPECT_EQ(FamilyOfSeries(series.name()), series.family);
}

TEST(KpiCatalogTest, RowsAreMadeOfCountedFamilies) {
  std::set<absl::string_view> names;
  std::set<absl::string_view> records;
  ASSERT_FALSE(KpiCatalog().empty());
  for (const KpiDef& kpi : KpiCatalog()) {
    SCOPED_TRACE(std::string(kpi.name));
    EXPECT_TRUE(names.insert(kpi.name).second) << "listed twice";
    EXPECT_EQ(FindKpi(kpi.name), &kpi);
    EXPECT_EQ(&KpiNamed(kpi.name), &kpi);
    EXPECT_FALSE(kpi.help.empty());
    EXPECT_FALSE(kpi.unit.empty());
    ASSERT_NE(kpi.session_numerator, nullptr);
    ExpectSeriesOfACountedFamily(kpi.numerator);
    EXPECT_FALSE(kpi.filter_labels().empty());
    EXPECT_EQ(kpi.filter_labels()[0], "site");
    if (kpi.cumulative()) {
      // Counts and sums: one counter, no ratio to record.
      EXPECT_EQ(kpi.denominator.family, nullptr);
      EXPECT_FALSE(kpi.per_session);
      EXPECT_EQ(kpi.session_denominator, nullptr);
      EXPECT_TRUE(kpi.record.empty());
      EXPECT_TRUE(kpi.panel_title.empty());
      continue;
    }
    ExpectSeriesOfACountedFamily(kpi.denominator);
    // The engine divides by sessions, by its own denominator or by ad cost.
    EXPECT_EQ(int{kpi.per_session} + int{kpi.session_denominator != nullptr} +
                  int{kpi.ad_cost_denominator()},
              1);
    if (kpi.kind == KpiKind::kRate) {
      EXPECT_TRUE(kpi.per_session);
      EXPECT_TRUE(kpi.session_denominator_family());
      EXPECT_EQ(kpi.unit, "percentunit");
    }
    // Its recording rules keep labels both series have (or the
    // denominator's, divided "on" them).
    ASSERT_FALSE(kpi.record.empty());
    EXPECT_TRUE(absl::StartsWith(kpi.record, "web_"));
    EXPECT_TRUE(records.insert(kpi.record).second) << kpi.record;
    EXPECT_TRUE(absl::StartsWith(kpi.record_by, "site"));
    EXPECT_TRUE(HasLabels(kpi.numerator.family, kpi.record_by));
    EXPECT_TRUE(
        HasLabels(kpi.denominator.family, kpi.record_denominator_by.empty()
                                              ? kpi.record_by
                                              : kpi.record_denominator_by));
  }
  EXPECT_EQ(FindKpi("happiness"), nullptr);
}

TEST(KpiCatalogTest, DefaultDirectionsAndMoneyRatios) {
  for (const KpiDef& kpi : KpiCatalog()) {
    SCOPED_TRACE(std::string(kpi.name));
    // Bounces are to be kept low; everything else high.
    EXPECT_EQ(kpi.direction == Direction::kAtMost,
              kpi.name == "bounce_rate" || kpi.name == "single_page_rate");
    EXPECT_EQ(kpi.per_currency(), kpi.name == "average_order_value" ||
                                      kpi.name == "roas" ||
                                      kpi.name == "revenue");
  }
}

// A session's values under a selection of goal and currency.
TEST(KpiCatalogTest, SessionValues) {
  ClosedSession s;
  s.start = absl::FromUnixSeconds(1000);
  s.end = s.start + absl::Seconds(95);
  s.pageviews = 4;
  s.engaged = true;
  s.conversions = {{"lead", 1}, {"purchase", 2}};
  s.revenue = {{"EUR", 30'000'000}, {"USD", 5'000'000}};
  s.orders = 3;
  s.orders_by_currency = {{"EUR", 2}, {"USD", 1}};
  const std::string lead = "lead", signup = "signup", usd = "USD";
  const KpiSelection any;
  auto value = [&](absl::string_view kpi, const KpiSelection& k) {
    return KpiNamed(kpi).session_numerator(s, k);
  };
  EXPECT_EQ(value("sessions", any), 1);
  EXPECT_EQ(value("engagement_rate", any), 1);
  EXPECT_EQ(value("bounce_rate", any), 0);
  EXPECT_EQ(value("pageviews_per_session", any), 4);
  EXPECT_EQ(value("avg_session_duration", any), 95);
  EXPECT_EQ(value("conversions", any), 3);
  EXPECT_EQ(value("conversions", {&lead, nullptr}), 1);
  EXPECT_EQ(value("conversion_rate", {&lead, nullptr}), 1);
  EXPECT_EQ(value("conversion_rate", {&signup, nullptr}), 0);
  EXPECT_EQ(value("revenue", any), 35);
  EXPECT_EQ(value("revenue", {nullptr, &usd}), 5);
  EXPECT_EQ(value("orders", {nullptr, &usd}), 1);
  EXPECT_EQ(KpiNamed("average_order_value").session_denominator(s, any), 3);
}

std::string ReadKpisMd() {
  const char* dir = std::getenv("KPISTREAM_SOURCE_DIR");
  if (dir == nullptr) dir = KPISTREAM_DEFAULT_SOURCE_DIR;
  std::ifstream in(std::string(dir) + "/aggregate/KPIS.md");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A row of KPIS.md's table of target KPIs.
struct DocRow {
  std::vector<std::string> kpis;
  std::set<std::string> filter_labels;
  bool min_sessions = false;
};

// The rows of the table under "## Targets": | `kpi`, `kpi` | what |
// labels | yes/no |.
std::vector<DocRow> TargetTable(const std::string& md) {
  std::vector<DocRow> rows;
  const size_t section = md.find("\n## Targets");
  if (section == std::string::npos) return rows;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(md).substr(section), '\n')) {
    if (!absl::StartsWith(line, "| `")) continue;
    const std::vector<absl::string_view> cells = absl::StrSplit(line, " | ");
    if (cells.size() != 4) continue;
    DocRow row;
    for (absl::string_view name :
         absl::StrSplit(absl::StripPrefix(cells[0], "| "), ", ")) {
      row.kpis.emplace_back(
          absl::StripSuffix(absl::StripPrefix(name, "`"), "`"));
    }
    for (absl::string_view label : absl::StrSplit(cells[2], ", ")) {
      row.filter_labels.emplace(label);
    }
    row.min_sessions = absl::StartsWith(cells[3], "yes");
    rows.push_back(std::move(row));
  }
  return rows;
}

// KPIS.md's table of target KPIs lists every KPI of the catalog once, with
// the filter labels and the min_sessions rule the catalog gives it, and
// nothing else; its KPI reference names each KPI's counters.
TEST(KpiCatalogTest, KpisMdDocumentsTheCatalog) {
  const std::string md = ReadKpisMd();
  ASSERT_FALSE(md.empty()) << "aggregate/KPIS.md not found";
  std::map<std::string, int> listed;
  for (const DocRow& row : TargetTable(md)) {
    for (const std::string& name : row.kpis) {
      SCOPED_TRACE(name);
      ++listed[name];
      const KpiDef* kpi = FindKpi(name);
      ASSERT_NE(kpi, nullptr) << "KPIS.md lists a KPI the catalog lacks";
      const std::set<std::string> labels(kpi->filter_labels().begin(),
                                         kpi->filter_labels().end());
      EXPECT_EQ(row.filter_labels, labels);
      EXPECT_EQ(row.min_sessions, kpi->per_session);
    }
  }
  for (const KpiDef& kpi : KpiCatalog()) {
    SCOPED_TRACE(std::string(kpi.name));
    EXPECT_EQ(listed[std::string(kpi.name)], 1)
        << "the table of target KPIs in KPIS.md lists it once";
    EXPECT_TRUE(
        absl::StrContains(md, absl::StrCat("`", kpi.numerator.family->name)));
    if (kpi.denominator.family != nullptr) {
      EXPECT_TRUE(
          absl::StrContains(md, absl::StrCat(kpi.denominator.family->name)));
    }
  }
}

std::string ReadSource(absl::string_view path) {
  const char* dir = std::getenv("KPISTREAM_SOURCE_DIR");
  if (dir == nullptr) dir = KPISTREAM_DEFAULT_SOURCE_DIR;
  std::ifstream in(absl::StrCat(dir, "/", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every metric family /metrics serves (each is defined once, in
// aggregate/metric_families.cc) is described in README.md or KPIS.md.
TEST(KpiCatalogTest, EveryMetricFamilyIsDocumented) {
  const std::string families = ReadSource("aggregate/metric_families.cc");
  const std::string docs =
      absl::StrCat(ReadSource("README.md"), ReadSource("aggregate/KPIS.md"));
  ASSERT_FALSE(families.empty());
  ASSERT_FALSE(docs.empty());
  // A definition: `const MetricFamilyDef kName = {` then the name's literal.
  int found = 0;
  for (size_t at = families.find("MetricFamilyDef k"); at != std::string::npos;
       at = families.find("MetricFamilyDef k", at + 1)) {
    const size_t open = families.find('"', at);
    const size_t close = families.find('"', open + 1);
    ASSERT_NE(close, std::string::npos);
    const std::string name = families.substr(open + 1, close - open - 1);
    ++found;
    EXPECT_TRUE(absl::StrContains(docs, absl::StrCat("`", name)) ||
                absl::StrContains(docs, absl::StrCat(name, "`")))
        << name << " is described in neither README.md nor aggregate/KPIS.md";
  }
  EXPECT_GE(found, 50);
}

}  // namespace
}  // namespace kpistream
