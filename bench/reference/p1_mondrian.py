"""P1 reference: the textbook strict Mondrian (LeFevre et al. 2006) over the same hierarchies, in
plain Python: choose the quasi-identifier with the widest normalised span; numeric: split at the
median (left <= median < right); categorical: split the partition's hierarchy node into its
children, allowed only when every non-empty child part has k rows; stop when no split is
allowed. Each class is released as its split node (categorical) and its value range (numeric).
Writes the release and prints a summary line.
Usage: p1_mondrian.py ORIGINAL_CSV K OUT_CSV NUMERIC_QI= CATEGORICAL_QI=HIERARCHY_FILE ..."""
import csv
import json
import sys
import time

from p1_verify import hierarchy


def main():
    original, k, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    specs = [a.split("=", 1) for a in sys.argv[4:]]
    start = time.perf_counter()
    with open(original, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, skipinitialspace=True))
    header = list(rows[0].keys())
    qis = []
    for name, h in specs:
        if h == "":
            vals = [float(r[name]) for r in rows]
            qis.append({"name": name, "numeric": True, "lo": min(vals), "hi": max(vals)})
        else:
            leaves, children = hierarchy(h, {r[name] for r in rows})
            parent = {c: p for p, cs in children.items() for c in cs}
            qis.append({"name": name, "numeric": False, "leaves": leaves, "children": children, "parent": parent})

    def under(q, node, value):  # the child of node on the way to value
        while value in q["parent"] and q["parent"][value] != node:
            value = q["parent"][value]
        return value

    def span(q, part, gen):
        if q["numeric"]:
            vals = [float(rows[i][q["name"]]) for i in part]
            return (max(vals) - min(vals)) / (q["hi"] - q["lo"])
        return q["leaves"][gen] / q["leaves"]["*"] if q["children"].get(gen) else 0.0

    released = [None] * len(rows)
    stack = [(list(range(len(rows))), {q["name"]: "*" for q in qis if not q["numeric"]})]
    while stack:
        part, gen = stack.pop()
        order = sorted(qis, key=lambda q: -span(q, part, gen.get(q["name"])))
        done = False
        for q in order:
            if span(q, part, gen.get(q["name"])) == 0:
                continue
            if q["numeric"]:
                vals = sorted(float(rows[i][q["name"]]) for i in part)
                median = vals[len(vals) // 2 - (1 if len(vals) % 2 == 0 else 0)]
                left = [i for i in part if float(rows[i][q["name"]]) <= median]
                right = [i for i in part if float(rows[i][q["name"]]) > median]
                if len(left) >= k and len(right) >= k:
                    stack += [(left, dict(gen)), (right, dict(gen))]
                    done = True
                    break
            else:
                node = gen[q["name"]]
                groups = {}
                for i in part:
                    groups.setdefault(under(q, node, rows[i][q["name"]]), []).append(i)
                if len(groups) > 1 and all(len(g) >= k for g in groups.values()):
                    for child, g in groups.items():
                        stack.append((g, {**gen, q["name"]: child}))
                    done = True
                    break
        if not done:
            values = {}
            for q in qis:
                if q["numeric"]:
                    vals = [float(rows[i][q["name"]]) for i in part]
                    lo, hi = int(min(vals)), int(max(vals))
                    values[q["name"]] = str(lo) if lo == hi else f"{lo}-{hi}"
                else:
                    values[q["name"]] = gen[q["name"]]
            for i in part:
                released[i] = values
    wall = time.perf_counter() - start
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r, g in zip(rows, released):
            w.writerow([g.get(c, r[c]) for c in header])
    print(json.dumps({"k": k, "wall_s": round(wall, 3)}))


if __name__ == "__main__":
    main()
