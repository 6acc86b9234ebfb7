// A closed-loop load generator for unary gRPC calls over the async (CompletionQueue) API:
// `outstanding` calls are kept in flight, spread over several channels, for a fixed
// duration; each completed call's latency is recorded. Used by bench/service_bench.cc.
//
//   LoadOptions options;                        // 8 calls in flight, 5 s
//   std::vector<std::unique_ptr<v1::Predictor::Stub>> stubs = ...;  // one per channel
//   LoadResult r = RunUnaryLoad<v1::PredictResponse>(options, stubs.size(),
//       [&](size_t channel, grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
//         return stubs[channel]->PrepareAsyncPredict(ctx, request, cq);
//       });
//   r.Percentile(0.99);  r.CallsPerSecond();  r.errors;
#ifndef MAPLEX_BENCH_LOAD_GENERATOR_H_
#define MAPLEX_BENCH_LOAD_GENERATOR_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/async_unary_call.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace maplex::bench {

// The q-quantile (0 <= q <= 1) of `values` by the nearest-rank method: the smallest value
// with at least q of all values at or below it. 0 for an empty vector. Sorts `values`.
double NearestRankPercentile(std::vector<double>& values, double q);

struct LoadOptions {
  int outstanding = 8;  // calls in flight in total, assigned to channels round robin
  absl::Duration duration = absl::Seconds(5);  // measured window
  absl::Duration warmup = absl::Seconds(1);    // calls completing before it are not recorded
};

struct LoadResult {
  int64_t calls = 0;   // successful calls completed within the measured window
  int64_t errors = 0;  // failed calls (any non-OK status) within the window
  std::string first_error;
  double seconds = 0;                // length of the measured window
  std::vector<double> latencies_us;  // one per successful call in the window

  double CallsPerSecond() const { return seconds > 0 ? static_cast<double>(calls) / seconds : 0; }
  // Latency percentile in microseconds (q in [0, 1]); sorts latencies_us once.
  double Percentile(double q);
};

// Channels with their own TCP connection each (a local subchannel pool), so that calls
// really spread over `count` connections to `address`.
std::vector<std::shared_ptr<grpc::Channel>> MakeChannels(const std::string& address, int count);

template <typename Response>
using AsyncCallStarter = std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Response>>(
    size_t channel, grpc::ClientContext* context, grpc::CompletionQueue* cq)>;

// Runs the load on the calling thread (one completion queue) and returns when every call
// it started has completed. `start` prepares one call (PrepareAsyncFoo) on channel
// 0..channel_count-1; it is started here.
template <typename Response>
LoadResult RunUnaryLoad(const LoadOptions& options, size_t channel_count,
                        const AsyncCallStarter<Response>& start) {
  using Clock = std::chrono::steady_clock;
  struct Call {
    size_t channel = 0;
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
    Response response;
    grpc::Status status;
    Clock::time_point started;
  };
  grpc::CompletionQueue cq;
  std::vector<Call> calls(static_cast<size_t>(options.outstanding));
  auto launch = [&](Call& call) {
    call.context = std::make_unique<grpc::ClientContext>();
    call.response.Clear();
    call.started = Clock::now();
    call.reader = start(call.channel, call.context.get(), &cq);
    call.reader->StartCall();
    call.reader->Finish(&call.response, &call.status, &call);
  };
  const Clock::time_point begin = Clock::now();
  const Clock::time_point measure_from = begin + absl::ToChronoNanoseconds(options.warmup);
  const Clock::time_point measure_to = measure_from + absl::ToChronoNanoseconds(options.duration);
  LoadResult result;
  result.seconds = absl::ToDoubleSeconds(options.duration);
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i].channel = i % channel_count;
    launch(calls[i]);
  }
  size_t in_flight = calls.size();
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && cq.Next(&tag, &ok)) {
    Call& call = *static_cast<Call*>(tag);
    const Clock::time_point now = Clock::now();
    // A call counts when it completed inside the window.
    if (now >= measure_from && now < measure_to) {
      if (ok && call.status.ok()) {
        ++result.calls;
        result.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(now - call.started).count());
      } else {
        if (result.errors++ == 0) {
          result.first_error = ok ? call.status.error_message() : "completion queue: not ok";
        }
      }
    }
    if (now < measure_to) {
      launch(call);
    } else {
      --in_flight;
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return result;
}

}  // namespace maplex::bench

#endif  // MAPLEX_BENCH_LOAD_GENERATOR_H_
