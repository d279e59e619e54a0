#pragma once
// Demand trends: daily counts per category with a forecast from additive Holt-Winters
// exponential smoothing with weekly seasonality (parameters chosen by one-step-ahead error), or
// from a seasonal baseline when that did better on the series, and a backtest on the last days
// against the seasonal naive forecast (same weekday last week).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/store/store.h"

namespace persona::demand {

struct DailySeries {
  int64_t first_day = 0;  // unix day number (UTC) of values[0]
  std::vector<double> values;
};

// Purchases (quantity) per day, per item category ("(none)" for items without one), and "all".
std::map<std::string, DailySeries> daily_demand(const store::EventColumns& events);

struct HoltWinters {
  double alpha = 0.3, beta = 0.05, gamma = 0.1;
  int period = 7;
  double level = 0, trend = 0;
  std::vector<double> season;
  double sse = 0;  // one-step-ahead squared error over the fitted series
  std::vector<double> forecast(int horizon) const;
};
// Grid search over (alpha, beta, gamma); needs at least two periods of data.
HoltWinters fit_holt_winters(const std::vector<double>& y, int period = 7);

struct Backtest {
  int horizon = 0;
  double mae = 0, smape = 0;              // Holt-Winters on the held-out days
  double naive_mae = 0, naive_smape = 0;  // seasonal naive on the same days
};
Backtest backtest(const std::vector<double>& y, int horizon, int period = 7);

// The forecast methods a series chooses from: "holt-winters", "seasonal-naive" (the same weekday
// last week) and "seasonal-mean" (the mean of that weekday over the last four weeks).
std::vector<double> forecast_with(const std::string& method, const std::vector<double>& y, int horizon, int period = 7);
extern const std::vector<std::string> kForecastMethods;

struct CategoryForecast {
  std::string category;
  DailySeries history;
  std::vector<double> forecast;
  // The method used, chosen per series by its error on the days before the backtest (so the
  // backtest is not the data it was chosen on), and each method's error there.
  std::string method = "holt-winters";
  std::map<std::string, double> selection_mae;
  int selection_days = 0;
  HoltWinters model;
  Backtest backtest;  // mae/smape: the chosen method; naive_*: the seasonal naive baseline
  nlohmann::json to_json(int history_days = 28) const;
};
CategoryForecast forecast_category(const std::string& category, const DailySeries& series, int horizon);

}  // namespace persona::demand
