"""T1 as the assistant sees it, reference: scikit-learn TF-IDF (word 1-2-grams + character 2-5-grams
within words, sublinear tf) + logistic regression (C = 10), trained with the out_of_scope class,
and a confidence threshold chosen on a stratified 15% validation split by the rule Persona uses
(maximise right answers plus wrong answers withheld; an out-of-scope text withheld is right),
then refitted on all the training data.
Usage: t1_assistant_sklearn.py TRAIN_CSV TEST_CSV [TEST_CSV...]   (columns utterance,intent)"""
import json
import sys
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline, make_union

from text_data import load

OOS = "out_of_scope"


def model():
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
    return make_pipeline(features, LogisticRegression(C=10, max_iter=1000))


def choose_threshold(truth, best, confidence):
    order = np.argsort(confidence, kind="stable")
    gain, best_gain, threshold = 0, 0, 0.0
    for k, i in enumerate(order):
        if truth[i] == OOS:
            gain += 0 if best[i] == OOS else 1
        else:
            gain += -1 if best[i] == truth[i] else 1
        boundary = k + 1 == len(order) or confidence[order[k + 1]] > confidence[i]
        if boundary and gain > best_gain:
            best_gain = gain
            threshold = (confidence[i] + confidence[order[k + 1]]) / 2 if k + 1 < len(order) else confidence[i] + 1e-9
    return threshold


def answers(m, texts, threshold):
    p = m.predict_proba(texts)
    best = m.classes_[p.argmax(axis=1)]
    conf = p.max(axis=1)
    return np.where((conf < threshold) | (best == OOS), OOS, best)


x, y, _ = load(sys.argv[1], "csv", "utterance", "intent")
start = time.perf_counter()
xt, xv, yt, yv = train_test_split(x, y, test_size=0.15, stratify=y, random_state=1)
m = model().fit(xt, yt)
p = m.predict_proba(xv)
threshold = choose_threshold(np.array(yv), m.classes_[p.argmax(axis=1)], p.max(axis=1))
m = model().fit(x, y)
train_s = time.perf_counter() - start
for path in sys.argv[2:]:
    tx, ty, _ = load(path, "csv", "utterance", "intent")
    start = time.perf_counter()
    got = answers(m, tx, threshold)
    pred_s = time.perf_counter() - start
    ty = np.array(ty)
    oos, ins = ty == OOS, ty != OOS
    print(json.dumps({
        "test": path, "accuracy": round(float((got == ty).mean()), 4),
        "macro_f1": round(float(f1_score(ty, got, average="macro")), 4),
        "in_scope_accuracy": round(float((got[ins] == ty[ins]).mean()), 4),
        "in_scope_unknown_rate": round(float((got[ins] == OOS).mean()), 4),
        "out_of_scope_recall": round(float((got[oos] == OOS).mean()), 4) if oos.any() else None,
        "out_of_scope_precision": round(float((ty[got == OOS] == OOS).mean()), 4) if (got == OOS).any() else None,
        "threshold": round(float(threshold), 4), "train_s": round(train_s, 2), "pred_per_s": round(len(tx) / pred_s)}),
        flush=True)
