// Where libprotobuf's own log lines go. libprotobuf writes them to stderr in
// its own format ("[libprotobuf ERROR ...] String field ... contains invalid
// UTF-8 data ..."), one for each bad record it parses: outside the
// process' logger, not in --log-format json, not rate-limited (an audit: a
// thousand such lines for a thousand bad ad cost records). A binary with
// its own logger installs a sink once, at its start; a parse that wants
// the reason libprotobuf gave (a dead letter's detail) captures it.
#ifndef KPISTREAM_INGEST_PROTOBUF_LOG_H_
#define KPISTREAM_INGEST_PROTOBUF_LOG_H_

#include <string>

#include "absl/strings/string_view.h"

namespace kpistream {

// `error`: libprotobuf's ERROR or FATAL, not INFO or WARNING.
using ProtobufLogSink = void (*)(bool error, absl::string_view message);

// Process-wide, thread-safe: libprotobuf's lines that no capture below
// takes go to `sink` (nullptr: stderr, as libprotobuf writes them).
void SetProtobufLogSink(ProtobufLogSink sink);

// While one lives, the lines libprotobuf logs on this thread are kept in
// text() instead of going to the sink (the reason a parse failed).
class ProtobufLogCapture {
 public:
  ProtobufLogCapture();
  ~ProtobufLogCapture();
  ProtobufLogCapture(const ProtobufLogCapture&) = delete;
  ProtobufLogCapture& operator=(const ProtobufLogCapture&) = delete;

  // What was logged, lines joined by "; ", at most about 512 bytes.
  const std::string& text() const { return text_; }

 private:
  friend void AppendToCapture(ProtobufLogCapture* capture,
                              absl::string_view message);
  ProtobufLogCapture* outer_;
  std::string text_;
};

}  // namespace kpistream

#endif  // KPISTREAM_INGEST_PROTOBUF_LOG_H_
