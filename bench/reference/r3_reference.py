"""R3 references with numpy / scipy: popularity, repurchase, item-kNN (cosine) and EASE, on the
events of a Persona store (the same clean rows Persona trains on), with the protocol of
BENCHMARKS.md R3: train before SPLIT, test after; evaluated users have events on both sides;
relevant = distinct items purchased in the test period; every training item ranked; re-buys
allowed. Hyperparameters (EASE's lambda) are chosen on the VALIDATION_DAYS before SPLIT.
Usage: r3_reference.py STORE.db SPLIT_UNIX VALIDATION_DAYS   (one JSON line per method)

Or the random per-user protocol of the rating-data literature, with its own split code here:
each user's distinct weighted items, a seeded RATIO of them (at least one held out, one kept) is
the test part; items the user has in training are never recommended; EASE's lambda is chosen on
another draw of the same protocol inside the training part.
Usage: r3_reference.py STORE.db random-per-user RATIO SEED"""
import json
import sqlite3
import sys
import time

import numpy as np
import scipy.sparse as sp

store = sys.argv[1]
RANDOM = sys.argv[2] == "random-per-user"
if RANDOM:
    ratio, seed = float(sys.argv[3]), int(sys.argv[4])
else:
    split, validation_days = int(sys.argv[2]), int(sys.argv[3])
WEIGHTS = {0: 1, 1: 1, 2: 3, 3: 5, 4: 0, 5: 3, 6: 1, 7: 0, 8: 2}  # Persona's default event weights
PURCHASE = 3
K = 10

con = sqlite3.connect(store)
rows = con.execute("SELECT u.ext_id, i.ext_id, e.type, e.ts FROM events e JOIN users u ON u.id = e.user "
                   "JOIN items i ON i.id = e.item ORDER BY e.ts, e.id").fetchall()
users = np.array([r[0] for r in rows])
items = np.array([r[1] for r in rows])
types = np.array([r[2] for r in rows])
ts = np.array([r[3] for r in rows], dtype=np.int64)
weights = np.array([WEIGHTS[t] for t in types], dtype=np.float64)


def relevant_sets(train_users, train_items, test_users, test_items):
    """Each training user's relevant set, by matrix row: item columns, or a distinct negative id
    for an item training never saw (relevant, never ranked)."""
    user_pos = {u: n for n, u in enumerate(train_users)}
    item_pos = {i: n for n, i in enumerate(train_items)}
    relevant = {}
    for u, i in zip(test_users, test_items):
        if u in user_pos:
            relevant.setdefault(user_pos[u], set()).add(item_pos.get(i, -1 - hash(i) % 1000000))
    return relevant


def holdout(start_split, end):
    """Train matrix (users x items, weighted), item ids, and each evaluated user's relevant set."""
    train = (ts < start_split) & (weights > 0)
    u_ids, u_idx = np.unique(users[train], return_inverse=True)
    i_ids, i_idx = np.unique(items[train], return_inverse=True)
    x = sp.csr_matrix((weights[train], (u_idx, i_idx)), shape=(len(u_ids), len(i_ids)))
    x.sum_duplicates()
    test = (ts >= start_split) & (ts < end)
    if (types[test] == PURCHASE).any():
        test &= types == PURCHASE
    else:
        test &= weights > 0
    return x, relevant_sets(u_ids, i_ids, users[test], items[test])


def random_split(pair_users, pair_items, pair_weights, seed):
    """Train matrix and relevant sets: a seeded `ratio` of each user's distinct items held out."""
    u_ids, u_idx = np.unique(pair_users, return_inverse=True)
    key = np.random.default_rng(seed).random(len(u_idx))
    order = np.lexsort((key, u_idx))
    counts = np.bincount(u_idx, minlength=len(u_ids))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts[u_idx[order]]
    n_hold = np.where(counts >= 2, np.clip(np.round(ratio * counts), 1, counts - 1), 0)
    held = rank < n_hold[u_idx]
    i_ids, i_idx = np.unique(pair_items[~held], return_inverse=True)
    keep_users, keep_u = np.unique(u_idx[~held], return_inverse=True)
    x = sp.csr_matrix((pair_weights[~held], (keep_u, i_idx)), shape=(len(keep_users), len(i_ids)))
    return x, relevant_sets(keep_users, i_ids, u_idx[held], pair_items[held]), held


def weighted_pairs():
    """Each (user, item) pair with a weighted event, and its summed weight."""
    w = weights > 0
    pairs, inverse = np.unique(np.stack([users[w], items[w]]), axis=1, return_inverse=True)
    return pairs[0], pairs[1], np.bincount(inverse.ravel(), weights=weights[w])


def metrics(score_fn, x, relevant, exclude_seen=False):
    pop = np.asarray((x > 0).sum(axis=0)).ravel().astype(np.float64)
    total = pop.sum()
    shown = np.zeros(x.shape[1], dtype=bool)
    p = r = ndcg = ap_sum = hit = novelty = 0.0
    start = time.perf_counter()
    evaluated = sorted(relevant)
    for u in evaluated:
        s = score_fn(u)
        if exclude_seen:
            s = s.astype(np.float64, copy=True)
            s[x[u].indices] = -np.inf
        top = np.argpartition(-s, K)[:K]
        top = top[np.lexsort((top, -s[top]))]
        rel = relevant[u]
        hits = dcg = ap = 0.0
        for rank, i in enumerate(top):
            shown[i] = True
            novelty += -np.log2(pop[i] / total) / K if pop[i] > 0 else 0
            if i in rel:
                hits += 1
                dcg += 1 / np.log2(rank + 2)
                ap += hits / (rank + 1)
        ideal = min(len(rel), K)
        idcg = sum(1 / np.log2(k + 2) for k in range(ideal))
        p += hits / K
        r += hits / len(rel)
        ndcg += dcg / idcg
        ap_sum += ap / ideal
        hit += hits > 0
    seconds = time.perf_counter() - start
    n = len(evaluated)
    return {"eval_users": n, "precision_at_10": round(p / n, 4), "recall_at_10": round(r / n, 4),
            "ndcg_at_10": round(ndcg / n, 4), "map_at_10": round(ap_sum / n, 4),
            "coverage": round(shown.sum() / x.shape[1], 4), "novelty": round(novelty / n, 4),
            "recs_per_s": round(n / seconds)}


def popularity(x):
    pop = np.asarray((x > 0).sum(axis=0)).ravel().astype(np.float64)
    pop /= pop.max()
    return lambda u: pop


def repurchase(x):
    pop = np.asarray((x > 0).sum(axis=0)).ravel().astype(np.float64)
    pop /= pop.max()
    return lambda u: x[u].toarray().ravel() + 1e-3 * pop


def item_knn(x):
    b = (x > 0).astype(np.float64)
    co = (b.T @ b).toarray()
    norms = np.sqrt(np.diag(co))
    sim = co / (np.outer(norms, norms) + 1e-12)
    np.fill_diagonal(sim, 0)
    return lambda u: b[u] @ sim


def ease(x, lam):
    b = (x > 0).astype(np.float64)
    g = (b.T @ b).toarray()
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    bb = -p / np.diag(p)
    np.fill_diagonal(bb, 0)
    return lambda u: np.asarray(b[u] @ bb).ravel()


def run(name, build, params, x, relevant, exclude_seen=False):
    start = time.perf_counter()
    fn = build(x)
    train_s = time.perf_counter() - start
    m = metrics(lambda u: np.asarray(fn(u)).ravel(), x, relevant, exclude_seen)
    m["train_s"] = round(train_s, 3)
    m["method"] = dict(params, method=name)
    print(json.dumps(m), flush=True)


def best_lambda(vx, vrel, exclude_seen, lambdas):
    return max(lambdas,
               key=lambda lam: metrics((lambda f: lambda u: np.asarray(f(u)).ravel())(ease(vx, lam)), vx, vrel,
                                       exclude_seen)["ndcg_at_10"])


if RANDOM:
    pu, pi, pw = weighted_pairs()
    x, relevant, held = random_split(pu, pi, pw, seed)
    run("popularity", popularity, {}, x, relevant, True)
    run("item-knn-cosine", item_knn, {}, x, relevant, True)
    vx, vrel, _ = random_split(pu[~held], pi[~held], pw[~held], seed + 1)
    lam = best_lambda(vx, vrel, True, [100, 1000, 3000])  # rating-like data wants a larger lambda
    run("ease", lambda x: ease(x, lam), {"lambda": lam}, x, relevant, True)
else:
    x, relevant = holdout(split, np.iinfo(np.int64).max)
    run("popularity", popularity, {}, x, relevant)
    run("repurchase", repurchase, {}, x, relevant)
    run("item-knn-cosine", item_knn, {}, x, relevant)
    # EASE's lambda on the validation window, as Persona chooses its settings.
    vx, vrel = holdout(split - validation_days * 86400, split)
    lam = best_lambda(vx, vrel, False, [10, 50, 100, 500])
    run("ease", lambda x: ease(x, lam), {"lambda": lam}, x, relevant)
