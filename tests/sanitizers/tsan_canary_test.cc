// Checks that ThreadSanitizer still sees races in our handlers with the suppressions of
// tsan_suppressions.sh in force: a gRPC service whose handler increments an unguarded
// counter, behind the server's own RPC interceptor (ServerMetrics), called from two client
// threads. Built only with MAPLEX_SANITIZE=thread; CTest passes it only when the report
// names this file (tests/sanitizers/CMakeLists.txt).
#include <grpcpp/create_channel.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "maplex/v1/models.grpc.pb.h"
#include "server/model_slot.h"
#include "server/server_metrics.h"

namespace {

class RacyModels final : public maplex::v1::Models::Service {
 public:
  grpc::Status ListModels(grpc::ServerContext*, const maplex::v1::ListModelsRequest*,
                          maplex::v1::ListModelsResponse*) override {
    ++calls_;  // the race: no lock
    // Hold the first call until a second one has made its unguarded write too (or 10 s), so
    // that the two writes overlap whatever the machine's load (when the calls ran one after
    // another, the interceptor's mutex ordered them and there was nothing to report). Relaxed
    // atomics give ThreadSanitizer no order between the two writes.
    inside_.fetch_add(1, std::memory_order_relaxed);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (inside_.load(std::memory_order_relaxed) < 2 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return grpc::Status::OK;
  }

 private:
  long calls_ = 0;
  std::atomic<int> inside_{0};
};

}  // namespace

int main() {
  maplex::server::ModelSlot slot;
  maplex::server::ServerMetrics metrics(&slot);
  RacyModels service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(metrics.RpcInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(factories));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 2;

  auto stub = maplex::v1::Models::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&stub] {
      for (int i = 0; i < 20; ++i) {
        grpc::ClientContext context;
        maplex::v1::ListModelsResponse response;
        stub->ListModels(&context, maplex::v1::ListModelsRequest(), &response);
      }
    });
  }
  for (std::thread& c : clients) c.join();
  server->Shutdown();
  std::puts("canary calls finished");
  return 0;
}
