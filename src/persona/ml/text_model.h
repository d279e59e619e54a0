#pragma once
// One interface for supervised text models: probabilities over a fixed list of classes.
// Implementations: LinearTextModel (TF-IDF + liblinear) and FastTextModel (fastText).
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/text/tokenizer.h"

namespace persona::ml {

// Texts with class indices into `label_names`.
struct LabelledTexts {
  std::vector<std::string> texts;
  std::vector<int> labels;
  std::vector<std::string> label_names;
  size_t size() const { return texts.size(); }
  // A subset by row indices (label names kept).
  LabelledTexts subset(const std::vector<size_t>& rows) const;
};

// A training run stopped at its deadline (or one that could not reach the end in time): the
// caller keeps what it has instead.
struct TrainingTimedOut : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class TextModel {
 public:
  virtual ~TextModel() = default;
  virtual std::string kind() const = 0;  // "tfidf-linear" | "fasttext"
  virtual int classes() const = 0;
  // Probabilities over the classes, summing to 1. Empty or unreadable text gives the prior-free
  // uniform answer rather than an error.
  std::vector<float> predict(std::string_view text) const { return predict(text::prepare_text(text)); }
  virtual std::vector<float> predict(const text::PreparedText& text) const = 0;
  virtual std::vector<std::vector<float>> predict_all(const std::vector<std::string>& texts, int threads) const;
  virtual nlohmann::json params() const = 0;
  virtual std::string to_bytes() const = 0;
  // Whether training saw this word (a token as text::tokenize writes it) as a feature of its own;
  // true when the model cannot tell (no word features).
  virtual bool knows_word(std::string_view word) const = 0;
};

// The mean of several models' probabilities (the members must share the classes). Chosen when
// validation says the blend beats each member, as it often does for a linear model and fastText,
// whose mistakes differ.
class EnsembleTextModel : public TextModel {
 public:
  explicit EnsembleTextModel(std::vector<std::shared_ptr<const TextModel>> members);
  std::string kind() const override { return "ensemble"; }
  int classes() const override { return members_.front()->classes(); }
  using TextModel::predict;
  std::vector<float> predict(const text::PreparedText& text) const override;
  nlohmann::json params() const override;
  std::string to_bytes() const override;
  bool knows_word(std::string_view word) const override;  // some member knows it
  static std::unique_ptr<EnsembleTextModel> from_bytes(std::string_view bytes);
  const std::vector<std::shared_ptr<const TextModel>>& members() const { return members_; }

 private:
  std::vector<std::shared_ptr<const TextModel>> members_;
};

// Loads a model payload written by to_bytes() of the given kind.
std::unique_ptr<TextModel> text_model_from_bytes(const std::string& kind, std::string_view bytes);

// Index of the largest probability.
int argmax(const std::vector<float>& p);

}  // namespace persona::ml
