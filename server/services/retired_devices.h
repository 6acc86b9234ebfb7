// The ids of retired devices, kept in memory so that Predict can refuse them without a
// database read. Loaded from the store at start, added to by RetireDevice.
#ifndef MAPLEX_SERVER_SERVICES_RETIRED_DEVICES_H_
#define MAPLEX_SERVER_SERVICES_RETIRED_DEVICES_H_

#include <shared_mutex>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/base/thread_annotations.h"

namespace maplex::server {

class RetiredDevices {
 public:
  bool Contains(absl::string_view id) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    return ids_.contains(id);
  }
  void Add(absl::string_view id) {
    std::lock_guard<std::shared_mutex> lock(mu_);
    ids_.insert(std::string(id));
  }

 private:
  mutable std::shared_mutex mu_;
  absl::flat_hash_set<std::string> ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVICES_RETIRED_DEVICES_H_
