"""Reading the text benchmark sets the same way for every reference system."""
import json

import pandas as pd


def load(path, fmt, text, label):
    """Returns (texts, labels, missing): rows without a text or a label are left out and counted.
    `label` may be "a/b": the two columns joined by '/' (SMP2019's domain and intent)."""
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as f:
            df = pd.DataFrame([json.loads(line) for line in f if line.strip()])
    else:
        df = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", quoting=3 if fmt == "tsv" else 0,
                         dtype=str, keep_default_na=False, na_values=[""])
    columns = [c for c in text.split("|") if c in df.columns]
    texts = df[columns[0]]
    if "/" in label:
        a, b = label.split("/")
        labels = df[a].astype(str) + "/" + df[b].astype(str)
    else:
        labels = df[label].astype(str)
    keep = texts.notna() & (texts.astype(str).str.strip() != "") & labels.notna()
    missing = int((~keep).sum())
    return texts[keep].astype(str).tolist(), labels[keep].tolist(), missing


def metrics(truth, predicted):
    from sklearn.metrics import accuracy_score, f1_score
    m = {"accuracy": round(float(accuracy_score(truth, predicted)), 4),
         "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4)}
    if truth and "/" in truth[0]:
        m["domain_accuracy"] = round(float(accuracy_score([t.split("/")[0] for t in truth],
                                                          [p.split("/")[0] for p in predicted])), 4)
    return m
