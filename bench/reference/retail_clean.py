"""R1's six rules on the Online Retail log with pandas, in order: the clean rows the retail
references (R2, R4) start from."""
import pandas as pd


def clean_retail(path):
    df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    df = df[~df.duplicated(keep="first")]
    df = df[df["CustomerID"].notna()]
    df = df[~df["InvoiceNo"].str.startswith("C")]
    df = df[df["Quantity"] > 0]
    df = df[df["UnitPrice"] > 0]
    return df[df["StockCode"].str.match(r"^[0-9]")]
