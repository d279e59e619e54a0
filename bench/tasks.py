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


def emit(obj):
    print(json.dumps(obj), flush=True)


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
        rejects = os.path.join(tmp, "rejects.jsonl")
        out, wall, rss = measure([args.persona, "clean", "--config", local, "--json", "--quiet", "--rejects", rejects])
        report = json.loads(out)
        removed = {r["rule"]: r["removed"] for r in report["rules"]}
        persona = {"rows_in": report["rows_read"]}
        for rule in ["duplicate", "missing_customer", "cancellation", "nonpositive_quantity", "nonpositive_price",
                     "non_product"]:
            persona["removed_" + rule] = removed.get(rule, 0)
        extra = {k: v for k, v in removed.items() if v and "removed_" + k not in persona}
        if extra:
            persona["removed_other"] = extra
        persona["kept"] = report["rows_kept"]
        with open(rejects) as f:
            persona["reject_log_lines"] = sum(1 for _ in f)
        emit({"task": "R1", "system": "persona", "metrics": persona, "wall_s": round(wall, 3),
              "peak_rss_bytes": rss, "threads": 2})

        try:
            out, pwall, prss = measure(["/usr/bin/python3", os.path.join(args.root, "bench", "reference", "r1_pandas.py"),
                                        path])
        except SystemExit as e:
            emit({"task": "R1", "system": "pandas", "skipped": str(e)})
            return
        pandas = json.loads(out)
        pandas.pop("seconds_in_process", None)
        emit({"task": "R1", "system": "pandas", "metrics": pandas, "wall_s": round(pwall, 3), "peak_rss_bytes": prss,
              "threads": 1})
        keys = [k for k in pandas]
        equal = all(persona.get(k) == pandas[k] for k in keys) and "removed_other" not in persona
        emit({"task": "R1", "ratio": {"counts_equal": equal, "speedup_vs_pandas": round(pwall / wall, 2),
                                      "memory_vs_pandas": round(rss / prss, 3)}})

        # Ingesting into the store: rows per second, with the online_retail preset.
        store = os.path.join(tmp, "retail.db")
        out, iwall, irss = measure([args.persona, "ingest", "--preset", "online_retail", path, "--store", store,
                                    "--json", "--quiet"])
        report = json.loads(out)["sources"][0]
        emit({"task": "R1", "system": "persona-ingest",
              "metrics": {"rows_read": report["rows_read"], "rows_kept": report["rows_kept"],
                          "rows_per_s": round(report["rows_read"] / iwall)},
              "wall_s": round(iwall, 3), "peak_rss_bytes": irss, "threads": 2})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("task")
    parser.add_argument("--persona", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    args.data = os.path.abspath(args.data or os.path.join(args.root, "..", "shared", "data"))
    {"R1": r1}[args.task](args)


if __name__ == "__main__":
    main()
