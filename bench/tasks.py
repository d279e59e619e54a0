"""Benchmark driver: runs Persona and the reference systems of a task on the same input in the same
run, measures wall time and peak memory of each as a child process, and prints JSON lines."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def measure(cmd):
    """Runs cmd; returns (stdout, wall seconds, peak RSS bytes) of that child alone (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.stderr.write(err.read().decode(errors="replace"))
            raise SystemExit(f"failed: {' '.join(cmd)} (exit {proc.returncode})")
        return out.read().decode(), wall, usage.ru_maxrss * 1024


def measure_median(cmd, repeats):
    """Runs cmd `repeats` times; returns the output of the last run, the median wall time and
    the largest peak RSS. The first run also warms the page cache for the ones after it."""
    runs = [measure(cmd) for _ in range(repeats)]
    walls = sorted(r[1] for r in runs)
    return runs[-1][0], walls[len(walls) // 2], max(r[2] for r in runs)


def emit(obj):
    print(json.dumps(obj), flush=True)


def r1_metrics(report):
    """persona clean --json -> the metric names of BENCHMARKS.md R1."""
    removed = {r["rule"]: r["removed"] for r in report["rules"]}
    metrics = {"rows_in": report["rows_read"]}
    for rule in ["duplicate", "missing_customer", "cancellation", "nonpositive_quantity", "nonpositive_price",
                 "non_product"]:
        metrics["removed_" + rule] = removed.get(rule, 0)
    extra = {k: v for k, v in removed.items() if v and "removed_" + k not in metrics}
    if extra:
        metrics["removed_other"] = extra  # rows an implicit rule removed: would break the equality
    metrics["kept"] = report["rows_kept"]
    return metrics


def r1(args):
    path = os.path.join(args.data, "retail", "online_retail.csv.gz")
    if not os.path.exists(path):
        emit({"task": "R1", "skipped": f"data not found: {path}"})
        return
    config = os.path.join(args.root, "bench", "r1.toml")
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "r1.toml")
        with open(config) as f:
            text = f.read().replace("@DATA@", path)
        with open(local, "w") as f:
            f.write(text)
        # The same work as pandas: read, apply the rules, count. Then the same again writing the
        # reject log (every removed row with its file, line, rule and original text), which pandas
        # has no equivalent of; reported on its own line.
        out, wall, rss = measure_median([args.persona, "clean", "--config", local, "--json", "--quiet"], args.repeats)
        persona = r1_metrics(json.loads(out))
        emit({"task": "R1", "system": "persona", "metrics": persona, "wall_s": round(wall, 3),
              "peak_rss_bytes": rss, "threads": 3, "runs": args.repeats})
        rejects = os.path.join(tmp, "rejects.jsonl")
        out, lwall, lrss = measure_median([args.persona, "clean", "--config", local, "--json", "--quiet", "--rejects",
                                           rejects], args.repeats)
        with_log = r1_metrics(json.loads(out))
        with open(rejects) as f:
            with_log["reject_log_lines"] = sum(1 for _ in f)
        emit({"task": "R1", "system": "persona+reject_log", "metrics": with_log, "wall_s": round(lwall, 3),
              "peak_rss_bytes": lrss, "threads": 3, "runs": args.repeats})

        try:
            out, pwall, prss = measure_median(["/usr/bin/python3", os.path.join(args.root, "bench", "reference",
                                                                                "r1_pandas.py"), path], args.repeats)
        except SystemExit as e:
            emit({"task": "R1", "system": "pandas", "skipped": str(e)})
            return
        pandas = json.loads(out)
        pandas.pop("seconds_in_process", None)
        emit({"task": "R1", "system": "pandas", "metrics": pandas, "wall_s": round(pwall, 3), "peak_rss_bytes": prss,
              "threads": 1, "runs": args.repeats})
        keys = [k for k in pandas]
        equal = all(persona.get(k) == pandas[k] for k in keys) and "removed_other" not in persona
        emit({"task": "R1", "ratio": {"counts_equal": equal, "speedup_vs_pandas": round(pwall / wall, 2),
                                      "memory_vs_pandas": round(rss / prss, 3),
                                      "speedup_vs_pandas_with_reject_log": round(pwall / lwall, 2),
                                      "memory_vs_pandas_with_reject_log": round(lrss / prss, 3)}})

        # Ingesting into the store: rows per second, with the online_retail preset.
        store = os.path.join(tmp, "retail.db")
        out, iwall, irss = measure([args.persona, "ingest", "--preset", "online_retail", path, "--store", store,
                                    "--json", "--quiet"])
        report = json.loads(out)["sources"][0]
        emit({"task": "R1", "system": "persona-ingest",
              "metrics": {"rows_read": report["rows_read"], "rows_kept": report["rows_kept"],
                          "rows_per_s": round(report["rows_read"] / iwall)},
              "wall_s": round(iwall, 3), "peak_rss_bytes": irss, "threads": 3})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("task")
    parser.add_argument("--persona", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--repeats", type=int, default=3, help="runs per system; the median wall time is reported")
    args = parser.parse_args()
    args.data = os.path.abspath(args.data or os.path.join(args.root, "..", "shared", "data"))
    {"R1": r1}[args.task](args)


if __name__ == "__main__":
    main()
