// Building a ServedModel from a stored or streamed ModelSnapshot: NB201's tabulated model
// (when the snapshot has one) plus the function model of every other space it carries
// (ModelSnapshot.function_models). Used by the primary at start, by replicas for each
// version they receive, and for pinned versions (ModelVersionCache).
//
//   absl::StatusOr<std::shared_ptr<ServedModel>> m = LoadServedModel(snapshot, info);
#ifndef MAPLEX_SERVER_SERVED_MODEL_H_
#define MAPLEX_SERVER_SERVED_MODEL_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model/function_trainer.h"
#include "maplex/v1/model.pb.h"
#include "maplex/v1/models.pb.h"
#include "server/model_slot.h"

namespace maplex::server {

// True when `snapshot` holds no NB201 model (a version that serves other spaces only).
bool SnapshotHasNoNb201(const maplex::v1::ModelSnapshot& snapshot);

// The served form of `snapshot` with `info` (no planners). A snapshot without
// function_models (written before they existed) serves NB201 alone. InvalidArgument (or the
// loader's code) naming the version and the part that does not load.
absl::StatusOr<std::shared_ptr<ServedModel>> LoadServedModel(
    const maplex::v1::ModelSnapshot& snapshot, const maplex::v1::ModelInfo& info);

// A space's trained function model as it is stored in the snapshot.
maplex::v1::SpaceModel ToSpaceModel(const core::TrainedFunctionModel& trained, core::Method method);

// The trained model back from its stored form (params and summaries), e.g. to build the
// planner after a restart. InvalidArgument when the parameters do not parse.
absl::StatusOr<core::TrainedFunctionModel> FromSpaceModel(const maplex::v1::SpaceModel& stored);

}  // namespace maplex::server

#endif  // MAPLEX_SERVER_SERVED_MODEL_H_
