"""Text reference: the fastText command-line tool (Debian's fasttext), autotuned on a 15%
validation split of the training set for a fixed time. Texts are lower-cased and tokenised;
Chinese is split into characters (fastText's word 2-grams then are character 2-grams).
Usage: text_fasttext.py SECONDS FORMAT TEXT_COLUMN LABEL LANG TRAIN TEST [TEST...]"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

from text_data import load, metrics

seconds, fmt, text, label, lang, train, *tests = sys.argv[1:]
TOKEN = re.compile(r"[\u4e00-\u9fff]|[^\W\d_]+|\d+|[^\w\s]", re.UNICODE)


def line(t):
    return " ".join(TOKEN.findall(t.lower()))


def write(path, texts, labels=None):
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            prefix = "__label__" + labels[i].replace(" ", "_") + " " if labels else ""
            f.write(prefix + line(t) + "\n")


x, y, missing = load(train, fmt, text, label)
rows = list(range(len(x)))
random.Random(1).shuffle(rows)
cut = len(rows) * 15 // 100
valid, rest = rows[:cut], rows[cut:]
with tempfile.TemporaryDirectory() as tmp:
    write(os.path.join(tmp, "train.txt"), [x[i] for i in rest], [y[i] for i in rest])
    write(os.path.join(tmp, "valid.txt"), [x[i] for i in valid], [y[i] for i in valid])
    start = time.perf_counter()
    subprocess.run(["fasttext", "supervised", "-input", os.path.join(tmp, "train.txt"), "-output",
                    os.path.join(tmp, "model"), "-autotune-validation", os.path.join(tmp, "valid.txt"),
                    "-autotune-duration", seconds, "-thread", "2", "-verbose", "0"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    train_s = time.perf_counter() - start
    for path in tests:
        tx, ty, tmissing = load(path, fmt, text, label)
        write(os.path.join(tmp, "test.txt"), tx)
        start = time.perf_counter()
        out = subprocess.run(["fasttext", "predict", os.path.join(tmp, "model.bin"), os.path.join(tmp, "test.txt")],
                             check=True, capture_output=True, text=True).stdout.split("\n")
        pred_s = time.perf_counter() - start
        names = {v.replace(" ", "_"): v for v in set(y)}
        predicted = [names.get(p[len("__label__"):], p) for p in out[:len(tx)]]
        m = metrics(ty, predicted)
        m.update({"test": path, "train_rows": len(x), "missing_text": missing + tmissing, "train_s": round(train_s, 2),
                  "pred_per_s": round(len(tx) / pred_s)})
        print(json.dumps(m), flush=True)
