"""Text reference: scikit-learn TF-IDF + logistic regression. English: word 1-2-grams and
character 2-5-grams within words; Chinese: character 1-2-grams; sublinear tf; C = 10.
Usage: text_sklearn.py FORMAT TEXT_COLUMN LABEL LANG TRAIN TEST [TEST...]"""
import json
import sys
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union

from text_data import load, metrics

fmt, text, label, lang, train, *tests = sys.argv[1:]
x, y, missing = load(train, fmt, text, label)
if lang == "zh":
    features = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
else:
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True))
model = make_pipeline(features, LogisticRegression(C=10, max_iter=1000))
start = time.perf_counter()
model.fit(x, y)
train_s = time.perf_counter() - start
for path in tests:
    tx, ty, tmissing = load(path, fmt, text, label)
    start = time.perf_counter()
    predicted = list(model.predict(tx))
    pred_s = time.perf_counter() - start
    m = metrics(ty, predicted)
    m.update({"test": path, "train_rows": len(x), "missing_text": missing + tmissing, "train_s": round(train_s, 2),
              "pred_per_s": round(len(tx) / pred_s)})
    print(json.dumps(m), flush=True)
