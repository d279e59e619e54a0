"""R2 reference: pandas reads the gzip CSV, applies R1's rules, and computes every customer's
recency, frequency and monetary, and the quintile scores, as BENCHMARKS.md R2 defines them.
Usage: r2_pandas.py DATA.csv.gz OUT.csv   (prints timing JSON; writes the table)"""
import json
import sys
import time

import pandas as pd

from retail_clean import clean_retail

start = time.perf_counter()
df = clean_retail(sys.argv[1]).copy()
cleaned = time.perf_counter()

reference = pd.Timestamp("2011-12-10 00:00:00")
df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
df["amount"] = df["Quantity"] * df["UnitPrice"]
g = df.groupby("CustomerID")
rfm = pd.DataFrame({
    "recency_days": (reference - g["InvoiceDate"].max()).dt.days,  # whole days, floor
    "frequency": g["InvoiceNo"].nunique(),
    "monetary": g["amount"].sum().round(2),
}).reset_index()
rfm["id_number"] = rfm["CustomerID"].astype(float)
n = len(rfm)


def quintile(column):
    """Rank ascending with ties broken by ascending CustomerID, then five equal-count bins."""
    order = rfm.sort_values([column, "id_number"], kind="mergesort").index
    rank = pd.Series(range(n), index=order)
    return rank * 5 // n + 1


rfm["r_score"] = 6 - quintile("recency_days")
rfm["f_score"] = quintile("frequency")
rfm["m_score"] = quintile("monetary")
done = time.perf_counter()
rfm[["CustomerID", "recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"]].to_csv(
    sys.argv[2], index=False, float_format="%.2f")
print(json.dumps({"customers": n, "seconds_in_process": round(done - start, 3), "rfm_seconds": round(done - cleaned, 3)}))
