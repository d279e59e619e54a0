#!/usr/bin/env python3
"""How well recommendations on the sample shop follow the generator's hidden tastes.

latent.jsonl holds each user's category tastes (shares summing to 1) and price sensitivity, the
truth the shop's events were drawn from; items.jsonl the categories and prices; the lists file
is `persona eval recommend --lists`. For each method listed:

- taste_agreement: the mean, over evaluated users, of the taste share of each recommended item's
  category (1 would mean every item is in a category the user only ever wants);
- random_agreement: the same for items drawn uniformly from the catalogue (the floor), and
  best_agreement: every item in the user's favourite category (the ceiling);
- price_ratio_sensitive / _insensitive: recommended items' price over their category's median,
  for the most and least price-sensitive quarter of users (sensitive users should get cheaper).

Usage: latent_tastes.py SHOP_DIR LISTS_FILE  -> one JSON line per method.
"""
import collections
import json
import os
import statistics
import sys


def main():
    shop, lists_path = sys.argv[1], sys.argv[2]
    latent = {}
    with open(os.path.join(shop, "latent.jsonl"), encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            latent[j["user_id"]] = j
    category, price = {}, {}
    with open(os.path.join(shop, "items.jsonl"), encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            category[j["item_id"]] = j["category"]
            price[j["item_id"]] = j.get("price")
    per_category = collections.Counter(category.values())
    n_items = len(category)
    medians = {c: statistics.median(p for i, p in price.items() if category[i] == c and p) for c in per_category}
    lists = collections.defaultdict(dict)
    names = {}
    with open(lists_path, encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            key = json.dumps(j["method"], sort_keys=True)
            names[key] = j["method"]
            lists[key][j["user"]] = j["items"]
    sensitivities = sorted(u["price_sensitivity"] for u in latent.values())
    low_cut, high_cut = sensitivities[len(sensitivities) // 4], sensitivities[3 * len(sensitivities) // 4]
    for key, by_user in lists.items():
        agree, rand, best, sens, insens = [], [], [], [], []
        for user, items in by_user.items():
            truth = latent.get(user)
            if truth is None or not items:
                continue
            tastes = truth["tastes"]
            agree.append(sum(tastes.get(category.get(i, ""), 0) for i in items) / len(items))
            rand.append(sum(t * per_category[c] / n_items for c, t in tastes.items()))
            best.append(max(tastes.values()))
            ratios = [price[i] / medians[category[i]] for i in items if price.get(i) and category.get(i) in medians]
            if ratios and truth["price_sensitivity"] >= high_cut:
                sens.append(statistics.mean(ratios))
            elif ratios and truth["price_sensitivity"] <= low_cut:
                insens.append(statistics.mean(ratios))
        if not agree:
            continue
        print(json.dumps({"method": names[key], "users": len(agree),
                          "taste_agreement": round(statistics.mean(agree), 4),
                          "random_agreement": round(statistics.mean(rand), 4),
                          "best_agreement": round(statistics.mean(best), 4),
                          "price_ratio_sensitive": round(statistics.mean(sens), 4) if sens else None,
                          "price_ratio_insensitive": round(statistics.mean(insens), 4) if insens else None}))


if __name__ == "__main__":
    main()
