// NAS-Bench-201 (Dong & Yang, ICLR 2020): a cell of 4 nodes and 6 edges
// (1<-0) (2<-0) (2<-1) (3<-0) (3<-1) (3<-2), each edge one of five ops, stacked into a
// fixed CIFAR-10 network. 5^6 = 15,625 cells, indexed in the official (not base-5) order,
// which is compiled into the library from data/nb201_arch_index.csv at build time.
//
//   const Nb201Space& space = Nb201Space::Get();
//   absl::StatusOr<Nb201Cell> cell = Nb201Space::ParseCell("|skip_connect~0|+|...|");
//   int32_t index = space.IndexOfCell(*cell);
//   absl::StatusOr<Architecture> a = space.Parse("|skip_connect~0|+|...|");  // the value
#ifndef MAPLEX_CORE_ARCH_NB201_SPACE_H_
#define MAPLEX_CORE_ARCH_NB201_SPACE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/arch/architecture_space.h"

namespace maplex::core {

enum class Nb201Op : uint8_t {
  kNone = 0,
  kSkipConnect = 1,
  kNorConv1x1 = 2,
  kNorConv3x3 = 3,
  kAvgPool3x3 = 4,
};
inline constexpr int kNb201OpCount = 5;
inline constexpr int kNb201EdgeCount = 6;
inline constexpr int32_t kNb201CellCount = 15625;

// "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3".
const char* Nb201OpName(Nb201Op op);

// Ops on the edges in the order (1<-0) (2<-0) (2<-1) (3<-0) (3<-1) (3<-2).
using Nb201Cell = std::array<Nb201Op, kNb201EdgeCount>;

// Position in a Nb201Cell of the edge to node `to` from node `from` (0 <= from < to <= 3),
// and the op on it.
constexpr int Nb201EdgeIndex(int to, int from) { return to * (to - 1) / 2 + from; }
inline Nb201Op Nb201EdgeOp(const Nb201Cell& cell, int to, int from) {
  return cell[Nb201EdgeIndex(to, from)];
}

class Nb201Space final : public ArchitectureSpace {
 public:
  // The process-wide instance (immutable, thread-safe).
  static const Nb201Space& Get();

  // Parses "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|". InvalidArgument naming the fault (bad
  // separator, unknown op, wrong source node, wrong edge count) for anything else.
  static absl::StatusOr<Nb201Cell> ParseCell(std::string_view text);
  static std::string FormatCell(const Nb201Cell& cell);
  // The cell with these op codes (Nb201Op values) on its edges; InvalidArgument unless every
  // code is in 0..4.
  static absl::StatusOr<Nb201Cell> CellFromOpCodes(const std::array<int, kNb201EdgeCount>& codes);
  // Base-5 code with the first edge as most significant digit, and its inverse.
  static int CellCode(const Nb201Cell& cell);
  static Nb201Cell CellFromCode(int code);
  // True when some path of non-"none" edges leads from node 0 to node 3.
  static bool CellOutputConnected(const Nb201Cell& cell);
  static NetworkCost CellCost(const Nb201Cell& cell);

  // Official index of a cell, and the cell at an official index (index must be valid).
  int32_t IndexOfCell(const Nb201Cell& cell) const;
  Nb201Cell CellAt(int32_t index) const;

  // ArchitectureSpace: choices are the edges' op codes (Nb201Op). Parse takes the cell
  // string, or the official index in decimal as an alias ("1462").
  std::string_view name() const override { return "nb201"; }
  int positions() const override { return kNb201EdgeCount; }
  int options(int) const override { return kNb201OpCount; }
  std::string_view OptionName(int position, int option) const override;
  absl::StatusOr<Architecture> Parse(std::string_view text) const override;
  std::string Format(const Architecture& a) const override;
  bool IsOutputConnected(const Architecture& a) const override;
  NetworkCost Cost(const Architecture& a) const override;
  int PrimitiveCount(const Architecture& a) const override;
  std::vector<std::pair<int, int>> InteractingPositions() const override;

  // Conversions between the value and the cell / the official index.
  Architecture FromCell(const Nb201Cell& cell) const;
  static Nb201Cell CellOf(const Architecture& a);
  int32_t IndexOf(const Architecture& a) const { return IndexOfCell(CellOf(a)); }
  // InvalidArgument when out of range.
  absl::StatusOr<Architecture> ArchitectureAt(int32_t index) const;

  // The index API of the dense tabulated model (core/model/tabulated_model.h), the reference
  // set, the planner and the evaluation: valid indices are [0, size()).
  int32_t size() const { return kNb201CellCount; }
  absl::StatusOr<int32_t> IndexOf(std::string_view arch) const;
  absl::StatusOr<std::string> ArchString(int32_t index) const;
  bool IsOutputConnected(int32_t index) const;
  // One-hot op per edge (30), op counts (5), log FLOPs, log parameters, log activations,
  // output connected (1): 39 values.
  int feature_dim() const { return 39; }
  void Features(int32_t index, absl::Span<double> out) const;
  NetworkCost Cost(int32_t index) const;
  // Non-"none" edges, dead ones (not on an input-output path) included: frameworks still
  // execute them.
  int PrimitiveCount(int32_t index) const;

 private:
  Nb201Space();
  std::array<int32_t, kNb201CellCount> index_of_code_;
};

}  // namespace maplex::core

#endif  // MAPLEX_CORE_ARCH_NB201_SPACE_H_
