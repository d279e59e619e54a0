#include "persona/ml/tabular.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "persona/core/binary_io.h"
#include "persona/ml/model_file.h"

namespace persona::ml {

std::unique_ptr<TabularClassifier> make_logistic(const Params& params);
std::unique_ptr<TabularClassifier> make_mlp(const Params& params);
std::unique_ptr<TabularClassifier> make_xgboost(const Params& params);

TabularData TabularData::subset(const std::vector<size_t>& rows) const {
  TabularData out;
  out.feature_names = feature_names;
  out.class_names = class_names;
  out.x.resize(static_cast<Eigen::Index>(rows.size()), x.cols());
  for (size_t i = 0; i < rows.size(); ++i) {
    out.x.row(static_cast<Eigen::Index>(i)) = x.row(static_cast<Eigen::Index>(rows[i]));
    out.y.push_back(y[rows[i]]);
  }
  return out;
}

std::vector<double> TabularClassifier::predict_positive(const Matrix& x) const {
  const Matrix p = predict_proba(x);
  std::vector<double> out(static_cast<size_t>(p.rows()));
  for (Eigen::Index i = 0; i < p.rows(); ++i) out[static_cast<size_t>(i)] = p(i, p.cols() - 1);
  return out;
}

namespace {

// The mean of the members' probabilities: logistic regression, MLP and boosted trees make
// different mistakes, so their average ranks customers better than each alone more often
// than not; `auto` keeps it only when cross-validation agrees.
class Ensemble : public TabularClassifier {
 public:
  explicit Ensemble(const Params& params) {
    std::map<std::string, Params> split;
    for (const auto& [name, value] : params) {
      const auto dot = name.find('.');
      if (dot == std::string::npos)
        throw std::invalid_argument("ensemble parameters are learner.name, e.g. logistic.C, not '" + name + "'");
      split[name.substr(0, dot)][name.substr(dot + 1)] = value;
    }
    for (const char* kind : {"logistic", "mlp", "xgboost"}) members_.push_back(make_tabular_classifier(kind, split[kind]));
  }
  std::string kind() const override { return "ensemble"; }
  void fit(const TabularData& data) override {
    for (auto& m : members_) m->fit(data);
  }
  Matrix predict_proba(const Matrix& x) const override {
    Matrix sum = members_[0]->predict_proba(x);
    for (size_t i = 1; i < members_.size(); ++i) sum += members_[i]->predict_proba(x);
    return sum / static_cast<float>(members_.size());
  }
  nlohmann::json params() const override {
    nlohmann::json j;
    for (const auto& m : members_) j[m->kind()] = m->params();
    return j;
  }
  std::string to_bytes() const override {
    ByteWriter w;
    for (const auto& m : members_) w.put_string(m->to_bytes());
    return std::move(w.bytes());
  }
  void from_bytes(std::string_view bytes) override {
    ByteReader r(bytes);
    for (auto& m : members_) m->from_bytes(r.get_string());
  }

 private:
  std::vector<std::unique_ptr<TabularClassifier>> members_;
};

}  // namespace

std::unique_ptr<TabularClassifier> make_tabular_classifier(const std::string& kind, const Params& params) {
  if (kind == "ensemble") return std::make_unique<Ensemble>(params);
  if (kind == "logistic") return make_logistic(params);
  if (kind == "mlp") return make_mlp(params);
  if (kind == "xgboost") return make_xgboost(params);
  throw std::invalid_argument("unknown learner '" + kind + "' (use logistic, mlp, xgboost or ensemble)");
}

void Standardizer::fit(const Matrix& raw, bool log_skewed) {
  log_column.assign(static_cast<size_t>(raw.cols()), 0);
  if (log_skewed && raw.rows() > 0)
    for (Eigen::Index c = 0; c < raw.cols(); ++c) {
      std::vector<float> v(raw.col(c).data(), raw.col(c).data() + raw.rows());
      if (raw.col(c).minCoeff() < 0) continue;
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
      const float median = v[v.size() / 2];
      log_column[static_cast<size_t>(c)] = raw.col(c).mean() > 2 * median && raw.col(c).maxCoeff() > 1;
    }
  const Matrix x = apply_log(raw);
  mean = x.colwise().mean();
  scale.resize(x.cols());
  for (Eigen::Index c = 0; c < x.cols(); ++c) {
    const float sd = std::sqrt((x.col(c).array() - mean(c)).square().mean());
    scale(c) = sd > 1e-12f ? sd : 1.0f;
  }
}

Matrix Standardizer::apply_log(const Matrix& raw) const {
  Matrix x = raw;
  for (Eigen::Index c = 0; c < x.cols(); ++c)
    if (static_cast<size_t>(c) < log_column.size() && log_column[static_cast<size_t>(c)])
      x.col(c) = x.col(c).array().max(0.0f).log1p().matrix();
  return x;
}

Matrix Standardizer::apply(const Matrix& raw) const {
  return ((apply_log(raw).rowwise() - mean).array().rowwise() / scale.array()).matrix();
}

void Standardizer::write(ByteWriter& w) const {
  w.put<int64_t>(mean.size());
  for (Eigen::Index i = 0; i < mean.size(); ++i) {
    w.put<float>(mean(i));
    w.put<float>(scale(i));
    w.put<uint8_t>(static_cast<size_t>(i) < log_column.size() ? log_column[static_cast<size_t>(i)] : 0);
  }
}

void Standardizer::read(ByteReader& r, int64_t expected_columns) {
  const auto n = r.get<int64_t>();
  if (n != expected_columns) throw std::runtime_error("model payload is inconsistent: feature count differs");
  mean.resize(n);
  scale.resize(n);
  log_column.assign(static_cast<size_t>(n), 0);
  for (Eigen::Index i = 0; i < n; ++i) {
    mean(i) = r.get<float>();
    scale(i) = r.get<float>();
    log_column[static_cast<size_t>(i)] = r.get<uint8_t>();
  }
}

void save_tabular_model(const std::string& path, const std::string& task, const TabularClassifier& model,
                        const std::vector<std::string>& feature_names, const std::vector<std::string>& class_names,
                        const nlohmann::json& metrics) {
  ModelHeader h;
  h.kind = "tabular-classifier";
  h.task = task;
  h.schema = {{"learner", model.kind()}, {"features", feature_names}, {"classes", class_names},
              {"params", model.params()}};
  h.metrics = metrics.is_null() ? nlohmann::json::object() : metrics;
  ByteWriter w;
  w.put_string(model.kind());
  w.put_string(model.to_bytes());
  write_model_file(path, h, w.bytes());
}

LoadedTabularModel load_tabular_model(const std::string& path, const std::vector<std::string>& expected_features) {
  const ModelFile file = read_model_file(path, "tabular-classifier");
  LoadedTabularModel out;
  try {
    out.feature_names = file.header.schema.at("features").get<std::vector<std::string>>();
    out.class_names = file.header.schema.at("classes").get<std::vector<std::string>>();
  } catch (const std::exception&) {
    throw std::runtime_error(fmt::format("model file {}: header has no feature schema", path));
  }
  if (!expected_features.empty() && out.feature_names != expected_features)
    throw std::runtime_error(fmt::format("model file {}: was trained on features [{}], this task uses [{}]", path,
                                         fmt::join(out.feature_names, ", "), fmt::join(expected_features, ", ")));
  out.task = file.header.task;
  out.metrics = file.header.metrics;
  try {
    ByteReader r(file.payload);
    const std::string kind = r.get_string();
    out.model = make_tabular_classifier(kind);
    out.model->from_bytes(r.get_string());
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("model file {}: {}", path, e.what()));
  }
  return out;
}

// Shared parameter handling: defaults overridden by known names only.
Params merge_params(const std::string& kind, const Params& defaults, const Params& given) {
  Params out = defaults;
  for (const auto& [name, value] : given) {
    if (!defaults.count(name)) {
      std::vector<std::string> known;
      for (const auto& [k, v] : defaults) known.push_back(k);
      throw std::invalid_argument(
          fmt::format("unknown parameter '{}' for {} (known: {})", name, kind, fmt::join(known, ", ")));
    }
    out[name] = value;
  }
  return out;
}

}  // namespace persona::ml
