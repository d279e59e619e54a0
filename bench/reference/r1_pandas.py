"""R1 reference: pandas reads the gzip CSV and applies the same rules in the same order."""
import json
import sys
import time

import pandas as pd

start = time.perf_counter()
df = pd.read_csv(sys.argv[1], dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
counts = {"rows_in": len(df)}


def remove(name, mask):
    global df
    counts[name] = int(mask.sum())
    df = df[~mask]


remove("removed_duplicate", df.duplicated(keep="first"))
remove("removed_missing_customer", df["CustomerID"].isna())
remove("removed_cancellation", df["InvoiceNo"].str.startswith("C"))
remove("removed_nonpositive_quantity", df["Quantity"] <= 0)
remove("removed_nonpositive_price", df["UnitPrice"] <= 0)
remove("removed_non_product", ~df["StockCode"].str.match(r"^[0-9]"))
counts["kept"] = len(df)
counts["seconds_in_process"] = round(time.perf_counter() - start, 3)
print(json.dumps(counts))
