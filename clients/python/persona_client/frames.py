"""Answers as pandas DataFrames (needs pandas: ``pip install pandas`` or Debian's python3-pandas)."""
from typing import Any, Dict, Sequence

from .client import Client


def _pandas() -> Any:
    try:
        import pandas  # noqa: F401
    except ImportError as e:  # the core client needs only the standard library
        raise ImportError("persona_client.frames needs pandas (pip install pandas, or apt install python3-pandas)") from e
    return pandas


def recommendations_frame(client: Client, users: Sequence[str], k: int = 10, **options: Any) -> Any:
    """One row per (user, rank): user, rank, item, title, category, score, reason, request_id, model, variant."""
    pd = _pandas()
    rows = []
    for user, answer in client.recommendations_batch(users, k, **options).items():
        for rank, r in enumerate(answer.get("recommendations", [])):
            rows.append({"user": user, "rank": rank, "item": r.get("item"), "title": r.get("title"),
                         "category": r.get("category"), "score": r.get("score"), "reason": r.get("reason"),
                         "request_id": answer.get("request_id"), "model": answer.get("model"),
                         "variant": answer.get("variant")})
    return pd.DataFrame(rows, columns=["user", "rank", "item", "title", "category", "score", "reason", "request_id", "model",
                                       "variant"])


def profiles_frame(client: Client, users: Sequence[str]) -> Any:
    """One row per user: the profile's numbers, nested ones as ``group.name`` (``rfm.recency_days``,
    ``activity.events``), and its segment; users without a profile (or consent) left out."""
    pd = _pandas()
    rows: Dict[str, Dict[str, Any]] = {}
    for user in users:
        try:
            p = client.profile(user)
        except Exception:  # no profile, or no consent to personalisation
            continue
        rows[user] = _numbers(p)
    return pd.DataFrame.from_dict(rows, orient="index")


def _numbers(profile: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    row: Dict[str, Any] = {}
    for k, v in profile.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            row[prefix + k] = v
        elif isinstance(v, dict) and not prefix:
            row.update(_numbers(v, k + "."))
    return row


def segment_users_frame(client: Client, segment: Any, limit: int = 1000) -> Any:
    """A segment's members, most valuable first, as rows."""
    pd = _pandas()
    return pd.DataFrame(client.segment_users(segment, limit=limit).get("users", []))


def experiment_frame(client: Client, name: str) -> Any:
    """An experiment report's per-variant figures, one row per variant."""
    pd = _pandas()
    rows = []
    for v in client.experiment_report(name).get("variants", []):
        row = {k: v[k] for k in ("name", "users", "impressions", "clicks", "purchases", "revenue") if k in v}
        for metric in ("ctr", "conversion", "revenue_per_impression"):
            if isinstance(v.get(metric), dict):
                row[metric] = v[metric].get("value")
        rows.append(row)
    return pd.DataFrame(rows)
