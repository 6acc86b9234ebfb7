#include "agent/runtime/internal/cell_string.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace maplex::agent::runtime_internal {
namespace {

constexpr const char* kOpNames[] = {"none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                    "avg_pool_3x3"};

}  // namespace

const char* Nb201OpName(Nb201Op op) { return kOpNames[static_cast<int>(op)]; }

std::string Nb201CellString(const Nb201Cell& cell) {
  std::string text;
  for (int to = 1; to <= 3; ++to) {
    if (to > 1) text += "+";
    text += "|";
    for (int from = 0; from < to; ++from) {
      absl::StrAppend(&text, Nb201OpName(cell.op(to, from)), "~", from, "|");
    }
  }
  return text;
}

absl::StatusOr<Nb201Cell> ParseNb201CellString(absl::string_view text) {
  std::vector<absl::string_view> nodes = absl::StrSplit(text, '+');
  if (nodes.size() != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("NB201 cell needs 3 '+'-separated nodes: \"", text, "\""));
  }
  Nb201Cell cell;
  for (int to = 1; to <= 3; ++to) {
    absl::string_view node = nodes[to - 1];
    if (node.size() < 2 || node.front() != '|' || node.back() != '|') {
      return absl::InvalidArgumentError(absl::StrCat("malformed node ", to, ": \"", node, "\""));
    }
    std::vector<absl::string_view> inputs = absl::StrSplit(node.substr(1, node.size() - 2), '|');
    if (static_cast<int>(inputs.size()) != to) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", to, " needs ", to, " inputs: \"", node, "\""));
    }
    for (int from = 0; from < to; ++from) {
      std::vector<absl::string_view> parts = absl::StrSplit(inputs[from], '~');
      if (parts.size() != 2 || parts[1] != absl::StrCat(from)) {
        return absl::InvalidArgumentError(
            absl::StrCat("edge \"", inputs[from], "\" must be op~", from));
      }
      int code = -1;
      for (int c = 0; c < 5; ++c) {
        if (parts[0] == kOpNames[c]) code = c;
      }
      if (code < 0) {
        return absl::InvalidArgumentError(absl::StrCat("unknown op \"", parts[0], "\""));
      }
      cell.edges[Nb201Cell::EdgeIndex(to, from)] = static_cast<Nb201Op>(code);
    }
  }
  return cell;
}

}  // namespace maplex::agent::runtime_internal
