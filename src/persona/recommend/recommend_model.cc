#include "persona/recommend/recommend_model.h"

#include <fmt/format.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "persona/core/error.h"
#include "persona/core/json.h"
#include "persona/ml/model_file.h"

namespace persona::recommend {

namespace {
// What is true of an item recommended without a history item behind it, by what chose it.
std::string reason_without_a_cause(const std::string& method, bool has_history) {
  if (!has_history) return "popular now";
  if (method == "popularity") return "popular across the shop";
  if (method == "trending") return "popular in recent days";
  if (method == "repurchase") return "popular across the shop";  // not one of theirs: filled from popularity
  if (method == "content") return "like items you chose (category, brand, description)";
  return "chosen by customers whose choices are like yours";  // user-kNN, EASE, ALS, BPR, hybrids
}
}  // namespace

RecommendModel RecommendModel::train(const store::EventColumns& events, const InteractionOptions& options,
                                     const MethodSpec& spec, int threads, const UserSegments& segments) {
  InteractionOptions o = options;
  o.half_life_days = spec.half_life_days;
  const auto x = build_interactions(events, o);
  RecommendModel m;
  m.recommender_ = fit_recommender(x, spec, threads);
  if (!m.recommender_->item_similarity()) {
    MethodSpec item_knn;
    item_knn.method = "item-knn";
    m.neighbours_ = fit_recommender(x, item_knn, threads);
  }
  m.options_ = o;
  m.item_ids_.reserve(x.item_count());
  for (size_t i = 0; i < x.item_count(); ++i) m.item_ids_.emplace_back(x.items.name(static_cast<IdMap::Id>(i)));
  m.item_categories_ = x.item_categories;
  m.item_prices_ = x.item_prices;
  m.trending_ = x.trending;
  m.segment_popularity_ = SegmentPopularity(x, segments);
  m.rerank_ = spec.rerank;
  m.trained_.assign(x.item_count(), 0);
  for (const auto& r : x.rows)
    for (auto i : r.items) m.trained_[static_cast<size_t>(i)] = 1;
  // Content-based methods also rank items nobody has chosen yet (new items).
  if (m.recommender_->ranks_new_items())
    for (size_t i = 0; i < x.item_count(); ++i)
      if (!x.item_documents[i].empty()) m.trained_[i] = 1;
  for (const auto& id : m.item_ids_) m.item_index_.intern(id);
  return m;
}

void RecommendModel::save(const std::string& path, const nlohmann::json& metrics) const {
  ByteWriter w;
  write_recommender(*recommender_, w);
  w.put_string(options_.to_json().dump());
  w.put<uint64_t>(item_ids_.size());
  for (size_t i = 0; i < item_ids_.size(); ++i) {
    w.put_string(item_ids_[i]);
    w.put_string(item_categories_[i]);
  }
  w.put_vector(item_prices_);
  w.put_vector(trained_);
  w.put_vector(trending_);
  segment_popularity_.write(w);
  w.put<uint8_t>(neighbours_ ? 1 : 0);
  if (neighbours_) write_recommender(*neighbours_, w);
  ml::ModelHeader header;
  header.kind = "recommender";
  header.task = "recommend";
  header.schema = {{"method", recommender_->params()}, {"items", item_ids_.size()}, {"interactions", options_.to_json()}};
  header.metrics = metrics;
  ml::write_model_file(path, header, w.bytes());
  version_ = store::model_checksum(w.bytes()).substr(0, 12);
}

RecommendModel RecommendModel::load(const std::string& path) {
  const auto file = ml::read_model_file(path, "recommender");
  try {
    ByteReader r(file.payload);
    RecommendModel m;
    m.recommender_ = read_recommender(r);
    m.options_ = InteractionOptions::from_json(parse_json_or_throw(r.get_string(), {}));
    const auto n = r.get<uint64_t>();
    for (uint64_t i = 0; i < n; ++i) {
      m.item_ids_.push_back(r.get_string());
      m.item_categories_.push_back(r.get_string());
    }
    m.item_prices_ = r.get_vector<double>();
    m.trained_ = r.get_vector<uint8_t>();
    m.trending_ = r.get_vector<float>();
    // Files written before segments existed end here: no segment popularity, no reranking.
    if (!r.done()) m.segment_popularity_ = SegmentPopularity::read(r);
    // Files written before the item-kNN beside other methods end here.
    if (!r.done() && r.get<uint8_t>() == 1) m.neighbours_ = read_recommender(r);
    m.rerank_ = MethodSpec::from_json(m.recommender_->params()).rerank;
    if (m.item_prices_.size() != n || m.trained_.size() != n || m.trending_.size() != n)
      throw std::runtime_error("the item tables do not match");
    for (const auto& id : m.item_ids_) m.item_index_.intern(id);
    m.metrics_ = file.header.metrics;
    m.version_ = store::model_checksum(file.payload).substr(0, 12);
    return m;
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: not a usable recommender model: {}", path, e.what()));
  }
}

std::optional<Choice> RecommendModel::choice_of(const store::EventColumns& e, size_t k) const {
  const double w = options_.weights[e.type[k]];
  if (w <= 0) return std::nullopt;
  const auto item = item_index_.find(e.item_ids[static_cast<size_t>(e.item[k])]);
  if (!item) return std::nullopt;  // an item the model has not seen: nothing to score it by
  return Choice{static_cast<int32_t>(*item), w, e.timestamp[k]};
}

Row RecommendModel::history(const store::EventColumns& e) const {
  std::vector<Choice> choices;
  for (size_t k = 0; k < e.size(); ++k)
    if (const auto c = choice_of(e, k)) choices.push_back(*c);
  return make_row(choices, options_.half_life_days);
}

std::vector<Row> RecommendModel::histories(const store::EventColumns& e) const {
  std::vector<std::vector<Choice>> choices(e.user_ids.size());
  for (size_t k = 0; k < e.size(); ++k)
    if (const auto c = choice_of(e, k)) choices[static_cast<size_t>(e.user[k])].push_back(*c);
  std::vector<Row> out;
  out.reserve(choices.size());
  for (const auto& c : choices) out.push_back(make_row(c, options_.half_life_days));
  return out;
}

std::vector<Recommendation> RecommendModel::recommend(const Row& history, const RecommendRequest& q) const {
  if (q.k == 0) return {};
  std::vector<uint8_t> allowed = trained_;
  for (size_t i = 0; i < allowed.size(); ++i) {
    if (!allowed[i]) continue;
    if (!q.category.empty() && item_categories_[i].rfind(q.category, 0) != 0) allowed[i] = 0;
    const double price = item_prices_[i];
    if ((q.min_price || q.max_price) && !std::isfinite(price)) allowed[i] = 0;
    if (q.min_price && price < *q.min_price) allowed[i] = 0;
    if (q.max_price && price > *q.max_price) allowed[i] = 0;
  }
  for (const auto& id : q.exclude_items)
    if (const auto i = item_index_.find(id)) allowed[*i] = 0;
  const auto* segment_popular = segment_popularity_.of(q.segment);
  size_t wanted = std::min(q.diversity > 0 ? q.k * 5 : q.k, allowed.size());
  if (rerank_.active()) wanted = std::max(wanted, std::min(rerank_.candidates, allowed.size()));
  std::vector<Scored> ranked;
  if (auto candidates = recommender_->candidates(history, std::max<size_t>(wanted * 10, wanted + history.size() + 100))) {
    // A large catalogue: only the index's candidates are ranked (the filters still apply).
    for (const auto& c : *candidates) {
      if (!allowed[static_cast<size_t>(c.item)]) continue;
      if (q.exclude_seen && std::binary_search(history.items.begin(), history.items.end(), c.item)) continue;
      ranked.push_back(c);
      if (ranked.size() == wanted) break;
    }
  } else {
    std::vector<float> scores;
    recommender_->score(history, scores);
    if (history.size() == 0) {
      // A new user: what is popular in their segment, or popular now (all-time popularity,
      // already in the scores, breaks ties).
      const auto& boost = segment_popular ? *segment_popular : trending_;
      float top = 0;
      for (float t : boost) top = std::max(top, t);
      for (size_t i = 0; i < scores.size() && i < boost.size() && top > 0; ++i) scores[i] += boost[i] / top;
    }
    ranked = top_k(scores, allowed, wanted, q.exclude_seen ? &history : nullptr);
  }
  if (rerank_.active()) {
    rerank(rerank_, {item_categories_, item_prices_, segment_popularity_}, history, q.segment, ranked);
    if (q.diversity <= 0) ranked.resize(std::min(ranked.size(), q.k));
  }
  if (q.diversity > 0) ranked = diversify(ranked, q.k, q.diversity);
  std::vector<Recommendation> out;
  for (const auto& s : ranked) {
    Recommendation r;
    r.item = item_ids_[static_cast<size_t>(s.item)];
    r.category = item_categories_[static_cast<size_t>(s.item)];
    r.score = s.score;
    const auto because = recommender_->because_of(history, s.item);
    if (because == s.item) {
      r.reason = "you chose it before";
    } else if (because >= 0) {
      r.because = item_ids_[static_cast<size_t>(because)];
      r.reason = "similar to " + r.because + ", which you chose";
    } else if (segment_popular && (*segment_popular)[static_cast<size_t>(s.item)] >= 0.5f &&
               (history.size() == 0 || rerank_.segment > 0)) {
      r.reason = "popular in your segment";
    } else {
      r.reason = reason_without_a_cause(recommender_->method(), history.size() > 0);
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Scored> RecommendModel::diversify(const std::vector<Scored>& ranked, size_t k, double diversity) const {
  // Greedy MMR over the candidates: relevance (scores scaled to 0..1) against similarity to what
  // is already chosen (1 for the same category, else 0).
  if (ranked.empty()) return ranked;
  const float top = ranked.front().score, bottom = ranked.back().score;
  const float span = top > bottom ? top - bottom : 1;
  std::vector<Scored> chosen;
  std::vector<uint8_t> used(ranked.size(), 0);
  std::set<std::string> categories;
  while (chosen.size() < k && chosen.size() < ranked.size()) {
    size_t best = ranked.size();
    double best_value = -1e300;
    for (size_t c = 0; c < ranked.size(); ++c) {
      if (used[c]) continue;
      const double relevance = (ranked[c].score - bottom) / span;
      const auto& category = item_categories_[static_cast<size_t>(ranked[c].item)];
      const double overlap = !category.empty() && categories.count(category) ? 1 : 0;
      const double value = (1 - diversity) * relevance - diversity * overlap;
      if (value > best_value) best_value = value, best = c;
    }
    used[best] = 1;
    chosen.push_back(ranked[best]);
    categories.insert(item_categories_[static_cast<size_t>(ranked[best].item)]);
  }
  return chosen;
}

RecommendService::RecommendService(std::shared_ptr<const RecommendModel> model) : model_(std::move(model)) {}

RecommendService::~RecommendService() {
  std::lock_guard lock(worker_mutex_);
  if (worker_.joinable()) worker_.join();
}

std::shared_ptr<const RecommendModel> RecommendService::model() const { return std::atomic_load(&model_); }

void RecommendService::swap(std::shared_ptr<const RecommendModel> next) { std::atomic_store(&model_, std::move(next)); }

bool RecommendService::retrain_async(std::function<RecommendModel()> train) {
  std::lock_guard lock(worker_mutex_);
  {
    std::lock_guard state(state_mutex_);
    if (running_) return false;
    running_ = true;
  }
  if (worker_.joinable()) worker_.join();  // the last one, finished
  worker_ = std::thread([this, train = std::move(train)] {
    try {
      swap(std::make_shared<const RecommendModel>(train()));
      std::lock_guard lock(error_mutex_);
      error_.clear();
    } catch (const std::exception& e) {  // the old model keeps serving
      std::lock_guard lock(error_mutex_);
      error_ = e.what();
    }
    {
      std::lock_guard state(state_mutex_);
      running_ = false;
    }
    finished_.notify_all();
  });
  return true;
}

// Any number of threads may wait at once (erasures do): none joins the worker.
void RecommendService::wait() {
  std::unique_lock state(state_mutex_);
  finished_.wait(state, [this] { return !running_; });
}

std::string RecommendService::last_error() const {
  std::lock_guard lock(error_mutex_);
  return error_;
}

std::vector<Recommendation> RecommendModel::similar(const std::string& item, size_t k,
                                                    const std::vector<std::string>& exclude) const {
  const auto index = item_index_.find(item);
  if (!index) throw Error(fmt::format("the model does not know item {}", quote_value(item)), {},
                          "check the id, or retrain after the item has events");
  std::set<std::string> excluded(exclude.begin(), exclude.end());
  std::vector<Recommendation> out;
  const Recommender& by = neighbours_ ? *neighbours_ : *recommender_;
  for (const auto& s : by.similar(static_cast<int32_t>(*index), k + excluded.size())) {
    if (out.size() == k) break;
    if (excluded.count(item_ids_[static_cast<size_t>(s.item)])) continue;
    Recommendation r;
    r.item = item_ids_[static_cast<size_t>(s.item)];
    r.category = item_categories_[static_cast<size_t>(s.item)];
    r.score = s.score;
    r.reason = "chosen by the same customers";
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace persona::recommend
