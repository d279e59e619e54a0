#pragma once
// k-anonymity by Mondrian partitioning (LeFevre et al., multidimensional, strict: the classes'
// generalisations never overlap). Numeric quasi-identifiers generalise to ranges, categorical ones
// to nodes of their hierarchies. Beyond the textbook algorithm, three things lower the information
// loss without weakening the guarantee:
//  - a categorical split keeps every child with k rows or more on its own and gathers the smaller
//    children into one remainder class under the parent (the textbook split needs every child to
//    reach k, so one rare value blocks the whole split);
//  - numeric cuts nearest the median that leave both sides at k or more (not the median or
//    nothing);
//  - each final class is generalised only as far as its own rows need (the range of its values,
//    the lowest common ancestor of its categories), not to the node its splits stopped at.
// Optional: a suppression budget (the rows with the rarest quasi-identifier values are withheld
// first) and distinct l-diversity of a sensitive column (a split is taken only when every part
// keeps l distinct sensitive values).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "persona/privacy/hierarchy.h"

namespace persona::privacy {

struct QuasiIdentifier {
  std::string column;
  bool numeric = false;
  Hierarchy hierarchy;  // categorical only (a flat one when none is given)
};

struct KAnonymityOptions {
  int k = 5;
  size_t max_suppressed = 0;       // rows that may be withheld
  std::optional<size_t> sensitive;  // column index of the sensitive attribute (l-diversity)
  int l = 1;
};

struct KAnonymityResult {
  // Per row: the generalised value of each quasi-identifier ("25-34", "Married", "*"), or
  // nothing when the row is suppressed.
  std::vector<std::vector<std::string>> generalised;
  std::vector<bool> suppressed;
  size_t classes = 0, suppressed_rows = 0, min_class_size = 0;
  double ncp = 0;                  // mean over released rows and quasi-identifiers, 0..1
  std::vector<double> ncp_by_qi;
  int min_diversity = 0;           // distinct sensitive values in the least diverse class
};

// `table[row][column]` as text; `qi_columns[i]` is the column of `qis[i]`. Numeric values that do
// not parse are treated as missing and generalised with the whole range. Throws
// std::invalid_argument when k or l cannot be met at all (fewer rows than k, fewer distinct
// sensitive values than l).
KAnonymityResult k_anonymize(const std::vector<std::vector<std::string>>& table, std::vector<QuasiIdentifier>& qis,
                             const std::vector<size_t>& qi_columns, const KAnonymityOptions& options);

}  // namespace persona::privacy
