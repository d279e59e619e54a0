#pragma once
// The sample shop: a realistic synthetic online shop, deterministic for a seed, written in the
// formats a user would bring (CSV, gzip CSV, JSON Lines) with a config that maps them. It has the
// structure later stages look for (tastes, funnels, repeat purchases, returns, reviews whose
// sentiment follows experience, support questions) and deliberate dirt for the cleaning rules.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace persona::sample {

struct ShopSize {
  int users = 10000;
  int items = 2000;
  int64_t target_events = 1000000;
  static ShopSize named(const std::string& name);  // small | default | large
};

struct ShopOptions {
  ShopSize size;
  uint64_t seed = 42;
  std::string out_dir = "persona-demo";
  int year = 2025;     // events span this calendar year
  bool dirt = true;    // add the deliberate dirt
};

struct ShopReport {
  std::string out_dir, config_path;
  int64_t users = 0, items = 0, events = 0, texts = 0;
  // Dirt injected, by kind, so tests can check the cleaning finds all of it.
  int64_t duplicate_events = 0, missing_user_events = 0, bad_timestamp_events = 0, negative_quantity_events = 0,
          bad_type_events = 0, duplicate_users = 0, bad_age_users = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

// Writes users.csv, items.jsonl, events.csv.gz, texts.jsonl and shop.toml into out_dir, and
// latent.jsonl: the hidden tastes the events were drawn from (a ground truth no stage reads),
// and faq.json: the shop's questions and answers in English and Chinese (for the assistant).
ShopReport generate_shop(const ShopOptions& options);

}  // namespace persona::sample
