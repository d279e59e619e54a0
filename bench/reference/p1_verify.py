"""P1: checks a k-anonymous release independently of the program that made it. Groups the
released rows by their quasi-identifier values and counts each class; recomputes the normalised
certainty penalty (NCP) from the release itself: a numeric range lo-hi costs (hi - lo) / (the
original column's range), a category node costs (leaves under it) / (all leaves) unless it is a
leaf (a value of the original data), "*" costs 1.
Usage: p1_verify.py RELEASE_CSV ORIGINAL_CSV K NUMERIC_QI=... CATEGORICAL_QI=HIERARCHY_FILE ...
(ORIGINAL_CSV: the data with a header line; the original values give each hierarchy's leaves and
the numeric ranges.)"""
import csv
import json
import sys
from collections import Counter, defaultdict


def hierarchy(path, values):
    parent = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip().rstrip("\r")
            if not line:
                continue
            if ";" in line:
                parts = [p.strip() for p in line.split(";")]
                for child, up in zip(parts, parts[1:]):
                    parent.setdefault(child, up)
            else:
                child, up = [p.strip() for p in line.split(",")]
                parent.setdefault(child, up)
    for v in values:  # values the file lacks hang under the root
        if v not in parent and v != "*":
            parent[v] = "*"
    children = defaultdict(set)
    for c, p in parent.items():
        children[p].add(c)
    leaves = {}

    def count(node):
        if node not in leaves:
            leaves[node] = 1 if not children[node] else sum(count(c) for c in children[node])
        return leaves[node]
    count("*")
    return leaves, children


def main():
    release, original, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    specs = [a.split("=", 1) for a in sys.argv[4:]]
    with open(original, encoding="utf-8") as f:
        orig = list(csv.DictReader(f, skipinitialspace=True))
    with open(release, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    qis = [name for name, _ in specs]
    cost = {}
    for name, h in specs:
        if h == "":
            values = [float(r[name]) for r in orig]
            lo, hi = min(values), max(values)

            def numeric(v, lo=lo, hi=hi):
                if v == "*":
                    return 1.0
                a, _, b = v.partition("-")
                return (float(b) - float(a)) / (hi - lo) if b else 0.0
            cost[name] = numeric
        else:
            leaves, children = hierarchy(h, {r[name] for r in orig})
            total = leaves["*"]
            cost[name] = lambda v, leaves=leaves, children=children, total=total: (
                0.0 if not children.get(v) else leaves[v] / total)
    classes = Counter(tuple(r[q] for q in qis) for r in rows)
    ncp = sum(cost[q](r[q]) for r in rows for q in qis) / (len(rows) * len(qis)) if rows else 0.0
    print(json.dumps({"k": k, "released_rows": len(rows), "classes": len(classes),
                      "min_class_size": min(classes.values()) if classes else 0,
                      "every_class_at_least_k": all(c >= k for c in classes.values()), "ncp": round(ncp, 4)}))


if __name__ == "__main__":
    main()
