#include "persona/demand/forecast.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "persona/core/error.h"
#include "persona/core/model.h"
#include "persona/core/time.h"

namespace persona::demand {
namespace {

constexpr int64_t kDay = 86400;

int64_t day_of(int64_t ts) { return ts >= 0 ? ts / kDay : (ts - kDay + 1) / kDay; }

double smape(const std::vector<double>& truth, const std::vector<double>& pred) {
  double s = 0;
  for (size_t i = 0; i < truth.size(); ++i) {
    const double d = std::abs(truth[i]) + std::abs(pred[i]);
    s += d > 0 ? 2 * std::abs(truth[i] - pred[i]) / d : 0;
  }
  return truth.empty() ? 0 : s / static_cast<double>(truth.size());
}

double mae(const std::vector<double>& truth, const std::vector<double>& pred) {
  double s = 0;
  for (size_t i = 0; i < truth.size(); ++i) s += std::abs(truth[i] - pred[i]);
  return truth.empty() ? 0 : s / static_cast<double>(truth.size());
}

HoltWinters run(const std::vector<double>& y, int period, double alpha, double beta, double gamma) {
  HoltWinters m;
  m.alpha = alpha;
  m.beta = beta;
  m.gamma = gamma;
  m.period = period;
  const auto p = static_cast<size_t>(period);
  // Initial level: mean of the first period; trend: mean change between the first two periods.
  double first = 0, second = 0;
  for (size_t i = 0; i < p; ++i) {
    first += y[i];
    second += y[i + p];
  }
  first /= static_cast<double>(p);
  second /= static_cast<double>(p);
  m.level = first;
  m.trend = (second - first) / static_cast<double>(p);
  m.season.resize(p);
  for (size_t i = 0; i < p; ++i) m.season[i] = y[i] - first;
  for (size_t t = p; t < y.size(); ++t) {
    const size_t s = t % p;
    const double predicted = m.level + m.trend + m.season[s];
    m.sse += (y[t] - predicted) * (y[t] - predicted);
    const double previous = m.level;
    m.level = alpha * (y[t] - m.season[s]) + (1 - alpha) * (m.level + m.trend);
    m.trend = beta * (m.level - previous) + (1 - beta) * m.trend;
    m.season[s] = gamma * (y[t] - m.level) + (1 - gamma) * m.season[s];
  }
  // Rotate so that season[0] is the phase of the next day.
  std::rotate(m.season.begin(), m.season.begin() + static_cast<std::ptrdiff_t>(y.size() % p), m.season.end());
  return m;
}

}  // namespace

std::map<std::string, DailySeries> daily_demand(const store::EventColumns& e) {
  std::map<std::string, DailySeries> out;
  if (e.size() == 0) return out;
  int64_t first = INT64_MAX, last = INT64_MIN;
  const auto purchase = static_cast<uint8_t>(EventType::Purchase);
  for (size_t i = 0; i < e.size(); ++i)
    if (e.type[i] == purchase) {
      first = std::min(first, day_of(e.timestamp[i]));
      last = std::max(last, day_of(e.timestamp[i]));
    }
  if (first > last) return out;
  // A time far off (year 9999, or INT64_MAX in a store written before times were checked) would
  // make a daily series of billions of days.
  if (last - first > 366 * 200)
    throw Error(fmt::format("the purchases span {} days, from {} to {}: a timestamp is wrong", last - first,
                            format_date(first * kDay), format_date(last > INT64_MAX / kDay ? INT64_MAX : last * kDay)),
                {}, "find it with `persona stats` (first and last event) and ingest the data again");
  const auto days = static_cast<size_t>(last - first + 1);
  auto series = [&](const std::string& name) -> DailySeries& {
    auto [it, added] = out.try_emplace(name);
    if (added) {
      it->second.first_day = first;
      it->second.values.assign(days, 0.0);
    }
    return it->second;
  };
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.type[i] != purchase) continue;
    const auto d = static_cast<size_t>(day_of(e.timestamp[i]) - first);
    const auto item = static_cast<size_t>(e.item[i]);
    std::string category = item < e.item_categories.size() ? e.item_categories[item] : "";
    if (category.empty()) category = "(none)";
    series(category).values[d] += e.quantity[i];
    series("all").values[d] += e.quantity[i];
  }
  return out;
}

std::vector<double> HoltWinters::forecast(int horizon) const {
  std::vector<double> f;
  for (int h = 1; h <= horizon; ++h)
    f.push_back(std::max(0.0, level + h * trend + season[static_cast<size_t>((h - 1) % period)]));
  return f;
}

HoltWinters fit_holt_winters(const std::vector<double>& y, int period) {
  if (period < 1 || y.size() < static_cast<size_t>(2 * period))
    throw std::invalid_argument("a forecast needs at least two weeks of daily data");
  HoltWinters best;
  best.sse = INFINITY;
  for (double a : {0.05, 0.1, 0.2, 0.3, 0.5, 0.7})
    for (double b : {0.0, 0.01, 0.05, 0.1})
      for (double g : {0.0, 0.05, 0.1, 0.2, 0.4}) {
        HoltWinters m = run(y, period, a, b, g);
        if (m.sse < best.sse) best = std::move(m);
      }
  return best;
}

Backtest backtest(const std::vector<double>& y, int horizon, int period) {
  Backtest b;
  b.horizon = horizon;
  if (horizon <= 0 || y.size() < static_cast<size_t>(horizon + 2 * period)) return b;
  const std::vector<double> train(y.begin(), y.end() - horizon), truth(y.end() - horizon, y.end());
  const auto f = fit_holt_winters(train, period).forecast(horizon);
  std::vector<double> naive;
  for (int h = 0; h < horizon; ++h) naive.push_back(train[train.size() - static_cast<size_t>(period) + static_cast<size_t>(h % period)]);
  b.mae = mae(truth, f);
  b.smape = smape(truth, f);
  b.naive_mae = mae(truth, naive);
  b.naive_smape = smape(truth, naive);
  return b;
}

const std::vector<std::string> kForecastMethods = {"seasonal-naive", "seasonal-mean", "holt-winters"};

std::vector<double> forecast_with(const std::string& method, const std::vector<double>& y, int horizon, int period) {
  const auto p = static_cast<size_t>(period);
  if (method == "holt-winters") return fit_holt_winters(y, period).forecast(horizon);
  if (method != "seasonal-naive" && method != "seasonal-mean") throw std::invalid_argument("unknown forecast method " + method);
  if (p == 0 || y.size() < p) throw std::invalid_argument("a seasonal forecast needs at least one season of daily data");
  // The same weekday in the last week (naive), or its mean over up to four weeks.
  const size_t weeks = method == "seasonal-naive" ? 1 : std::min<size_t>(4, y.size() / p);
  std::vector<double> f;
  for (int h = 0; h < horizon; ++h) {
    double sum = 0;
    for (size_t w = 1; w <= weeks; ++w) sum += y[y.size() - w * p + static_cast<size_t>(h) % p];
    f.push_back(sum / static_cast<double>(weeks));
  }
  return f;
}

CategoryForecast forecast_category(const std::string& category, const DailySeries& series, int horizon) {
  CategoryForecast c;
  c.category = category;
  c.history = series;
  const auto& y = series.values;
  const int test_days = std::min<int>(horizon, static_cast<int>(y.size()) / 4);
  c.model = fit_holt_winters(y);
  // Chosen on the days just before the backtest's, fitted on what came before them; ties go to
  // the simpler method (the list is in order of simplicity).
  const int period = c.model.period;
  if (test_days > 0 && y.size() >= static_cast<size_t>(2 * test_days + 2 * period)) {
    const std::vector<double> fit(y.begin(), y.end() - 2 * test_days), held(y.end() - 2 * test_days, y.end() - test_days);
    c.selection_days = test_days;
    double best = INFINITY;
    for (const auto& m : kForecastMethods) {
      const double e = mae(held, forecast_with(m, fit, test_days, period));
      c.selection_mae[m] = e;
      if (e < best) best = e, c.method = m;
    }
  }
  c.forecast = c.method == "holt-winters" ? c.model.forecast(horizon) : forecast_with(c.method, y, horizon, period);
  c.backtest = backtest(y, test_days, period);
  if (c.method != "holt-winters" && c.backtest.horizon > 0 && y.size() >= static_cast<size_t>(test_days + 2 * period)) {
    const std::vector<double> fit(y.begin(), y.end() - test_days), truth(y.end() - test_days, y.end());
    const auto f = forecast_with(c.method, fit, test_days, period);
    c.backtest.mae = mae(truth, f);
    c.backtest.smape = smape(truth, f);
  }
  return c;
}

nlohmann::json CategoryForecast::to_json(int history_days) const {
  const size_t n = history.values.size();
  const size_t from = n > static_cast<size_t>(history_days) ? n - static_cast<size_t>(history_days) : 0;
  auto date = [](int64_t day) {
    const std::time_t t = day * kDay;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return std::string(buf);
  };
  nlohmann::json hist = nlohmann::json::array(), fc = nlohmann::json::array();
  for (size_t i = from; i < n; ++i) hist.push_back({{"date", date(history.first_day + static_cast<int64_t>(i))}, {"value", history.values[i]}});
  for (size_t h = 0; h < forecast.size(); ++h)
    fc.push_back({{"date", date(history.first_day + static_cast<int64_t>(n + h))}, {"value", forecast[h]}});
  return {{"category", category},
          {"history", hist},
          {"forecast", fc},
          {"method", method},
          {"chosen_on", {{"days", selection_days}, {"mae", selection_mae}}},
          {"model", method == "holt-winters"
                        ? nlohmann::json{{"method", "holt-winters additive"}, {"period", model.period}, {"alpha", model.alpha},
                                         {"beta", model.beta}, {"gamma", model.gamma}}
                        : nlohmann::json{{"method", method}, {"period", model.period}}},
          {"backtest", {{"horizon_days", backtest.horizon}, {"method", method}, {"mae", backtest.mae}, {"smape", backtest.smape},
                        {"seasonal_naive_mae", backtest.naive_mae}, {"seasonal_naive_smape", backtest.naive_smape},
                        {"beats_seasonal_naive", backtest.mae < backtest.naive_mae}}}};
}

}  // namespace persona::demand
