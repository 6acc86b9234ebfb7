// gRPC transport settings of maplex processes that exchange large messages (a 100,000-
// architecture Predict sends 2.2 MB and receives 2.4 MB).
//
//   int main(int argc, char** argv) {
//     maplex::EnableLargeMessageTcpReads();  // first, before any gRPC object or thread
//     ...
//
// What it turns on (gRPC 1.51's TCP experiments `tcp_frame_size_tuning` and
// `tcp_rcv_lowat`): the HTTP/2 transport tells the TCP endpoint how many bytes the message
// being read still needs, and the endpoint sizes its read buffers to it and sets
// SO_RCVLOWAT so the reading thread is woken when they have arrived, not for every segment.
// The bytes on the wire are unchanged (either side may run without it). Measured with
// fbnet_service_bench: 5.6-6.2 ms instead of 6.5-8.5 ms of CPU per 100,000-architecture
// call (docs/BENCHMARKS.md, "FBNet through the server").
#ifndef MAPLEX_PLATFORM_GRPC_TRANSPORT_H_
#define MAPLEX_PLATFORM_GRPC_TRANSPORT_H_

namespace maplex {

// The experiments, as GRPC_EXPERIMENTS spells them.
inline constexpr char kLargeMessageGrpcExperiments[] = "tcp_frame_size_tuning,tcp_rcv_lowat";

// Sets GRPC_EXPERIMENTS to kLargeMessageGrpcExperiments unless the environment already sets
// it (an operator's choice wins, "" turns them off). gRPC reads the variable once, when
// it first needs it: call this at the start of main(), before anything uses gRPC and
// before other threads start (it writes the environment). Returns the value in effect.
const char* EnableLargeMessageTcpReads();

}  // namespace maplex

#endif  // MAPLEX_PLATFORM_GRPC_TRANSPORT_H_
