#pragma once
// A sparse feature vector: sorted feature indices and their values. The row type of the text
// models (TF-IDF features) and the learners that take sparse input.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace persona {

struct SparseVector {
  std::vector<int32_t> index;  // ascending, unique
  std::vector<float> value;
  size_t size() const { return index.size(); }
};

}  // namespace persona
