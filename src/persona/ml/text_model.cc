#include "persona/ml/text_model.h"

#include <algorithm>
#include <stdexcept>

#include "persona/core/binary_io.h"
#include "persona/core/parallel.h"
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
  parallel_chunks(texts.size(), threads, 64, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) out[i] = predict(texts[i]);
  });
  return out;
}

EnsembleTextModel::EnsembleTextModel(std::vector<std::shared_ptr<const TextModel>> members) : members_(std::move(members)) {
  if (members_.empty()) throw std::invalid_argument("an ensemble needs members");
  for (const auto& m : members_)
    if (m->classes() != members_.front()->classes()) throw std::invalid_argument("ensemble members differ in classes");
}

std::vector<float> EnsembleTextModel::predict(const text::PreparedText& text) const {
  // Linear members that share a vectoriser (a blend's do) share its vector of the text too.
  const text::TfidfVectorizer* vectorised_by = nullptr;
  SparseVector x;
  std::vector<float> sum(static_cast<size_t>(classes()), 0.0f);
  for (const auto& member : members_) {
    std::vector<float> p;
    if (const auto* linear = dynamic_cast<const LinearTextModel*>(member.get())) {
      if (linear->shared_vectorizer().get() != vectorised_by) {
        vectorised_by = linear->shared_vectorizer().get();
        x = vectorised_by->transform(text.tokens);
      }
      p = linear->predict_features(x);
    } else {
      p = member->predict(text);
    }
    for (size_t c = 0; c < sum.size(); ++c) sum[c] += p[c];
  }
  for (auto& x : sum) x /= static_cast<float>(members_.size());
  return sum;
}

bool EnsembleTextModel::knows_word(std::string_view word) const {
  return std::any_of(members_.begin(), members_.end(), [&](const auto& m) { return m->knows_word(word); });
}

nlohmann::json EnsembleTextModel::params() const {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& m : members_) j.push_back({{"kind", m->kind()}, {"params", m->params()}});
  return {{"members", j}};
}

// Linear members trained on the same features share one vectoriser object; it is stored once,
// before the members, which name it by its position (-1: none).
std::string EnsembleTextModel::to_bytes() const {
  std::vector<const text::TfidfVectorizer*> shared;
  std::vector<int32_t> uses;
  for (const auto& m : members_) {
    const auto* linear = dynamic_cast<const LinearTextModel*>(m.get());
    if (!linear) {
      uses.push_back(-1);
      continue;
    }
    const auto* v = linear->shared_vectorizer().get();
    auto it = std::find(shared.begin(), shared.end(), v);
    if (it == shared.end()) it = shared.insert(shared.end(), v);
    uses.push_back(static_cast<int32_t>(it - shared.begin()));
  }
  ByteWriter w;
  w.put<uint32_t>(static_cast<uint32_t>(shared.size()));
  for (const auto* v : shared) w.put_string(v->to_bytes());
  w.put<uint32_t>(static_cast<uint32_t>(members_.size()));
  for (size_t i = 0; i < members_.size(); ++i) {
    w.put_string(members_[i]->kind());
    w.put<int32_t>(uses[i]);
    w.put_string(uses[i] >= 0 ? static_cast<const LinearTextModel&>(*members_[i]).to_bytes(false) : members_[i]->to_bytes());
  }
  return std::move(w.bytes());
}

std::unique_ptr<EnsembleTextModel> EnsembleTextModel::from_bytes(std::string_view bytes) {
  ByteReader r(bytes);
  const auto vectorizers = r.get<uint32_t>();
  if (vectorizers > 16) throw std::runtime_error("model payload is inconsistent: shared vectorisers");
  std::vector<std::shared_ptr<const text::TfidfVectorizer>> shared;
  for (uint32_t i = 0; i < vectorizers; ++i)
    shared.push_back(std::make_shared<text::TfidfVectorizer>(text::TfidfVectorizer::from_bytes(r.get_view())));
  const auto n = r.get<uint32_t>();
  if (n == 0 || n > 16) throw std::runtime_error("model payload is inconsistent: ensemble size");
  std::vector<std::shared_ptr<const TextModel>> members;
  for (uint32_t i = 0; i < n; ++i) {
    const std::string kind = r.get_string();
    if (kind == "ensemble") throw std::runtime_error("model payload is inconsistent: nested ensemble");
    const auto use = r.get<int32_t>();
    if (use < -1 || use >= static_cast<int32_t>(shared.size()) || (use >= 0 && kind != "tfidf-linear"))
      throw std::runtime_error("model payload is inconsistent: a member names no stored vectoriser");
    members.push_back(use >= 0 ? LinearTextModel::from_bytes(r.get_view(), shared[static_cast<size_t>(use)])
                               : text_model_from_bytes(kind, r.get_view()));
  }
  try {
    return std::make_unique<EnsembleTextModel>(std::move(members));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("model payload is inconsistent: ") + e.what());
  }
}

std::unique_ptr<TextModel> text_model_from_bytes(const std::string& kind, std::string_view bytes) {
  if (kind == "ensemble") return EnsembleTextModel::from_bytes(bytes);
  if (kind == "tfidf-linear") return LinearTextModel::from_bytes(bytes);
  if (kind == "fasttext") return FastTextModel::from_bytes(bytes);
  throw std::runtime_error("unknown text model kind '" + kind + "'");
}

int argmax(const std::vector<float>& p) {
  if (p.empty()) return -1;
  return static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
}

}  // namespace persona::ml
