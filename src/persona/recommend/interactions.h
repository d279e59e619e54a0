#pragma once
// The user x item interaction matrix the recommenders learn from: sparse rows (CSR), a weight per
// event type, optional time decay, built from the store's columnar events with dense ids.
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "persona/core/id_map.h"
#include "persona/core/model.h"
#include "persona/store/store.h"

namespace persona::recommend {

struct InteractionOptions {
  // Weight of each event type (view, click, cart, purchase, return, rate, review, search,
  // favourite). Returns subtract nothing: a returned item was still chosen once.
  std::array<double, kEventTypeCount> weights{1, 1, 3, 5, 0, 3, 1, 0, 2};
  // Each user's older events weigh less: the weight halves every half_life_days before the
  // user's newest event (0: no decay). Relative to the user's own newest event, so the same
  // history gives the same weights whenever it is scored.
  double half_life_days = 0;
  double trend_days = 14;  // trending: popularity over the last this many days of the window
  int64_t from = std::numeric_limits<int64_t>::min(), before = std::numeric_limits<int64_t>::max();
  nlohmann::json to_json() const;
  static InteractionOptions from_json(const nlohmann::json& j);
};

// One user's row: item indices ascending, with weights.
struct Row {
  std::vector<int32_t> items;
  std::vector<float> weights;
  size_t size() const { return items.size(); }
};

struct Interactions {
  IdMap users, items;                  // external ids <-> dense indices of this matrix
  std::vector<std::string> item_categories;
  std::vector<double> item_prices;     // NaN: unknown
  std::vector<Row> rows;               // by user
  std::vector<int64_t> last_seen;      // by item: the latest event time
  std::vector<float> trending;         // by item: distinct users in the window's last trend_days
  std::vector<std::string> item_documents;  // by item: title, description, category and brand (content)

  size_t user_count() const { return rows.size(); }
  size_t item_count() const { return item_categories.size(); }
  size_t nonzeros() const;
  // Items x users, the transpose (item-item models need the columns).
  std::vector<Row> columns() const;
};

// Events in [from, before) with a positive weight become interactions. Every item of the
// catalogue is known to the matrix (so a new item can be filtered or found by content later);
// users appear once they have an interaction.
Interactions build_interactions(const store::EventColumns& events, const InteractionOptions& options);

// A user's history row from (item index, weight, time) triples: decayed, merged and sorted.
struct Choice {
  int32_t item;
  double weight;
  int64_t timestamp;
};
Row make_row(const std::vector<Choice>& choices, double half_life_days);

}  // namespace persona::recommend
