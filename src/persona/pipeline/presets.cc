// Built-in source presets for the data sets users bring most often. Each is a [[sources]] table
// in TOML, so a preset is exactly what a user could have written in their own config.
#include <string>
#include <utility>
#include <vector>

#include "persona/pipeline/config.h"

namespace persona::pipeline {

struct PresetText {
  const char* name;
  const char* description;
  const char* toml;
};

// Used by config.cc.
const std::vector<PresetText>& preset_texts() {
  static const std::vector<PresetText> texts = {
      {"online_retail", "UCI Online Retail invoice lines: purchases, cancellations as returns, item titles", R"(
format = "csv"
[event]
user = "CustomerID"
item = "StockCode"
type = { column = "InvoiceNo", prefix_map = { C = "return" }, default = "purchase" }
quantity = { column = "Quantity", abs = true }
value = "UnitPrice"
timestamp = { column = "InvoiceDate", format = "iso8601|%m/%d/%Y %H:%M" }
session = "InvoiceNo"
[item]
id = "StockCode"
title = "Description"
[[clean]]
rule = "exact_duplicate"
[[clean]]
rule = "missing"
name = "missing_customer"
fields = ["event.user"]
[[clean]]
rule = "range"
name = "nonpositive_price"
fields = ["event.value"]
min = 0
min_exclusive = true
[[clean]]
rule = "range"
name = "zero_quantity"
fields = ["event.quantity"]
min = 0
min_exclusive = true
[[clean]]
rule = "pattern"
name = "non_product"
fields = ["StockCode"]
regex = "^[0-9]"
[[clean]]
rule = "text_hygiene"
fields = ["item.title"]
)"},
      {"movielens_100k", "MovieLens 100K u.data: user TAB item TAB rating TAB unix time, no header", R"(
format = "tsv"
header = false
[event]
user = "col1"
item = "col2"
type = { const = "rate" }
value = "col3"
timestamp = { column = "col4", format = "unix" }
[[clean]]
rule = "exact_duplicate"
)"},
      {"movielens_1m", "MovieLens 1M ratings.dat: UserID::MovieID::Rating::Timestamp", R"(
format = "csv"
delimiter = "::"
quote = ""
header = false
[event]
user = "col1"
item = "col2"
type = { const = "rate" }
value = "col3"
timestamp = { column = "col4", format = "unix" }
[[clean]]
rule = "exact_duplicate"
)"},
      {"movielens", "MovieLens ratings.csv (latest, 20M, 25M): userId,movieId,rating,timestamp", R"(
format = "csv"
[event]
user = "userId"
item = "movieId"
type = { const = "rate" }
value = "rating"
timestamp = { column = "timestamp", format = "unix" }
[[clean]]
rule = "exact_duplicate"
)"},
      {"taobao", "Taobao UserBehavior: user,item,category,behavior (pv/buy/cart/fav),timestamp, no header", R"(
format = "csv"
header = false
[event]
user = "col1"
item = "col2"
type = { column = "col4", map = { pv = "view", buy = "purchase", cart = "cart", fav = "favourite" } }
timestamp = { column = "col5", format = "unix" }
[item]
id = "col2"
category = "col3"
[[clean]]
rule = "exact_duplicate"
)"},
      {"banking77", "Banking77 intents: text,category", R"(
format = "csv"
[text]
body = "text"
label = "category"
kind = { const = "query" }
language = { const = "en" }
[[clean]]
rule = "text_hygiene"
)"},
      {"bitext", "Bitext customer support: flags,utterance,category,intent", R"(
format = "csv"
[text]
body = "utterance"
label = "intent"
category = "category"
kind = { const = "query" }
language = { const = "en" }
[[clean]]
rule = "text_hygiene"
)"},
      {"online_shopping_zh", "Chinese shopping reviews: cat,label,review (label 1 = positive)", R"(
format = "csv"
[text]
body = "review"
category = "cat"
sentiment = "label"
kind = { const = "review" }
language = { const = "zh" }
[[clean]]
rule = "text_hygiene"
)"},
      {"waimai_zh", "Chinese food-delivery reviews: label,review", R"(
format = "csv"
[text]
body = "review"
sentiment = "label"
kind = { const = "review" }
language = { const = "zh" }
[[clean]]
rule = "text_hygiene"
)"},
      {"sst2", "SST-2 sentences: label TAB sentence (or content), with header", R"(
format = "tsv"
quote = ""
[text]
body = { column = ["sentence", "content"] }
sentiment = "label"
kind = { const = "review" }
language = { const = "en" }
[[clean]]
rule = "text_hygiene"
)"},
      {"smp2019", "SMP2019 Chinese intents (JSON Lines): text, domain, intent, slots", R"(
format = "jsonl"
[text]
body = "text"
label = "intent"
category = "domain"
kind = { const = "query" }
language = { const = "zh" }
[[clean]]
rule = "text_hygiene"
)"},
      {"labelled_texts", "Any labelled text file: text,label (CSV with header)", R"(
format = "csv"
[text]
body = "text"
label = "label"
kind = { const = "query" }
[[clean]]
rule = "text_hygiene"
)"},
  };
  return texts;
}

const std::vector<PresetInfo>& presets() {
  static const std::vector<PresetInfo> infos = [] {
    std::vector<PresetInfo> out;
    for (const auto& p : preset_texts()) out.push_back({p.name, p.description});
    return out;
  }();
  return infos;
}

}  // namespace persona::pipeline
