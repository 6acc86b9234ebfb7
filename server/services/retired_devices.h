// The ids of retired devices, kept in memory so that Predict can refuse them without a
// database read. Loaded from the store at start, added to by RetireDevice.
#ifndef MAPLEX_SERVER_SERVICES_RETIRED_DEVICES_H_
#define MAPLEX_SERVER_SERVICES_RETIRED_DEVICES_H_

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace maplex::server {

class RetiredDevices {
 public:
  bool Contains(absl::string_view id) const {
    absl::ReaderMutexLock lock(&mu_);
    return ids_.contains(id);
  }
  void Add(absl::string_view id) {
    absl::MutexLock lock(&mu_);
    ids_.insert(std::string(id));
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_RETIRED_DEVICES_H_
