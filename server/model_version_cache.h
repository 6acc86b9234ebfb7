// Model versions other than the served one, loaded from the store on demand, so that a
// request naming a version the server still keeps (docs/OPERATIONS.md, "Model versions")
// is answered by that version even after newer ones were trained. Holds at most
// `capacity` loaded models, least recently used out first.
//
//   ModelVersionCache kept(store, /*capacity=*/4);
//   absl::StatusOr<std::shared_ptr<const ServedModel>> m = kept.Get(7);
//   // NotFound naming version 7 once retention deleted it.
#ifndef MAPLEX_SERVER_MODEL_VERSION_CACHE_H_
#define MAPLEX_SERVER_MODEL_VERSION_CACHE_H_

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "server/model_slot.h"
#include "server/store/store.h"

namespace maplex::server {

class ModelVersionCache {
 public:
  // `store` must outlive the cache.
  ModelVersionCache(Store* store, size_t capacity) : store_(store), capacity_(capacity) {}

  // The model of `version` (info and model set; no planner, no snapshot copy). NotFound
  // naming the version when the store no longer keeps it (or never had it), even when it
  // is still cached: a version is answered only while it is kept. Loading happens outside
  // the cache's lock, so a slow load holds up no other version.
  absl::StatusOr<std::shared_ptr<const ServedModel>> Get(uint64_t version);

  // How many versions were loaded from the store so far (for tests).
  int64_t loads() const;

 private:
  Store* const store_;
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<std::shared_ptr<const ServedModel>> recent_ ABSL_GUARDED_BY(mu_);  // newest use first
  int64_t loads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_MODEL_VERSION_CACHE_H_
