#include "agent/counters/counter_source.h"

namespace maplex::agent {

const std::vector<CounterEvent>& MapleEdgeCounterSet() {
  static const auto* events = new std::vector<CounterEvent>{
      {"cpu-cycles", CounterKind::kHardware},
      {"instructions", CounterKind::kHardware},
      {"cache-references", CounterKind::kHardware},
      {"cache-misses", CounterKind::kHardware},
      {"L1-dcache-loads", CounterKind::kHardware},
      {"L1-dcache-load-misses", CounterKind::kHardware},
      {"LLC-loads", CounterKind::kHardware},
      {"LLC-load-misses", CounterKind::kHardware},
      {"LLC-stores", CounterKind::kHardware},
      {"LLC-store-misses", CounterKind::kHardware},
      {"branch-misses", CounterKind::kHardware},
      {"task-clock", CounterKind::kSoftware},
      {"page-faults", CounterKind::kSoftware},
      {"context-switches", CounterKind::kSoftware},
      {"cpu-migrations", CounterKind::kSoftware},
  };
  return *events;
}

std::vector<std::string> MapleEdgeCounterNames() {
  std::vector<std::string> names;
  for (const CounterEvent& event : MapleEdgeCounterSet()) names.push_back(event.name);
  return names;
}

}  // namespace maplex::agent
