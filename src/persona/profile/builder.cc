#include "persona/profile/builder.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "persona/core/time.h"

namespace persona::profile {
namespace {

constexpr int64_t kDay = 86400;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Floor division for days before 1970.
int64_t day_of(int64_t t) { return t >= 0 ? t / kDay : -((-t + kDay - 1) / kDay); }

bool all_digits(const std::string& s, std::string_view& digits) {
  std::string_view v = s;
  if (v.size() > 2 && v.substr(v.size() - 2) == ".0") v.remove_suffix(2);  // 12346.0, as spreadsheets write ids
  if (v.empty() || v.size() > 18) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  digits = v;
  return true;
}

std::vector<Share> top_shares(const std::unordered_map<int32_t, double>& weights, const IdMap& names, size_t n) {
  double total = 0;
  for (const auto& [k, w] : weights) total += w;
  std::vector<Share> out;
  if (total <= 0) return out;
  for (const auto& [k, w] : weights) out.push_back({std::string(names.name(static_cast<IdMap::Id>(k))), w / total});
  std::sort(out.begin(), out.end(), [](const Share& a, const Share& b) {
    return a.share != b.share ? a.share > b.share : a.name < b.name;
  });
  if (out.size() > n) out.resize(n);
  return out;
}

// Ranks `values` ascending (ties by user id) and cuts the ranks into `bins` equal-count bins.
std::vector<int> rank_bins(const std::vector<double>& values, const std::vector<std::string>& ids, int bins) {
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (values[a] != values[b]) return values[a] < values[b];
    return user_id_less(ids[a], ids[b]);
  });
  std::vector<int> out(values.size());
  const size_t n = values.size();
  for (size_t rank = 0; rank < n; ++rank) out[order[rank]] = static_cast<int>(rank * static_cast<size_t>(bins) / n) + 1;
  return out;
}

const char* level_name(int tertile) { return tertile == 1 ? "low" : tertile == 2 ? "mid" : "high"; }

}  // namespace

bool user_id_less(const std::string& a, const std::string& b) {
  std::string_view da, db;
  const bool na = all_digits(a, da), nb = all_digits(b, db);
  if (na && nb) {
    const auto ta = da.find_first_not_of('0'), tb = db.find_first_not_of('0');
    const std::string_view sa = ta == std::string_view::npos ? "" : da.substr(ta);
    const std::string_view sb = tb == std::string_view::npos ? "" : db.substr(tb);
    if (sa.size() != sb.size()) return sa.size() < sb.size();
    if (sa != sb) return sa < sb;
    return a < b;
  }
  if (na != nb) return na;  // numbers before other ids
  return a < b;
}

std::vector<int> quintile_scores(const std::vector<double>& values, const std::vector<std::string>& ids) {
  return rank_bins(values, ids, 5);
}

std::string rfm_segment_name(int r, int f) {
  // The widely used RFM segment map over recency and frequency scores.
  if (r <= 0 || f <= 0) return "no purchases";
  if (r <= 2) return f <= 2 ? "hibernating" : f <= 4 ? "at risk" : "can't lose them";
  if (r == 3) return f <= 2 ? "about to sleep" : f == 3 ? "need attention" : "loyal customers";
  if (r == 4) return f == 1 ? "promising" : f <= 3 ? "potential loyalists" : "loyal customers";
  return f == 1 ? "new customers" : f <= 3 ? "potential loyalists" : "champions";
}

int64_t default_as_of(const store::EventColumns& events) {
  if (events.size() == 0) return 0;
  return midnight_after(*std::max_element(events.timestamp.begin(), events.timestamp.end()));
}

int64_t midnight_after(int64_t timestamp) { return (day_of(timestamp) + 1) * kDay; }

nlohmann::json ProfileOptions::to_json() const {
  nlohmann::json w;
  for (int t = 0; t < kEventTypeCount; ++t) w[event_type_name(static_cast<EventType>(t))] = weights[static_cast<size_t>(t)];
  return {{"half_life_days", half_life_days}, {"weights", w}, {"top_n", top_n}, {"keywords", keywords}};
}

// ---------------------------------------------------------------------------------------------
// Catalogue

Catalogue Catalogue::from_events(const store::EventColumns& e) {
  Catalogue c;
  const size_t n = e.item_ids.size();
  c.item_category.assign(n, -1);
  c.item_brand.assign(n, -1);
  c.item_price.assign(n, kNaN);
  c.item_band.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    c.items.intern(e.item_ids[i]);
    if (i < e.item_categories.size() && !e.item_categories[i].empty())
      c.item_category[i] = static_cast<int32_t>(c.categories.intern(e.item_categories[i]));
    if (i < e.item_brands.size() && !e.item_brands[i].empty())
      c.item_brand[i] = static_cast<int32_t>(c.brands.intern(e.item_brands[i]));
    if (i < e.item_prices.size() && std::isfinite(e.item_prices[i]) && e.item_prices[i] > 0) c.item_price[i] = e.item_prices[i];
  }
  // Items without a catalogue price: the median unit price paid for them.
  std::vector<std::vector<double>> paid(n);
  for (size_t k = 0; k < e.size(); ++k)
    if (e.type[k] == static_cast<uint8_t>(EventType::Purchase) && std::isfinite(e.value[k]) && e.value[k] > 0)
      paid[static_cast<size_t>(e.item[k])].push_back(e.value[k]);
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(c.item_price[i]) && !paid[i].empty()) c.item_price[i] = median(std::move(paid[i]));
  // Each category's typical price and band edges: the median and tertiles of its item prices.
  std::vector<std::vector<double>> prices(c.categories.size());
  std::vector<double> all;
  for (size_t i = 0; i < n; ++i)
    if (std::isfinite(c.item_price[i])) {
      all.push_back(c.item_price[i]);
      if (c.item_category[i] >= 0) prices[static_cast<size_t>(c.item_category[i])].push_back(c.item_price[i]);
    }
  auto tertiles = [](std::vector<double> v) -> std::array<double, 2> {
    if (v.size() < 3) return {kNaN, kNaN};
    std::sort(v.begin(), v.end());
    return {v[v.size() / 3], v[v.size() * 2 / 3]};
  };
  const auto global_edges = tertiles(all);
  c.typical_price.assign(c.categories.size(), kNaN);
  c.band_edges.assign(c.categories.size(), global_edges);
  for (size_t k = 0; k < prices.size(); ++k) {
    c.typical_price[k] = median(prices[k]);
    if (prices[k].size() >= 3) c.band_edges[k] = tertiles(prices[k]);
  }
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(c.item_price[i])) continue;
    const auto& edges = c.item_category[i] >= 0 ? c.band_edges[static_cast<size_t>(c.item_category[i])] : global_edges;
    if (!std::isfinite(edges[0])) continue;
    c.item_band[i] = static_cast<int8_t>(c.item_price[i] < edges[0] ? 0 : c.item_price[i] < edges[1] ? 1 : 2);
  }
  return c;
}

int32_t Catalogue::add_item(std::string_view id, std::string_view category, std::string_view brand, double price) {
  if (auto known = items.find(id)) return static_cast<int32_t>(*known);
  const auto index = static_cast<int32_t>(items.intern(id));
  int32_t cat = -1;
  if (!category.empty()) {
    cat = static_cast<int32_t>(categories.intern(category));
    if (static_cast<size_t>(cat) >= typical_price.size()) {
      typical_price.push_back(kNaN);
      band_edges.push_back({kNaN, kNaN});
    }
  }
  item_category.push_back(cat);
  item_brand.push_back(brand.empty() ? -1 : static_cast<int32_t>(brands.intern(brand)));
  item_price.push_back(std::isfinite(price) && price > 0 ? price : kNaN);
  int8_t band = -1;
  if (cat >= 0 && std::isfinite(item_price.back()) && std::isfinite(band_edges[static_cast<size_t>(cat)][0])) {
    const auto& edges = band_edges[static_cast<size_t>(cat)];
    band = static_cast<int8_t>(price < edges[0] ? 0 : price < edges[1] ? 1 : 2);
  }
  item_band.push_back(band);
  return index;
}

nlohmann::json Catalogue::to_json() const {
  auto num = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json items_json = nlohmann::json::array(), cats = nlohmann::json::array(), brands_json = nlohmann::json::array();
  for (size_t i = 0; i < items.size(); ++i)
    items_json.push_back({items.name(static_cast<IdMap::Id>(i)), item_category[i], item_brand[i], num(item_price[i]), item_band[i]});
  for (size_t k = 0; k < categories.size(); ++k)
    cats.push_back({categories.name(static_cast<IdMap::Id>(k)), num(typical_price[k]), num(band_edges[k][0]), num(band_edges[k][1])});
  for (size_t b = 0; b < brands.size(); ++b) brands_json.push_back(brands.name(static_cast<IdMap::Id>(b)));
  return {{"items", items_json}, {"categories", cats}, {"brands", brands_json}};
}

Catalogue Catalogue::from_json(const nlohmann::json& j) {
  auto num = [](const nlohmann::json& v) { return v.is_null() ? kNaN : v.get<double>(); };
  Catalogue c;
  for (const auto& k : j.at("categories")) {
    c.categories.intern(k.at(0).get<std::string>());
    c.typical_price.push_back(num(k.at(1)));
    c.band_edges.push_back({num(k.at(2)), num(k.at(3))});
  }
  for (const auto& b : j.at("brands")) c.brands.intern(b.get<std::string>());
  for (const auto& i : j.at("items")) {
    c.items.intern(i.at(0).get<std::string>());
    c.item_category.push_back(i.at(1).get<int32_t>());
    c.item_brand.push_back(i.at(2).get<int32_t>());
    c.item_price.push_back(num(i.at(3)));
    c.item_band.push_back(i.at(4).get<int8_t>());
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Builder

// Everything one user's profile needs, updated event by event. The decayed affinity weights are
// kept relative to the user's latest event (decay_ref): a newer event first ages them, an older
// one (arriving late) enters already aged, so the order of arrival does not change the result.
struct ProfileBuilder::UserState {
  std::optional<int64_t> signup;
  int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
  int64_t last_purchase = std::numeric_limits<int64_t>::min();
  int64_t decay_ref = std::numeric_limits<int64_t>::min();
  std::unordered_map<int32_t, double> categories, brands, bands;
  std::unordered_set<std::string> invoices;
  std::unordered_set<int64_t> invoice_times;  // purchases without an invoice id
  double monetary = 0;
  std::array<int64_t, kEventTypeCount> counts{};
  double bought_quantity = 0, returned_quantity = 0;
  std::array<int64_t, 24> hours{};
  std::array<int64_t, 7> weekdays{};
  std::vector<std::pair<int64_t, int64_t>> days;  // (day number, events), sorted; events mostly come in order
  std::string last_invoice;                        // an invoice's lines come together: one set lookup
  double price_ratio_sum = 0;
  int64_t price_ratios = 0;
  // Texts.
  int64_t reviews = 0;
  double sentiment_sum = 0;
  int64_t sentiments = 0;
  std::map<std::string, int64_t> demand;
  std::vector<std::string> recent_texts;  // the latest texts, for keywords
};

ProfileBuilder::ProfileBuilder(Catalogue catalogue, ProfileOptions options, ModelScorers scorers)
    : catalogue_(std::move(catalogue)), options_(options), scorers_(std::move(scorers)) {}
ProfileBuilder::~ProfileBuilder() = default;
ProfileBuilder::ProfileBuilder(ProfileBuilder&&) noexcept = default;

ProfileBuilder::UserState& ProfileBuilder::state(std::string_view user) {
  if (states_.empty() || user != last_user_) {
    last_id_ = users_.intern(user);
    last_user_.assign(user);
    if (last_id_ >= states_.size()) {
      states_.resize(last_id_ + 1);
      is_touched_.resize(last_id_ + 1, 0);
    }
  }
  if (!is_touched_[last_id_]) {
    is_touched_[last_id_] = 1;
    touched_.push_back(last_id_);
  }
  return states_[last_id_];
}

void ProfileBuilder::add_user(std::string_view user, std::optional<int64_t> signup) {
  auto& s = state(user);
  if (signup) s.signup = s.signup ? std::min(*s.signup, *signup) : *signup;
}

void ProfileBuilder::apply(const ProfileEvent& e) {
  auto& s = state(e.user);
  const auto type = static_cast<size_t>(e.type);
  s.first = std::min(s.first, e.timestamp);
  s.last = std::max(s.last, e.timestamp);
  ++s.counts[type];
  const int64_t day = day_of(e.timestamp);
  if (s.days.empty() || s.days.back().first < day) {
    s.days.emplace_back(day, 1);
  } else if (s.days.back().first == day) {
    ++s.days.back().second;
  } else {
    auto it = std::lower_bound(s.days.begin(), s.days.end(), std::make_pair(day, int64_t{0}));
    if (it != s.days.end() && it->first == day) ++it->second;
    else s.days.insert(it, {day, 1});
  }
  ++s.hours[static_cast<size_t>((e.timestamp - day * kDay) / 3600)];
  ++s.weekdays[static_cast<size_t>(((day % 7) + 7 + 3) % 7)];  // 1970-01-01 was a Thursday (3)

  // Time-decayed affinities.
  const double lambda = std::log(2.0) / (options_.half_life_days * kDay);
  double age = 0;
  if (e.timestamp > s.decay_ref) {
    if (s.decay_ref != std::numeric_limits<int64_t>::min()) {
      const double f = std::exp(-lambda * static_cast<double>(e.timestamp - s.decay_ref));
      for (auto* m : {&s.categories, &s.brands, &s.bands})
        for (auto& [k, w] : *m) w *= f;
    }
    s.decay_ref = e.timestamp;
  } else {
    age = static_cast<double>(s.decay_ref - e.timestamp);
  }
  const double w = options_.weights[type] * std::exp(-lambda * age);
  const bool known_item = e.item >= 0 && static_cast<size_t>(e.item) < catalogue_.item_category.size();
  if (w > 0 && known_item) {
    const auto i = static_cast<size_t>(e.item);
    if (catalogue_.item_category[i] >= 0) s.categories[catalogue_.item_category[i]] += w;
    if (catalogue_.item_brand[i] >= 0) s.brands[catalogue_.item_brand[i]] += w;
    if (catalogue_.item_band[i] >= 0) s.bands[catalogue_.item_band[i]] += w;
  }

  if (e.type == EventType::Purchase) {
    s.last_purchase = std::max(s.last_purchase, e.timestamp);
    if (e.session.empty()) {
      s.invoice_times.insert(e.timestamp);
    } else if (e.session != s.last_invoice) {
      s.invoices.emplace(e.session);
      s.last_invoice.assign(e.session);
    }
    if (std::isfinite(e.value)) s.monetary += e.quantity * e.value;
    s.bought_quantity += e.quantity;
    if (known_item && std::isfinite(e.value) && e.value > 0) {
      const auto cat = catalogue_.item_category[static_cast<size_t>(e.item)];
      const double typical = cat >= 0 ? catalogue_.typical_price[static_cast<size_t>(cat)] : kNaN;
      if (std::isfinite(typical) && typical > 0) {
        s.price_ratio_sum += e.value / typical;
        ++s.price_ratios;
      }
    }
  } else if (e.type == EventType::Return) {
    s.returned_quantity += e.quantity;
  }
}

void ProfileBuilder::apply_text(const Text& t) {
  if (t.user.empty()) return;
  auto& s = state(t.user);
  if (t.kind == TextKind::Review) ++s.reviews;
  std::optional<double> sentiment;
  if (t.sentiment) sentiment = *t.sentiment > 1 ? (std::min(*t.sentiment, 5.0) - 1) / 4 : std::max(0.0, *t.sentiment);
  else if (scorers_.sentiment) sentiment = scorers_.sentiment(t.body);
  if (sentiment) {
    s.sentiment_sum += *sentiment;
    ++s.sentiments;
  }
  std::string category = t.category;
  if (category.empty() && scorers_.category) category = scorers_.category(t.body);
  if (!category.empty() && category != "unknown") ++s.demand[category];
  constexpr size_t kKeptTexts = 50;
  s.recent_texts.push_back(t.body);
  if (s.recent_texts.size() > kKeptTexts) s.recent_texts.erase(s.recent_texts.begin());
}

size_t ProfileBuilder::apply_store(const store::EventColumns& e,
                                   const std::function<void(const std::function<void(const Text&)>&)>& texts, int64_t before) {
  size_t skipped = 0;
  // Store item ids are the catalogue's indices when the catalogue came from the same columns;
  // otherwise map them by external id.
  std::vector<int32_t> item_index(e.item_ids.size());
  for (size_t i = 0; i < e.item_ids.size(); ++i) {
    const auto known = catalogue_.items.find(e.item_ids[i]);
    item_index[i] = known ? static_cast<int32_t>(*known)
                          : catalogue_.add_item(e.item_ids[i], i < e.item_categories.size() ? e.item_categories[i] : "",
                                                i < e.item_brands.size() ? e.item_brands[i] : "",
                                                i < e.item_prices.size() ? e.item_prices[i] : kNaN);
  }
  for (size_t u = 0; u < e.user_ids.size(); ++u)
    add_user(e.user_ids[u], u < e.user_signups.size() && e.user_signups[u] != std::numeric_limits<int64_t>::min()
                                ? std::optional<int64_t>(e.user_signups[u]) : std::nullopt);
  for (size_t k = 0; k < e.size(); ++k) {
    if (e.timestamp[k] >= before) {
      ++skipped;
      continue;
    }
    ProfileEvent pe;
    pe.user = e.user_ids[static_cast<size_t>(e.user[k])];
    pe.item = item_index[static_cast<size_t>(e.item[k])];
    pe.type = static_cast<EventType>(e.type[k]);
    pe.quantity = e.quantity[k];
    pe.value = e.value[k];
    pe.timestamp = e.timestamp[k];
    pe.session = e.session[k] >= 0 ? std::string_view(e.sessions[static_cast<size_t>(e.session[k])]) : std::string_view();
    apply(pe);
  }
  if (texts) texts([this](const Text& t) { apply_text(t); });
  return skipped;
}

std::vector<std::string> ProfileBuilder::take_touched() {
  std::vector<std::string> out;
  for (auto id : touched_) {
    out.emplace_back(users_.name(id));
    is_touched_[id] = 0;
  }
  touched_.clear();
  std::sort(out.begin(), out.end());
  return out;
}

UserProfile ProfileBuilder::finish(size_t u, int64_t as_of) const {
  const UserState& s = states_[u];
  UserProfile p;
  p.user = std::string(users_.name(static_cast<IdMap::Id>(u)));
  p.as_of = as_of;
  int64_t events = 0;
  for (auto c : s.counts) events += c;
  p.events = events;
  if (s.last_purchase != std::numeric_limits<int64_t>::min()) {
    const int64_t d = as_of - s.last_purchase;
    p.recency_days = d >= 0 ? d / kDay : -((-d + kDay - 1) / kDay);
    p.frequency = static_cast<int64_t>(s.invoices.size() + s.invoice_times.size());
    p.monetary = std::round(s.monetary * 100) / 100;
  }
  int64_t start = s.first;
  if (s.signup) start = std::min(start, *s.signup);
  p.tenure_days = start == std::numeric_limits<int64_t>::max() ? 0 : std::max<int64_t>(0, (as_of - start) / kDay);
  p.active_days = static_cast<int64_t>(s.days.size());
  // Whole days from 30 days before as_of up to as_of's day.
  for (auto it = std::lower_bound(s.days.begin(), s.days.end(), std::make_pair(day_of(as_of - 30 * kDay), int64_t{0}));
       it != s.days.end() && it->first <= day_of(as_of); ++it)
    p.events_30d += it->second;
  if (events > 0) {
    p.peak_hour = static_cast<int>(std::max_element(s.hours.begin(), s.hours.end()) - s.hours.begin());
    p.peak_weekday = static_cast<int>(std::max_element(s.weekdays.begin(), s.weekdays.end()) - s.weekdays.begin());
    for (size_t h = 0; h < 24; ++h) p.hour_shares[h] = static_cast<double>(s.hours[h]) / static_cast<double>(events);
    for (size_t d = 0; d < 7; ++d) p.weekday_shares[d] = static_cast<double>(s.weekdays[d]) / static_cast<double>(events);
    p.weekend_share = p.weekday_shares[5] + p.weekday_shares[6];
  }
  p.categories = top_shares(s.categories, catalogue_.categories, options_.top_n);
  p.brands = top_shares(s.brands, catalogue_.brands, options_.top_n);
  static const IdMap band_names = [] {
    IdMap m;
    for (const char* b : {"low", "mid", "high"}) m.intern(b);
    return m;
  }();
  p.price_bands = top_shares(s.bands, band_names, 3);
  if (s.price_ratios > 0) p.price_sensitivity = s.price_ratio_sum / static_cast<double>(s.price_ratios);

  auto count = [&](EventType t) { return s.counts[static_cast<size_t>(t)]; };
  p.views = count(EventType::View) + count(EventType::Click);
  p.carts = count(EventType::Cart);
  p.purchases = count(EventType::Purchase);
  p.returns = count(EventType::Return);
  if (p.views > 0) p.cart_rate = static_cast<double>(p.carts) / static_cast<double>(p.views);
  if (p.carts > 0) p.purchase_rate = static_cast<double>(p.purchases) / static_cast<double>(p.carts);
  if (s.bought_quantity > 0) p.return_rate = s.returned_quantity / s.bought_quantity;

  p.reviews = s.reviews;
  if (s.sentiments > 0) p.sentiment = s.sentiment_sum / static_cast<double>(s.sentiments);
  if (!s.recent_texts.empty() && options_.keywords > 0) {
    std::vector<std::string_view> texts(s.recent_texts.begin(), s.recent_texts.end());
    for (auto& k : text::tfidf_keywords(texts, options_.keywords, scorers_.keyword_index)) p.keywords.push_back({k.word, k.score});
  }
  int64_t texts_with_category = 0;
  for (const auto& [c, n] : s.demand) texts_with_category += n;
  for (const auto& [c, n] : s.demand) p.demand.push_back({c, static_cast<double>(n) / static_cast<double>(texts_with_category)});
  std::sort(p.demand.begin(), p.demand.end(), [](const Share& a, const Share& b) {
    return a.share != b.share ? a.share > b.share : a.name < b.name;
  });
  if (p.demand.size() > options_.top_n) p.demand.resize(options_.top_n);
  if (scorers_.propensity) p.propensity = scorers_.propensity(p.user);
  return p;
}

std::vector<UserProfile> ProfileBuilder::profiles(int64_t as_of) const {
  std::vector<UserProfile> out;
  out.reserve(states_.size());
  for (size_t u = 0; u < states_.size(); ++u) out.push_back(finish(u, as_of));
  std::sort(out.begin(), out.end(), [](const UserProfile& a, const UserProfile& b) { return user_id_less(a.user, b.user); });
  rank_profiles(out);
  return out;
}

void rank_profiles(std::vector<UserProfile>& out) {
  std::vector<size_t> buyers;
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i].recency_days) buyers.push_back(i);
  std::vector<double> recency, frequency, monetary;
  std::vector<std::string> ids;
  for (size_t i : buyers) {
    recency.push_back(static_cast<double>(*out[i].recency_days));
    frequency.push_back(static_cast<double>(out[i].frequency));
    monetary.push_back(out[i].monetary);
    ids.push_back(out[i].user);
  }
  const auto r = quintile_scores(recency, ids), f = quintile_scores(frequency, ids), m = quintile_scores(monetary, ids);
  const auto f3 = rank_bins(frequency, ids, 3), m3 = rank_bins(monetary, ids, 3);
  for (auto& p : out) {
    p.r_score = p.f_score = p.m_score = 0;
    p.frequency_level.clear();
    p.monetary_level.clear();
  }
  for (size_t k = 0; k < buyers.size(); ++k) {
    auto& p = out[buyers[k]];
    p.r_score = 6 - r[k];
    p.f_score = f[k];
    p.m_score = m[k];
    p.frequency_level = level_name(f3[k]);
    p.monetary_level = level_name(m3[k]);
  }
  for (auto& p : out) p.rfm_segment = rfm_segment_name(p.r_score, p.f_score);
  std::vector<double> activity;
  std::vector<std::string> all_ids;
  for (const auto& p : out) {
    activity.push_back(static_cast<double>(p.events_30d));
    all_ids.push_back(p.user);
  }
  const auto a3 = rank_bins(activity, all_ids, 3);
  for (size_t i = 0; i < out.size(); ++i) out[i].activity_level = out[i].events_30d == 0 ? "none" : level_name(a3[i]);
}

}  // namespace persona::profile
