#pragma once
// TF-IDF features (words, word bigrams, character n-grams) and a linear classifier trained by
// liblinear (Debian's liblinear-dev): L2-regularised logistic regression or L2-loss SVM, one
// against the rest, or Crammer-Singer. Probabilities are a softmax of the decision values with a
// temperature fitted on validation data, so that they are calibrated whichever loss was used.
// Weights are kept in half precision (IEEE binary16, through Imath): half the size of floats, and
// rounded as soon as liblinear returns them, so validation scores the model that is saved.
#include "persona/ml/text_model.h"
#include "persona/text/tfidf.h"

namespace persona::ml {

enum class LinearSolver { LogisticRegression, Svm, CrammerSinger };
const char* linear_solver_name(LinearSolver s);

struct LinearTextParams {
  LinearSolver solver = LinearSolver::LogisticRegression;
  double c = 4.0;  // inverse regularisation strength
  text::TfidfOptions tfidf;
  nlohmann::json to_json() const;
};

class LinearTextModel : public TextModel {
 public:
  // Trains on `data`; `threads` only parallelise feature extraction.
  static std::unique_ptr<LinearTextModel> train(const LabelledTexts& data, const LinearTextParams& params,
                                                int threads);
  // Trains with a vectoriser already fitted (the grid search shares one across its C values).
  static std::unique_ptr<LinearTextModel> train_on_features(const std::vector<SparseVector>& x,
                                                            const std::vector<int>& labels, int classes,
                                                            std::shared_ptr<const text::TfidfVectorizer> vectorizer,
                                                            const LinearTextParams& params);

  std::string kind() const override { return "tfidf-linear"; }
  int classes() const override { return classes_; }
  using TextModel::predict;
  std::vector<float> predict(const text::PreparedText& text) const override;
  std::vector<float> predict_features(const SparseVector& x) const;
  nlohmann::json params() const override { return params_.to_json(); }
  bool knows_word(std::string_view word) const override {
    return vectorizer_->options().word_ngrams < 1 || vectorizer_->word_index(word) >= 0;
  }
  std::string to_bytes() const override { return to_bytes(true); }
  // Without the vectoriser when an ensemble stores it once for all the members that share it.
  std::string to_bytes(bool with_vectorizer) const;
  // `shared`: the vectoriser, when the payload was written without it.
  static std::unique_ptr<LinearTextModel> from_bytes(std::string_view bytes,
                                                     std::shared_ptr<const text::TfidfVectorizer> shared = nullptr);
  const std::shared_ptr<const text::TfidfVectorizer>& shared_vectorizer() const { return vectorizer_; }

  // Chooses the softmax temperature that minimises log-loss on held-out rows.
  void fit_temperature(const std::vector<SparseVector>& x, const std::vector<int>& labels);
  float temperature() const { return temperature_; }
  void set_temperature(float t) { temperature_ = t; }
  const text::TfidfVectorizer& vectorizer() const { return *vectorizer_; }

 private:
  void scores(const SparseVector& x, std::vector<float>& out) const;

  LinearTextParams params_;
  std::shared_ptr<const text::TfidfVectorizer> vectorizer_;
  int classes_ = 0;
  int32_t dimension_ = 0;
  std::vector<uint16_t> weights_;  // binary16 bits, feature-major: weights_[feature * classes_ + class]
  std::vector<float> bias_;
  float temperature_ = 1.0f;
};

}  // namespace persona::ml
