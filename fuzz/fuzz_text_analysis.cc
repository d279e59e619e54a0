// Any bytes as a text through everything `persona analyze` does before the classifiers:
// normalisation (invalid UTF-8 repaired), language detection, tokenisers, character n-grams,
// TF-IDF and both keyword methods. No crash, no hang, and the TF-IDF vector is normalised.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "persona/text/keywords.h"
#include "persona/text/language.h"
#include "persona/text/normalize.h"
#include "persona/text/tfidf.h"
#include "persona/text/tokenizer.h"

namespace {
const persona::text::TfidfVectorizer& vectorizer() {
  static const auto* v = [] {
    persona::text::TfidfOptions o;
    o.min_df = 1;
    auto* out = new persona::text::TfidfVectorizer(o);
    out->fit({"where is my order", "我的订单到哪里了", "refund please 退款", "质量很好 quality"}, 1);
    return out;
  }();
  return *v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string normalized = persona::text::normalize_for_analysis(input);
  persona::text::detect_language(normalized);
  const auto tokens = persona::text::tokenize(normalized);
  std::vector<std::string> grams;
  persona::text::char_ngrams(tokens, {}, grams);
  const auto x = vectorizer().transform(input);
  double norm = 0;
  for (float f : x.value) norm += static_cast<double>(f) * f;
  if (!x.value.empty() && std::abs(norm - 1) > 1e-3) std::abort();
  persona::text::tfidf_keywords({input}, 5);
  persona::text::textrank_keywords({input}, 5);
  return 0;
}
