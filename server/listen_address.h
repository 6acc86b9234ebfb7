// Whether a gRPC listening address reaches only this machine. The server serves an
// unauthenticated address only when it does (server.h), so the answer comes from parsing
// the address, never from its spelling: "127.evil.com:1" and "localhost.attacker:1" are
// names a resolver may point anywhere.
//
//   IsLoopbackAddress("127.0.0.1:50051")       // true
//   IsLoopbackAddress("ipv6:[::1]:50051")      // true
//   IsLoopbackAddress("127.evil.com:50051")    // false
#ifndef MAPLEX_SERVER_LISTEN_ADDRESS_H_
#define MAPLEX_SERVER_LISTEN_ADDRESS_H_

#include "absl/strings/string_view.h"

namespace maplex::server {

// True when `address` (a gRPC listening address: "host:port", "[ipv6]:port", or either
// after an "ipv4:" / "ipv6:" scheme) names a loopback host: an IPv4 address in
// 127.0.0.0/8, the IPv6 address ::1 (or ::ffff:127.x.y.z), or the name "localhost"
// (any case; gRPC resolves it from /etc/hosts to loopback only). The port, when present,
// must be decimal digits. Anything else, malformed input included, is false.
bool IsLoopbackAddress(absl::string_view address);

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_LISTEN_ADDRESS_H_
