"""R4 reference: the same population, features and labels with pandas, then scikit-learn's logistic
regression, scikit-learn's MLP (64-64, ReLU, Adam, L2) and xgboost, each on standardised features.
Prints one JSON line per model. Usage: r4_sklearn.py online_retail.csv.gz"""
import json
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from retail_clean import clean_retail

df = clean_retail(sys.argv[1]).copy()
df["ts"] = pd.to_datetime(df["InvoiceDate"])
df["amount"] = df["Quantity"] * df["UnitPrice"]
# The customer's country: the first row's (as the store keeps the first value it saw).
country = df.groupby("CustomerID")["Country"].first()
home = country.value_counts().idxmax()
DAY = pd.Timedelta(days=1)
FEATURES = ["recency_days", "frequency", "monetary", "tenure_days", "mean_basket_value", "distinct_items",
            "invoices_30d", "invoices_90d", "mean_days_between_invoices", "home_region"]


def snapshot(t, horizon=90):
    t = pd.Timestamp(t)
    before = df[df["ts"] < t]
    after = df[(df["ts"] >= t) & (df["ts"] < t + horizon * DAY)]
    inv = before.groupby(["CustomerID", "InvoiceNo"])["ts"].min().reset_index()
    g = before.groupby("CustomerID")
    f = pd.DataFrame({
        "recency_days": (t - g["ts"].max()) / DAY,
        "frequency": inv.groupby("CustomerID")["InvoiceNo"].nunique(),
        "monetary": g["amount"].sum(),
        "tenure_days": (t - g["ts"].min()) / DAY,
        "distinct_items": g["StockCode"].nunique(),
        "invoices_30d": inv[inv["ts"] >= t - 30 * DAY].groupby("CustomerID").size(),
        "invoices_90d": inv[inv["ts"] >= t - 90 * DAY].groupby("CustomerID").size(),
    }).fillna(0)
    f["mean_basket_value"] = f["monetary"] / f["frequency"]
    span = (inv.groupby("CustomerID")["ts"].max() - inv.groupby("CustomerID")["ts"].min()) / DAY
    f["mean_days_between_invoices"] = np.where(f["frequency"] > 1, span / (f["frequency"] - 1), f["tenure_days"])
    f["home_region"] = (country.reindex(f.index) == home).astype(float)
    y = f.index.isin(after["CustomerID"].unique()).astype(int)
    return f[FEATURES].to_numpy(dtype=float), y


x_train, y_train = snapshot("2011-06-01")
x_test, y_test = snapshot("2011-09-01")
models = {
    "sklearn-logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    "sklearn-mlp-64-64": make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64, 64), alpha=1e-4,
                                                                       max_iter=200, random_state=1)),
}
try:
    from xgboost import XGBClassifier
    models["xgboost"] = XGBClassifier(n_estimators=200, max_depth=3, learning_rate=0.05, n_jobs=2, random_state=1)
except ImportError as e:
    print(json.dumps({"system": "xgboost", "skipped": str(e)}))
for name, model in models.items():
    start = time.perf_counter()
    model.fit(x_train, y_train)
    train_s = time.perf_counter() - start
    threshold_grid = np.arange(0.01, 1.0, 0.01)
    p_train = model.predict_proba(x_train)[:, 1]
    threshold = max(threshold_grid, key=lambda t: f1_score(y_train, p_train >= t))
    p = model.predict_proba(x_test)[:, 1]
    print(json.dumps({"system": name, "metrics": {
        "train_population": int(len(y_train)), "test_population": int(len(y_test)),
        "test_positive_rate": round(float(y_test.mean()), 4), "auc": round(float(roc_auc_score(y_test, p)), 4),
        "logloss": round(float(log_loss(y_test, p)), 4), "f1": round(float(f1_score(y_test, p >= threshold)), 4),
        "train_s": round(train_s, 3)}}), flush=True)
