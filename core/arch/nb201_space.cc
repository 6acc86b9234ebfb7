#include "core/arch/nb201_space.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace maplex::core {
namespace internal {
extern const uint16_t kNb201OpCodes[kNb201CellCount];  // generated at build time
}  // namespace internal

namespace {

constexpr const char* kOpNames[kNb201OpCount] = {"none", "skip_connect", "nor_conv_1x1",
                                                 "nor_conv_3x3", "avg_pool_3x3"};

// One stage of the network: channels and spatial side of its five cells.
struct Stage {
  int64_t channels;
  int64_t side;
};
constexpr Stage kStages[3] = {{16, 32}, {32, 16}, {64, 8}};
constexpr int kCellsPerStage = 5;
constexpr int64_t kClasses = 10;

// NB201's ResNet basic block with stride 2 between stages: ReLU-Conv3x3-BN (stride 2,
// c_in -> c_out), ReLU-Conv3x3-BN (c_out -> c_out), shortcut AvgPool2x2 + Conv1x1 (no BN).
void AddReductionBlock(int64_t c_in, int64_t c_out, int64_t side_out, NetworkCost* cost) {
  const int64_t pixels = side_out * side_out;
  cost->macs += pixels * c_out * c_in * 9 + pixels * c_out * c_out * 9 + pixels * c_in * c_out;
  cost->parameters += 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out + c_in * c_out;
  // conv_a, conv_b, pooled shortcut, shortcut conv, residual sum.
  cost->activation_elements += pixels * (c_out + c_out + c_in + c_out + c_out);
}

}  // namespace

const char* Nb201OpName(Nb201Op op) { return kOpNames[static_cast<int>(op)]; }

const Nb201Space& Nb201Space::Get() {
  static const Nb201Space* const space = new Nb201Space();
  return *space;
}

Nb201Space::Nb201Space() {
  index_of_code_.fill(-1);
  for (int32_t i = 0; i < kNb201CellCount; ++i) index_of_code_[internal::kNb201OpCodes[i]] = i;
}

absl::StatusOr<Nb201Cell> Nb201Space::ParseCell(std::string_view text) {
  // Grammar: "|" node "|+|" node "|+|" node "|", node i = i edges "op~j" joined by "|".
  Nb201Cell cell{};
  size_t pos = 0;
  int edge = 0;
  auto fault = [&](std::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat("NAS-Bench-201 cell \"", std::string(text),
                                                   "\": ", std::string(what), " at character ",
                                                   pos));
  };
  for (int node = 1; node <= 3; ++node) {
    if (node > 1) {
      if (text.substr(pos, 1) != "+") return fault("expected '+' between nodes");
      ++pos;
    }
    if (text.substr(pos, 1) != "|") return fault("expected '|'");
    ++pos;
    for (int source = 0; source < node; ++source) {
      const size_t end = text.find('|', pos);
      if (end == std::string_view::npos) return fault("unterminated edge, expected '|'");
      std::string_view token = text.substr(pos, end - pos);
      const size_t tilde = token.find('~');
      if (tilde == std::string_view::npos) return fault("edge without '~source'");
      std::string_view op_name = token.substr(0, tilde);
      std::string_view source_text = token.substr(tilde + 1);
      int op = -1;
      for (int o = 0; o < kNb201OpCount; ++o) {
        if (op_name == kOpNames[o]) op = o;
      }
      if (op < 0) return fault(absl::StrCat("unknown op \"", std::string(op_name), "\""));
      if (source_text.size() != 1 || source_text[0] != '0' + source) {
        return fault(absl::StrCat("edge into node ", node, " must come from node ", source,
                                  ", got \"~", std::string(source_text), "\""));
      }
      cell[edge++] = static_cast<Nb201Op>(op);
      pos = end + 1;
      if (source + 1 < node && (pos >= text.size() || text[pos] == '+')) {
        return fault(absl::StrCat("node ", node, " needs ", node, " edges"));
      }
    }
  }
  if (pos != text.size()) return fault("trailing characters after the third node");
  return cell;
}

std::string Nb201Space::FormatCell(const Nb201Cell& cell) {
  std::string out;
  int edge = 0;
  for (int node = 1; node <= 3; ++node) {
    if (node > 1) out += "+";
    out += "|";
    for (int source = 0; source < node; ++source) {
      absl::StrAppend(&out, kOpNames[static_cast<int>(cell[edge++])], "~", source, "|");
    }
  }
  return out;
}

int Nb201Space::CellCode(const Nb201Cell& cell) {
  int code = 0;
  for (Nb201Op op : cell) code = code * kNb201OpCount + static_cast<int>(op);
  return code;
}

absl::StatusOr<Nb201Cell> Nb201Space::CellFromOpCodes(
    const std::array<int, kNb201EdgeCount>& codes) {
  Nb201Cell cell;
  for (int i = 0; i < kNb201EdgeCount; ++i) {
    if (codes[i] < 0 || codes[i] >= kNb201OpCount) {
      return absl::InvalidArgumentError(
          absl::StrCat("NB201 op code of edge ", i, " must be 0..4, got ", codes[i]));
    }
    cell[i] = static_cast<Nb201Op>(codes[i]);
  }
  return cell;
}

Nb201Cell Nb201Space::CellFromCode(int code) {
  Nb201Cell cell{};
  for (int e = kNb201EdgeCount - 1; e >= 0; --e) {
    cell[e] = static_cast<Nb201Op>(code % kNb201OpCount);
    code /= kNb201OpCount;
  }
  return cell;
}

bool Nb201Space::CellOutputConnected(const Nb201Cell& cell) {
  bool reached[4] = {true, false, false, false};
  int edge = 0;
  for (int node = 1; node <= 3; ++node) {
    for (int source = 0; source < node; ++source, ++edge) {
      if (cell[edge] != Nb201Op::kNone && reached[source]) reached[node] = true;
    }
  }
  return reached[3];
}

NetworkCost Nb201Space::CellCost(const Nb201Cell& cell) {
  NetworkCost cost;
  // Stem: Conv3x3 3 -> 16 (no bias) + BN on 32x32.
  cost.macs += 32 * 32 * 16 * 3 * 9;
  cost.parameters += 3 * 16 * 9 + 2 * 16;
  cost.activation_elements += 16 * 32 * 32 * 2;  // conv, BN
  for (int s = 0; s < 3; ++s) {
    const int64_t c = kStages[s].channels;
    const int64_t pixels = kStages[s].side * kStages[s].side;
    if (s > 0) AddReductionBlock(kStages[s - 1].channels, c, kStages[s].side, &cost);
    // Every edge runs, including those off the input-output path (NB201 computes all of
    // them); "none" and skip_connect cost nothing.
    for (int cell_i = 0; cell_i < kCellsPerStage; ++cell_i) {
      cost.activation_elements += 3 * c * pixels;  // nodes 1..3
      for (Nb201Op op : cell) {
        switch (op) {
          case Nb201Op::kNorConv1x1:
            cost.macs += pixels * c * c;
            cost.parameters += c * c + 2 * c;
            cost.activation_elements += 3 * c * pixels;  // ReLU, conv, BN
            break;
          case Nb201Op::kNorConv3x3:
            cost.macs += pixels * c * c * 9;
            cost.parameters += 9 * c * c + 2 * c;
            cost.activation_elements += 3 * c * pixels;
            break;
          case Nb201Op::kAvgPool3x3:
            cost.activation_elements += c * pixels;
            break;
          case Nb201Op::kNone:
          case Nb201Op::kSkipConnect:
            break;
        }
      }
    }
  }
  // BN-ReLU, global average pool, linear 64 -> 10 with bias.
  cost.parameters += 2 * 64 + 64 * kClasses + kClasses;
  cost.macs += 64 * kClasses;
  cost.activation_elements += 2 * 64 * 8 * 8 + 64 + kClasses;
  return cost;
}

int32_t Nb201Space::IndexOfCell(const Nb201Cell& cell) const {
  return index_of_code_[CellCode(cell)];
}

Nb201Cell Nb201Space::CellAt(int32_t index) const {
  return CellFromCode(internal::kNb201OpCodes[index]);
}

absl::StatusOr<int32_t> Nb201Space::IndexOf(std::string_view arch) const {
  absl::StatusOr<Nb201Cell> cell = ParseCell(arch);
  if (!cell.ok()) return cell.status();
  return IndexOfCell(*cell);
}

absl::StatusOr<std::string> Nb201Space::ArchString(int32_t index) const {
  if (index < 0 || index >= kNb201CellCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("NAS-Bench-201 index ", index, " outside [0, ", kNb201CellCount, ")"));
  }
  return FormatCell(CellAt(index));
}

int Nb201Space::PrimitiveCount(int32_t index) const {
  const Nb201Cell cell = CellAt(index);
  return static_cast<int>(
      std::count_if(cell.begin(), cell.end(), [](Nb201Op op) { return op != Nb201Op::kNone; }));
}

bool Nb201Space::IsOutputConnected(int32_t index) const {
  return CellOutputConnected(CellAt(index));
}

void Nb201Space::Features(int32_t index, absl::Span<double> out) const {
  const Nb201Cell cell = CellAt(index);
  for (double& v : out) v = 0;
  for (int e = 0; e < kNb201EdgeCount; ++e) {
    const int op = static_cast<int>(cell[e]);
    out[e * kNb201OpCount + op] = 1;
    out[kNb201EdgeCount * kNb201OpCount + op] += 1;
  }
  const NetworkCost cost = CellCost(cell);
  out[35] = std::log(2.0 * static_cast<double>(cost.macs));
  out[36] = std::log(static_cast<double>(cost.parameters));
  out[37] = std::log(static_cast<double>(cost.activation_elements));
  out[38] = CellOutputConnected(cell) ? 1 : 0;
}

NetworkCost Nb201Space::Cost(int32_t index) const { return CellCost(CellAt(index)); }

std::string_view Nb201Space::OptionName(int, int option) const { return kOpNames[option]; }

Architecture Nb201Space::FromCell(const Nb201Cell& cell) const {
  std::array<uint8_t, kNb201EdgeCount> choices;
  for (int e = 0; e < kNb201EdgeCount; ++e) choices[e] = static_cast<uint8_t>(cell[e]);
  return MakeArchitecture(choices);
}

Nb201Cell Nb201Space::CellOf(const Architecture& a) {
  Nb201Cell cell;
  for (int e = 0; e < kNb201EdgeCount; ++e) cell[e] = static_cast<Nb201Op>(a.choice(e));
  return cell;
}

absl::StatusOr<Architecture> Nb201Space::ArchitectureAt(int32_t index) const {
  if (index < 0 || index >= kNb201CellCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("NAS-Bench-201 index ", index, " outside [0, ", kNb201CellCount, ")"));
  }
  return FromCell(CellAt(index));
}

absl::StatusOr<Architecture> Nb201Space::Parse(std::string_view text) const {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    int32_t index;
    if (text.size() > 9 || !absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &index)) {
      return absl::InvalidArgumentError(absl::StrCat("NAS-Bench-201 index \"", std::string(text),
                                                     "\" outside [0, ", kNb201CellCount, ")"));
    }
    return ArchitectureAt(index);
  }
  absl::StatusOr<Nb201Cell> cell = ParseCell(text);
  if (!cell.ok()) return cell.status();
  return FromCell(*cell);
}

std::string Nb201Space::Format(const Architecture& a) const { return FormatCell(CellOf(a)); }

bool Nb201Space::IsOutputConnected(const Architecture& a) const {
  return CellOutputConnected(CellOf(a));
}

NetworkCost Nb201Space::Cost(const Architecture& a) const { return CellCost(CellOf(a)); }

int Nb201Space::PrimitiveCount(const Architecture& a) const {
  const absl::Span<const uint8_t> c = a.choices();
  return static_cast<int>(std::count_if(
      c.begin(), c.end(), [](uint8_t op) { return op != static_cast<uint8_t>(Nb201Op::kNone); }));
}

std::vector<std::pair<int, int>> Nb201Space::InteractingPositions() const {
  std::vector<std::pair<int, int>> pairs;
  for (int i = 0; i < kNb201EdgeCount; ++i) {
    for (int j = i + 1; j < kNb201EdgeCount; ++j) pairs.push_back({i, j});
  }
  return pairs;
}

}  // namespace maplex::core
