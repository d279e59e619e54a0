#!/usr/bin/env python3
"""T4 references: TF-IDF cosine (scikit-learn, word + character n-grams) and Okapi BM25 (the
rank_bm25 package's BM25Okapi formulas, k1 1.5, b 0.75, epsilon 0.25, written out with numpy since
the package is not in Debian), each indexing question + answer. Prints one JSON line per method.

Usage: t4_faq.py FAQ_JSON GROUND_TRUTH_CSV
"""
import csv
import json
import math
import re
import sys
import time

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer


def metrics(ranked_ids, truth):
    r1 = r3 = mrr = 0.0
    for ranked, gold in zip(ranked_ids, truth):
        top = list(ranked[:5])
        if gold in top:
            rank = top.index(gold)
            r1 += rank < 1
            r3 += rank < 3
            mrr += 1.0 / (rank + 1)
    n = len(truth)
    return {"questions": n, "recall_at_1": round(r1 / n, 4), "recall_at_3": round(r3 / n, 4), "mrr_at_5": round(mrr / n, 4)}


def tokens(text):
    return re.findall(r"\w+", text.lower())


class Bm25Okapi:
    def __init__(self, corpus, k1=1.5, b=0.75, epsilon=0.25):
        self.k1, self.b = k1, b
        self.docs = [dict() for _ in corpus]
        self.lengths = np.array([len(d) for d in corpus], dtype=float)
        self.avgdl = self.lengths.mean()
        df = {}
        for i, doc in enumerate(corpus):
            for t in doc:
                self.docs[i][t] = self.docs[i].get(t, 0) + 1
            for t in set(doc):
                df[t] = df.get(t, 0) + 1
        n = len(corpus)
        self.idf = {t: math.log(n - f + 0.5) - math.log(f + 0.5) for t, f in df.items()}
        floor = epsilon * (sum(self.idf.values()) / len(self.idf))
        self.idf = {t: (v if v >= 0 else floor) for t, v in self.idf.items()}

    def scores(self, query):
        s = np.zeros(len(self.docs))
        for t in query:
            idf = self.idf.get(t, 0.0)
            tf = np.array([d.get(t, 0) for d in self.docs], dtype=float)
            s += idf * tf * (self.k1 + 1) / (tf + self.k1 * (1 - self.b + self.b * self.lengths / self.avgdl))
        return s


def main():
    faq = json.load(open(sys.argv[1], encoding="utf-8"))
    ids = [f["id"] for f in faq]
    docs = [f["question"] + " " + f["answer"] for f in faq]
    with open(sys.argv[2], encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["document"] in set(ids)]
    questions = [r["question"] for r in rows]
    truth = [r["document"] for r in rows]

    start = time.perf_counter()
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    d = hstack([word.fit_transform(docs), char.fit_transform(docs)]).tocsr()
    q = hstack([word.transform(questions), char.transform(questions)]).tocsr()
    sim = (q @ d.T).toarray() / 2  # each half is unit length: the mean of the two cosines
    ranked = [[ids[i] for i in np.argsort(-row, kind="stable")] for row in sim]
    seconds = time.perf_counter() - start
    print(json.dumps(dict(metrics(ranked, truth), method="tfidf-word-char", seconds=round(seconds, 3))))

    start = time.perf_counter()
    bm25 = Bm25Okapi([tokens(x) for x in docs])
    ranked = [[ids[i] for i in np.argsort(-bm25.scores(tokens(x)), kind="stable")] for x in questions]
    seconds = time.perf_counter() - start
    print(json.dumps(dict(metrics(ranked, truth), method="bm25-okapi", seconds=round(seconds, 3))))


if __name__ == "__main__":
    main()
