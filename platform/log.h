// Structured logs: one line per event on stderr, key=value pairs, with a level.
//
//   LogInfo("model_served", {{"version", "3"}, {"method", "maplex"}});
//   // ts=2026-11-26T15:00:00.123Z level=info event=model_served version=3 method=maplex
#ifndef MAPLEX_PLATFORM_LOG_H_
#define MAPLEX_PLATFORM_LOG_H_

#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace maplex {

using LogFields = std::initializer_list<std::pair<absl::string_view, std::string>>;

inline void LogEvent(absl::string_view level, absl::string_view event, LogFields fields) {
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

inline void LogInfo(absl::string_view event, LogFields fields = {}) {
  LogEvent("info", event, fields);
}
inline void LogWarning(absl::string_view event, LogFields fields = {}) {
  LogEvent("warning", event, fields);
}
inline void LogError(absl::string_view event, LogFields fields = {}) {
  LogEvent("error", event, fields);
}

}  // namespace maplex

#endif  // MAPLEX_PLATFORM_LOG_H_
