// Bounds on what one request may carry; exceeding one is RESOURCE_EXHAUSTED or
// INVALID_ARGUMENT with a message naming the field and the value.
#ifndef MAPLEX_SERVER_LIMITS_H_
#define MAPLEX_SERVER_LIMITS_H_

namespace maplex::server {

struct Limits {
  int max_archs_per_predict = 20000;           // a whole NB201 space (15,625) fits
  int max_measurements_per_batch = 10000;
  int max_list_page_size = 1000;
  int default_list_page_size = 100;
  // ListMeasurements: default and largest page (all of NAS-Bench-201, 15,625, in one).
  int max_measurements_page_size = 20000;
  int max_labels_per_device = 64;
  int max_id_length = 128;  // device ids, measurement ids, label keys, spec.isa, categories
  int max_text_length = 1024;                   // names, label values, protocol notes
  int max_batch_size = 65536;                   // DeviceConfig.batch_size
  int max_threads = 4096;
  double max_latency_ms = 3.6e6;               // one hour: anything above is absurd
  int max_counters_per_descriptor = 256;
  int max_microbenchmarks_per_descriptor = 64;  // the agent reports 3
  int max_arch_string_length = 1024;            // Architecture.cell (an NB201 cell is ~90)
  int max_next_tasks = 1000;
  // Ingest rate of each agent token (server/ingest_rate.h). One honest agent measures an
  // architecture in tens of milliseconds at best, so 100/s is far above what it sends; the
  // burst is one maximal batch, so a spool that filled while offline drains at once.
  double agent_measurements_per_second = 100;
  int agent_measurement_burst = 10000;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_LIMITS_H_
