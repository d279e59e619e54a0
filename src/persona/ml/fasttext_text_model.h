#pragma once
// fastText (Debian's libfasttext-dev) as a text model. Texts are normalised and tokenised by
// Persona's tokenisers first; Chinese words are split into characters so that fastText's word
// n-grams become character n-grams, which segment-free Chinese classification favours.
#include <chrono>
#include <memory>
#include <vector>

#include "persona/ml/text_model.h"

namespace fasttext {
class FastText;
}

namespace persona::ml {

struct FastTextParams {
  double lr = 0.5;
  int epoch = 25;
  int dim = 50;
  int word_ngrams = 2;
  int minn = 0, maxn = 0;  // subword character n-grams of Latin words
  int bucket = 2000000;
  int threads = 2;
  int seed = 1;  // with threads = 1, the same seed gives the same model
  nlohmann::json to_json() const;
};

class FastTextModel : public TextModel {
 public:
  using Clock = std::chrono::steady_clock;
  // Training stops by `abort_at` whatever it is doing and throws TrainingTimedOut; it also gives
  // up early once its own estimate says it cannot finish in time.
  static std::unique_ptr<FastTextModel> train(const LabelledTexts& data, const FastTextParams& params,
                                              Clock::time_point abort_at = Clock::time_point::max());
  ~FastTextModel() override;
  std::string kind() const override { return "fasttext"; }
  int classes() const override { return classes_; }
  using TextModel::predict;
  std::vector<float> predict(const text::PreparedText& text) const override;
  nlohmann::json params() const override { return params_.to_json(); }
  bool knows_word(std::string_view word) const override;  // Chinese: every character of it
  // The parameters used (the hash buckets sized to the data).
  const FastTextParams& used_params() const { return params_; }
  std::string to_bytes() const override;
  static std::unique_ptr<FastTextModel> from_bytes(std::string_view bytes);

 private:
  std::shared_ptr<fasttext::FastText> model_;
  std::vector<bool> used_rows_;  // of the input matrix: those training reached (the others are zero)
  FastTextParams params_;
  int classes_ = 0;
};

// The line fastText sees for a text: normalised tokens, Chinese split into characters.
std::string fasttext_tokens(std::string_view text);
std::string fasttext_tokens(const std::vector<text::Token>& tokens);

}  // namespace persona::ml
