#include "ingest/protobuf_log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "absl/strings/ascii.h"
#include "google/protobuf/stubs/logging.h"

namespace kpistream {
namespace {

constexpr size_t kMaxCapturedBytes = 512;

std::atomic<ProtobufLogSink> g_sink{nullptr};
thread_local ProtobufLogCapture* t_capture = nullptr;

void Handle(google::protobuf::LogLevel level, const char* filename, int line,
            const std::string& message) {
  if (level == google::protobuf::LOGLEVEL_INFO) return;  // as libprotobuf
  const absl::string_view text = absl::StripAsciiWhitespace(message);
  if (t_capture != nullptr) {
    AppendToCapture(t_capture, text);
    return;
  }
  const bool error = level >= google::protobuf::LOGLEVEL_ERROR;
  if (ProtobufLogSink sink = g_sink.load(std::memory_order_acquire)) {
    sink(error, text);
    return;
  }
  std::fprintf(stderr, "[libprotobuf %s %s:%d] %.*s\n",
               error ? "ERROR" : "WARNING", filename, line,
               static_cast<int>(text.size()), text.data());
}

void InstallHandler() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&Handle); });
}

}  // namespace

void AppendToCapture(ProtobufLogCapture* capture, absl::string_view message) {
  std::string& text = capture->text_;
  if (text.size() >= kMaxCapturedBytes) return;
  if (!text.empty()) text += "; ";
  const absl::string_view part =
      message.substr(0, kMaxCapturedBytes - text.size());
  text.append(part.data(), part.size());
}

void SetProtobufLogSink(ProtobufLogSink sink) {
  InstallHandler();
  g_sink.store(sink, std::memory_order_release);
}

ProtobufLogCapture::ProtobufLogCapture() : outer_(t_capture) {
  InstallHandler();
  t_capture = this;
}

ProtobufLogCapture::~ProtobufLogCapture() { t_capture = outer_; }

}  // namespace kpistream
