#include "server/model_version_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/served_model.h"

namespace maplex::server {

absl::StatusOr<std::shared_ptr<const ServedModel>> ModelVersionCache::Get(uint64_t version) {
  // Retention may have deleted it since it was cached: ask the store (one primary-key
  // lookup on a read connection) before answering from memory.
  absl::StatusOr<bool> kept = store_->HasModel(version);
  if (!kept.ok()) return kept.status();
  if (!*kept) {
    return absl::NotFoundError(
        absl::StrCat("model_version: version ", version,
                     " is not kept by this server (only the newest versions and pinned ones are; "
                     "ListModels shows them); ask for 0 to take the served version"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = recent_.begin(); it != recent_.end(); ++it) {
      if ((*it)->info.version() != version) continue;
      recent_.splice(recent_.begin(), recent_, it);
      return recent_.front();
    }
  }
  absl::StatusOr<Store::StoredModel> stored = store_->GetModel(version);
  if (!stored.ok()) return stored.status();
  absl::StatusOr<std::shared_ptr<ServedModel>> loaded =
      LoadServedModel(stored->snapshot, stored->info);
  if (!loaded.ok()) return loaded.status();
  (*loaded)->snapshot.Clear();  // the models answer; the bytes are not needed again
  (*loaded)->info.set_serving(stored->info.serving());
  std::lock_guard<std::mutex> lock(mu_);
  ++loads_;
  // Two callers may have loaded the same version at once; keep one copy.
  for (auto it = recent_.begin(); it != recent_.end(); ++it) {
    if ((*it)->info.version() == version) {
      recent_.erase(it);
      break;
    }
  }
  recent_.push_front(*std::move(loaded));
  while (recent_.size() > capacity_) recent_.pop_back();
  return recent_.front();
}

int64_t ModelVersionCache::loads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loads_;
}

}  // namespace maplex::server
