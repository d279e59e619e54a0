#include "persona/ml/text_model.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "persona/ml/fasttext_text_model.h"
#include "persona/ml/linear_text_model.h"

namespace persona::ml {

LabelledTexts LabelledTexts::subset(const std::vector<size_t>& rows) const {
  LabelledTexts out;
  out.label_names = label_names;
  out.texts.reserve(rows.size());
  out.labels.reserve(rows.size());
  for (size_t r : rows) {
    out.texts.push_back(texts[r]);
    out.labels.push_back(labels[r]);
  }
  return out;
}

std::vector<std::vector<float>> TextModel::predict_all(const std::vector<std::string>& texts, int threads) const {
  std::vector<std::vector<float>> out(texts.size());
  const size_t t = std::clamp<size_t>(static_cast<size_t>(std::max(1, threads)), 1, texts.size() / 64 + 1);
  std::vector<std::thread> pool;
  for (size_t k = 0; k < t; ++k)
    pool.emplace_back([&, k] {
      for (size_t i = texts.size() * k / t; i < texts.size() * (k + 1) / t; ++i) out[i] = predict(texts[i]);
    });
  for (auto& th : pool) th.join();
  return out;
}

std::unique_ptr<TextModel> text_model_from_bytes(const std::string& kind, std::string_view bytes) {
  if (kind == "tfidf-linear") return LinearTextModel::from_bytes(bytes);
  if (kind == "fasttext") return FastTextModel::from_bytes(bytes);
  throw std::runtime_error("unknown text model kind '" + kind + "'");
}

int argmax(const std::vector<float>& p) {
  if (p.empty()) return -1;
  return static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
}

}  // namespace persona::ml
