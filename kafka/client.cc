#include "kafka/client.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kafka/log.h"

namespace kpistream::kafka {
namespace {

// Property name -> 'C' (consumer only) or 'P' (producer only), from
// librdkafka's own table of its properties; others apply to both.
const absl::flat_hash_map<std::string, char>& PropertyScopes() {
  static const auto* scopes = [] {
    auto* out = new absl::flat_hash_map<std::string, char>();
    char* text = nullptr;
    size_t size = 0;
    FILE* f = open_memstream(&text, &size);
    if (f == nullptr) return out;
    rd_kafka_conf_properties_show(f);
    std::fclose(f);
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(text, size), '\n')) {
      std::vector<absl::string_view> columns = absl::StrSplit(line, '|');
      if (columns.size() < 3) continue;
      const absl::string_view scope = absl::StripAsciiWhitespace(columns[1]);
      if (scope == "C" || scope == "P") {
        (*out)[std::string(absl::StripAsciiWhitespace(columns[0]))] = scope[0];
      }
    }
    std::free(text);
    return out;
  }();
  return *scopes;
}

}  // namespace

absl::Status ApplyProperties(rd_kafka_conf_t* conf,
                             const Properties& properties) {
  char err[512];
  // Plugins first: the properties they register are unknown before.
  std::vector<std::pair<std::string, std::string>> ordered;
  if (auto it = properties.find("plugin.library.paths");
      it != properties.end()) {
    ordered.push_back(*it);
  }
  for (const auto& entry : properties) {
    if (entry.first != "plugin.library.paths") ordered.push_back(entry);
  }
  for (const auto& [key, value] : ordered) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property \"", key, "\": ", err));
    }
  }
  return absl::OkStatus();
}

std::string PropertyError(const std::string& name, const std::string& value) {
  ConfPtr conf(rd_kafka_conf_new());
  char err[512];
  if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), err,
                        sizeof(err)) != RD_KAFKA_CONF_OK) {
    return err;
  }
  return "";
}

absl::StatusOr<ConfPtr> NewConf(const ClientSettings& settings) {
  ConfPtr conf(rd_kafka_conf_new());
  Properties base = settings.defaults;
  base["bootstrap.servers"] = settings.brokers;
  base["client.id"] = settings.client_id;
  const char other = settings.type == RD_KAFKA_PRODUCER ? 'C' : 'P';
  Properties user;
  for (const auto& [key, value] : settings.user) {
    auto it = PropertyScopes().find(key);
    if (it == PropertyScopes().end() || it->second != other) user[key] = value;
  }
  for (const Properties* p :
       {static_cast<const Properties*>(&base),
        static_cast<const Properties*>(&user), &settings.fixed}) {
    absl::Status status = ApplyProperties(conf.get(), *p);
    if (!status.ok()) return status;
  }
  RouteKafkaLogs(conf.get());
  return conf;
}

int SeekTimeoutArgument(absl::Duration timeout) {
  int64_t ms = absl::ToInt64Milliseconds(timeout);
  if (rd_kafka_version() < 0x020100ff) ms *= 1000;
  return static_cast<int>(std::min<int64_t>(ms, INT32_MAX));
}

absl::StatusOr<HandlePtr> NewClient(rd_kafka_type_t type, ConfPtr conf,
                                    const std::string& what) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof(err));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create the Kafka ", what, ": ", err));
  }
  conf.release();  // owned by the handle now
  return HandlePtr(rk);
}

absl::StatusOr<HandlePtr> NewClient(const ClientSettings& settings,
                                    const std::string& what) {
  auto conf = NewConf(settings);
  if (!conf.ok()) return conf.status();
  if (settings.callbacks) settings.callbacks(conf->get());
  return NewClient(settings.type, *std::move(conf), what);
}

}  // namespace kpistream::kafka
