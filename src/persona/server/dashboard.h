#pragma once
// What the dashboard's pages show, computed from the store and the models: aggregates only (no
// user ids) except a user's own timeline. Pure functions of their inputs, so tests can check the
// numbers without a server; the server caches the expensive ones until the data changes.
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "persona/demand/text_analysis.h"
#include "persona/store/store.h"

namespace persona::server {

// The last `days` days up to the newest event: events per day by type, revenue (purchases minus
// returns, as `persona stats` counts it), active users, new users (first event), and the funnel
// view -> cart -> purchase (distinct users and events) over the same window.
nlohmann::json activity_timeline(const store::EventColumns& events, int days);

// Users by RFM recency score (rows, 5 = most recent) and frequency score (columns), with their
// mean monetary value, from stored profiles. Score 0 (no purchases) is its own row and column.
nlohmann::json rfm_grid(store::Store& store);

// One user's events, newest first (at most `limit`), with item category and value.
nlohmann::json user_timeline(const store::EventColumns& history, size_t limit);

// Texts of the last `weeks` weeks (by week, Monday first): sentiment and demand category per
// week (from the trained models; where no model is trained, from the data's own labels, else the
// category of the item a text is about), the
// window's top keywords (TF-IDF, idf from `keywords` when given), and a 14-day demand forecast for all items and the four busiest
// categories. Needs analyzer access to be serialised by the caller (classifiers keep scratch).
nlohmann::json demand_overview(store::Store& store, const store::EventColumns& events, const demand::TextAnalyzer& analyzer,
                               const text::KeywordIndex* keywords, int weeks);

// Every model file in the directory (header only) and the training history, newest first.
nlohmann::json model_overview(const std::string& models_dir);

}  // namespace persona::server
