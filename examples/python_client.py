"""Persona from Python, notebook style: run it cell by cell (or whole) against a running server.

    ./run persona generate --size small --out shop && ./run persona ingest --config shop/shop.toml
    ./run persona train recommend --config shop/shop.toml --models shop/models
    ./run persona profile build --config shop/shop.toml --models shop/models
    KEY=$(./run persona keys create --name notebook --role admin | head -1)
    ./run persona serve --config shop/shop.toml --models shop/models &
    PERSONA_KEY=$KEY PYTHONPATH=clients/python python3 examples/python_client.py
"""
import os

from persona_client import Client, NotFound

persona = Client(os.environ.get("PERSONA_URL", "http://127.0.0.1:8080"), api_key=os.environ.get("PERSONA_KEY"))

# %% The shop at a glance
stats = persona.stats()
print(f"{stats['users']} users, {stats['items']} items, {stats['events']} events, revenue {stats['revenue']:.2f}")

# %% One customer: profile and recommendations with their reasons
profile = persona.profile("U000042")
print("segment", profile.get("segment"), "RFM", profile.get("rfm"))
recs = persona.recommendations("U000042", k=5)
for r in recs["recommendations"]:
    print(f"  {r.get('title', r['item'])}: {r['reason']}")

# %% Live: a purchase arrives, the next list knows it
result = persona.ingest_events([{"user": "U000042", "item": recs["recommendations"][0]["item"], "type": "purchase",
                                 "timestamp": "2026-01-01T10:00:00Z"},
                                {"user": "U000042", "item": "P00001", "type": "teleport", "timestamp": "2026-01-01T10:00:00Z"}])
print("accepted", result.accepted, "rejected", result.rejected, result.errors)

# %% What people say (English and Chinese)
print(persona.analyze("物流太慢了，很失望"))
print(persona.chat("where is my last order?", user="U000042")["reply"])

# %% Private statistics (charged to this key's budget)
print(persona.dp("count", 0.1))

# %% DataFrames, when pandas is installed
try:
    from persona_client import frames
    print(frames.recommendations_frame(persona, ["U000001", "U000002"], k=3).head())
    print(frames.profiles_frame(persona, ["U000001", "U000002"]).filter(like="rfm.").head())
except ImportError as e:
    print(e)

# %% Errors carry the server's reason
try:
    persona.experiment_report("no-such-experiment")
except NotFound as e:
    print(e.status, e.detail)
