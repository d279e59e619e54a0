#pragma once
// TF-IDF features (words, word bigrams, character n-grams) and a linear classifier trained by
// liblinear (Debian's liblinear-dev): L2-regularised logistic regression or L2-loss SVM, one
// against the rest, or Crammer-Singer. Probabilities are a softmax of the decision values with a
// temperature fitted on validation data, so that they are calibrated whichever loss was used.
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
  std::vector<float> predict(std::string_view text) const override;
  std::vector<float> predict_features(const SparseVector& x) const;
  nlohmann::json params() const override { return params_.to_json(); }
  std::string to_bytes() const override;
  static std::unique_ptr<LinearTextModel> from_bytes(std::string_view bytes);

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
  std::vector<float> weights_;  // feature-major: weights_[feature * classes_ + class]
  std::vector<float> bias_;
  float temperature_ = 1.0f;
};

}  // namespace persona::ml
