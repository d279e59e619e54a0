#include "persona/ml/linear_text_model.h"

#include <Imath/half.h>
#include <linear.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "persona/core/binary_io.h"

namespace persona::ml {
namespace {

void quiet(const char*) {}

int liblinear_solver(LinearSolver s) {
  switch (s) {
    case LinearSolver::LogisticRegression: return L2R_LR_DUAL;
    case LinearSolver::Svm: return L2R_L2LOSS_SVC_DUAL;
    case LinearSolver::CrammerSinger: return MCSVM_CS;
  }
  return L2R_LR_DUAL;
}

void softmax(std::vector<float>& v, float temperature) {
  float top = *std::max_element(v.begin(), v.end());
  double sum = 0;
  for (auto& x : v) sum += x = std::exp((x - top) * temperature);
  for (auto& x : v) x = static_cast<float>(x / sum);
}

}  // namespace

const char* linear_solver_name(LinearSolver s) {
  switch (s) {
    case LinearSolver::LogisticRegression: return "logistic";
    case LinearSolver::Svm: return "svm";
    case LinearSolver::CrammerSinger: return "crammer-singer";
  }
  return "logistic";
}

nlohmann::json LinearTextParams::to_json() const {
  return {{"solver", linear_solver_name(solver)},
          {"C", c},
          {"word_ngrams", tfidf.word_ngrams},
          {"char_ngrams", tfidf.use_chars},
          {"han_ngrams", {tfidf.chars.han_min, tfidf.chars.han_max}},
          {"latin_ngrams", {tfidf.chars.latin_min, tfidf.chars.latin_max}},
          {"min_df", tfidf.min_df}};
}

std::unique_ptr<LinearTextModel> LinearTextModel::train(const LabelledTexts& data, const LinearTextParams& params,
                                                        int threads) {
  auto vectorizer = std::make_shared<text::TfidfVectorizer>(params.tfidf);
  vectorizer->fit(data.texts, threads);
  const auto x = vectorizer->transform_all(data.texts, threads);
  return train_on_features(x, data.labels, static_cast<int>(data.label_names.size()), vectorizer, params);
}

std::unique_ptr<LinearTextModel> LinearTextModel::train_on_features(
    const std::vector<SparseVector>& x, const std::vector<int>& labels, int classes,
    std::shared_ptr<const text::TfidfVectorizer> vectorizer, const LinearTextParams& params) {
  if (x.empty()) throw std::invalid_argument("no training texts");
  static std::once_flag silence;
  std::call_once(silence, [] { set_print_string_function(quiet); });
  const int32_t dim = vectorizer->dimension();
  // liblinear wants 1-based feature nodes ending in index -1, with the bias as feature dim + 1.
  std::vector<feature_node> nodes;
  size_t total = 0;
  for (const auto& v : x) total += v.size() + 2;
  nodes.reserve(total);
  std::vector<size_t> starts;
  for (const auto& v : x) {
    starts.push_back(nodes.size());
    for (size_t i = 0; i < v.size(); ++i) nodes.push_back({v.index[i] + 1, v.value[i]});
    nodes.push_back({dim + 1, 1.0});
    nodes.push_back({-1, 0});
  }
  std::vector<feature_node*> rows;
  for (size_t s : starts) rows.push_back(nodes.data() + s);
  std::vector<double> y(labels.begin(), labels.end());
  problem prob{};
  prob.l = static_cast<int>(x.size());
  prob.n = dim + 1;
  prob.y = y.data();
  prob.x = rows.data();
  prob.bias = 1.0;
  parameter param{};
  param.solver_type = liblinear_solver(params.solver);
  param.C = params.c;
  param.eps = params.solver == LinearSolver::CrammerSinger ? 0.1 : 0.1;
  param.p = 0.1;
  if (const char* err = check_parameter(&prob, &param)) throw std::invalid_argument(err);
  model* m = ::train(&prob, &param);

  auto out = std::make_unique<LinearTextModel>();
  out->params_ = params;
  out->vectorizer_ = std::move(vectorizer);
  out->classes_ = classes;
  out->dimension_ = dim;
  std::vector<float> weights(static_cast<size_t>(dim) * static_cast<size_t>(classes), 0.0f);
  out->bias_.assign(static_cast<size_t>(classes), 0.0f);
  const int nr_class = get_nr_class(m);
  std::vector<int> model_labels(static_cast<size_t>(nr_class));
  get_labels(m, model_labels.data());
  // Classes absent from the training rows keep zero weights and a very low bias.
  for (int c = 0; c < classes; ++c) out->bias_[static_cast<size_t>(c)] = -1e3f;
  if (nr_class == 1) {
    out->bias_[static_cast<size_t>(model_labels[0])] = 0;
  } else if (nr_class == 2 && params.solver != LinearSolver::CrammerSinger) {
    // One weight vector, positive for model_labels[0]: split it as +w/2 and -w/2.
    const auto a = static_cast<size_t>(model_labels[0]), b = static_cast<size_t>(model_labels[1]);
    for (int32_t j = 0; j < dim; ++j) {
      const float w = static_cast<float>(m->w[j]) / 2;
      weights[static_cast<size_t>(j) * static_cast<size_t>(classes) + a] = w;
      weights[static_cast<size_t>(j) * static_cast<size_t>(classes) + b] = -w;
    }
    out->bias_[a] = static_cast<float>(m->w[dim]) / 2;
    out->bias_[b] = -out->bias_[a];
  } else {
    for (int32_t j = 0; j < dim; ++j)
      for (int c = 0; c < nr_class; ++c)
        weights[static_cast<size_t>(j) * static_cast<size_t>(classes) + static_cast<size_t>(model_labels[static_cast<size_t>(c)])] =
            static_cast<float>(m->w[static_cast<size_t>(j) * static_cast<size_t>(nr_class) + static_cast<size_t>(c)]);
    for (int c = 0; c < nr_class; ++c)
      out->bias_[static_cast<size_t>(model_labels[static_cast<size_t>(c)])] =
          static_cast<float>(m->w[static_cast<size_t>(dim) * static_cast<size_t>(nr_class) + static_cast<size_t>(c)]);
  }
  free_and_destroy_model(&m);
  out->weights_.resize(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) out->weights_[i] = imath_float_to_half(weights[i]);
  return out;
}

void LinearTextModel::scores(const SparseVector& x, std::vector<float>& out) const {
  out.assign(bias_.begin(), bias_.end());
  const size_t k = static_cast<size_t>(classes_);
  for (size_t i = 0; i < x.size(); ++i) {
    if (x.index[i] >= dimension_) continue;
    const uint16_t* w = weights_.data() + static_cast<size_t>(x.index[i]) * k;
    const float v = x.value[i];
    for (size_t c = 0; c < k; ++c) out[c] += v * imath_half_to_float(w[c]);
  }
}

std::vector<float> LinearTextModel::predict_features(const SparseVector& x) const {
  std::vector<float> s;
  scores(x, s);
  softmax(s, temperature_);
  return s;
}

std::vector<float> LinearTextModel::predict(const text::PreparedText& text) const {
  return predict_features(vectorizer_->transform(text.tokens));
}

void LinearTextModel::fit_temperature(const std::vector<SparseVector>& x, const std::vector<int>& labels) {
  if (x.empty()) return;
  std::vector<std::vector<float>> raw(x.size());
  for (size_t i = 0; i < x.size(); ++i) scores(x[i], raw[i]);
  double best_loss = INFINITY;
  float best = 1;
  // Cross-entropy against targets smoothed by 1%: on validation texts the model separates
  // perfectly, plain cross-entropy only falls as the temperature rises, and the probabilities
  // would all be 1 (no confidence left to tell an unfamiliar text by).
  constexpr double kSmoothing = 0.01;
  for (double t = 0.25; t <= 256; t *= 1.25) {
    double loss = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      std::vector<float> p = raw[i];
      softmax(p, static_cast<float>(t));
      double spread = 0;
      for (float q : p) spread += std::log(std::max(1e-12f, q));
      loss -= (1 - kSmoothing) * std::log(std::max(1e-12f, p[static_cast<size_t>(labels[i])])) +
              kSmoothing * spread / static_cast<double>(p.size());
    }
    if (loss < best_loss) {
      best_loss = loss;
      best = static_cast<float>(t);
    }
  }
  temperature_ = best;
}

std::string LinearTextModel::to_bytes(bool with_vectorizer) const {
  ByteWriter w;
  w.put_string(params_.to_json().dump());
  w.put<int32_t>(static_cast<int32_t>(params_.solver));
  w.put<double>(params_.c);
  w.put<int32_t>(classes_);
  w.put<int32_t>(dimension_);
  w.put<float>(temperature_);
  w.put_vector(weights_);
  w.put_vector(bias_);
  w.put<uint8_t>(with_vectorizer);
  if (with_vectorizer) w.put_string(vectorizer_->to_bytes());
  return std::move(w.bytes());
}

std::unique_ptr<LinearTextModel> LinearTextModel::from_bytes(std::string_view bytes,
                                                             std::shared_ptr<const text::TfidfVectorizer> shared) {
  ByteReader r(bytes);
  auto m = std::make_unique<LinearTextModel>();
  r.get_view();  // the readable parameters, for people reading the file
  m->params_.solver = static_cast<LinearSolver>(r.get<int32_t>());
  m->params_.c = r.get<double>();
  m->classes_ = r.get<int32_t>();
  m->dimension_ = r.get<int32_t>();
  m->temperature_ = r.get<float>();
  m->weights_ = r.get_vector<uint16_t>();
  m->bias_ = r.get_vector<float>();
  if (r.get<uint8_t>() != 0)
    m->vectorizer_ = std::make_shared<text::TfidfVectorizer>(text::TfidfVectorizer::from_bytes(r.get_view()));
  else if (shared)
    m->vectorizer_ = std::move(shared);
  else
    throw std::runtime_error("model payload is inconsistent: a linear model without its vectoriser");
  m->params_.tfidf = m->vectorizer_->options();
  if (m->classes_ <= 0 || m->bias_.size() != static_cast<size_t>(m->classes_) ||
      m->weights_.size() != static_cast<size_t>(m->dimension_) * static_cast<size_t>(m->classes_) ||
      m->vectorizer_->dimension() != m->dimension_)
    throw std::runtime_error("model payload is inconsistent: weight sizes do not match");
  return m;
}

}  // namespace persona::ml
