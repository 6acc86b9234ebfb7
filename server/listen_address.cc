#include "server/listen_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace maplex::server {
namespace {

bool IsPort(absl::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  for (char c : port) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsLoopbackIpv4(const std::string& host) {
  in_addr a{};
  // inet_pton takes only the dotted-quad form: "127.1" or "127.evil.com" are refused.
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

bool IsLoopbackIpv6(const std::string& host) {
  in6_addr a{};
  if (inet_pton(AF_INET6, host.c_str(), &a) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
  // An IPv4-mapped loopback address (::ffff:127.0.0.1) reaches the IPv4 loopback.
  return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
}

}  // namespace

bool IsLoopbackAddress(absl::string_view address) {
  bool ipv4_scheme = absl::ConsumePrefix(&address, "ipv4:");
  bool ipv6_scheme = !ipv4_scheme && absl::ConsumePrefix(&address, "ipv6:");
  std::string host;
  absl::string_view port;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    if (close == absl::string_view::npos) return false;
    host = std::string(address.substr(1, close - 1));
    absl::string_view rest = address.substr(close + 1);
    if (!rest.empty()) {
      if (!absl::ConsumePrefix(&rest, ":") || !IsPort(rest)) return false;
    }
    // Brackets hold an IPv6 address, nothing else.
    return !ipv4_scheme && IsLoopbackIpv6(host);
  }
  size_t colon = address.find(':');
  if (colon != absl::string_view::npos) {
    // One colon separates the port; an unbracketed IPv6 address with a port is ambiguous.
    if (address.find(':', colon + 1) != absl::string_view::npos) return false;
    port = address.substr(colon + 1);
    if (!IsPort(port)) return false;
    address = address.substr(0, colon);
  }
  host = std::string(address);
  if (ipv6_scheme) return false;  // the ipv6: scheme wants a bracketed address with a port
  if (ipv4_scheme) return IsLoopbackIpv4(host);
  return absl::EqualsIgnoreCase(host, "localhost") || IsLoopbackIpv4(host);
}

}  // namespace maplex::server
