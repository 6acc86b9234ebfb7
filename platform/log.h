// Structured logs: one line per event on stderr, key=value pairs, with a level.
//
//   LogInfo("model_served", {{"version", "3"}, {"method", "maplex"}});
//   // ts=2026-11-26T15:00:00.123Z level=info event=model_served version=3 method=maplex
//
// Events below the minimum level (default info) are dropped; mains set it from
// --log_level / MAPLEX_LOG_LEVEL:
//   SetMinLogLevel(*ParseLogLevel("warning"));
#ifndef MAPLEX_PLATFORM_LOG_H_
#define MAPLEX_PLATFORM_LOG_H_

#include <atomic>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace maplex {

using LogFields = std::initializer_list<std::pair<absl::string_view, std::string>>;

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

namespace log_internal {
inline std::atomic<LogLevel> min_level{LogLevel::kInfo};
}  // namespace log_internal

inline void SetMinLogLevel(LogLevel level) { log_internal::min_level = level; }

// "debug", "info", "warning" or "error"; InvalidArgument naming the text otherwise.
inline absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("log level \"", text, "\" is not debug, info, warning or error"));
}

inline void LogEvent(LogLevel severity, absl::string_view level, absl::string_view event,
                     LogFields fields) {
  if (severity < log_internal::min_level.load(std::memory_order_relaxed)) return;
  std::string line = absl::StrCat(
      "ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      " level=", level, " event=", event);
  for (const auto& [key, value] : fields) {
    // Values with spaces or quotes are quoted so a line always splits into its pairs.
    bool quote = value.empty() || value.find_first_of(" \"=") != std::string::npos;
    std::string v = value;
    if (quote) {
      std::string escaped;
      for (char c : value) {
        if (c == '"' || c == '\\') escaped.push_back('\\');
        escaped.push_back(c == '\n' ? ' ' : c);
      }
      v = absl::StrCat("\"", escaped, "\"");
    }
    absl::StrAppend(&line, " ", key, "=", v);
  }
  line.push_back('\n');
  std::fputs(line.c_str(), stderr);
}

inline void LogDebug(absl::string_view event, LogFields fields = {}) {
  LogEvent(LogLevel::kDebug, "debug", event, fields);
}
inline void LogInfo(absl::string_view event, LogFields fields = {}) {
  LogEvent(LogLevel::kInfo, "info", event, fields);
}
inline void LogWarning(absl::string_view event, LogFields fields = {}) {
  LogEvent(LogLevel::kWarning, "warning", event, fields);
}
inline void LogError(absl::string_view event, LogFields fields = {}) {
  LogEvent(LogLevel::kError, "error", event, fields);
}

}  // namespace maplex

#endif  // MAPLEX_PLATFORM_LOG_H_
