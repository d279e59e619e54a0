#include "persona/ml/tabular.h"

#include <fmt/format.h>

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

std::unique_ptr<TabularClassifier> make_tabular_classifier(const std::string& kind, const Params& params) {
  if (kind == "logistic") return make_logistic(params);
  if (kind == "mlp") return make_mlp(params);
  if (kind == "xgboost") return make_xgboost(params);
  throw std::invalid_argument("unknown learner '" + kind + "' (use logistic, mlp or xgboost)");
}

void Standardizer::fit(const Matrix& x) {
  mean = x.colwise().mean();
  scale.resize(x.cols());
  for (Eigen::Index c = 0; c < x.cols(); ++c) {
    const float sd = std::sqrt((x.col(c).array() - mean(c)).square().mean());
    scale(c) = sd > 1e-12f ? sd : 1.0f;
  }
}

Matrix Standardizer::apply(const Matrix& x) const {
  return ((x.rowwise() - mean).array().rowwise() / scale.array()).matrix();
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
