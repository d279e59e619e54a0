"""The client: one method per route of Persona's HTTP API (docs/api.md), JSON in and out."""
import json
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from .errors import ConnectionFailed, PersonaError, error_for

Json = Dict[str, Any]

# Answers worth waiting for: the server is busy (429, its rate limit) or away for a moment (503,
# e.g. its database restarting). A request refused so was not carried out, so sending it again is
# safe for every route.
_RETRIED = (429, 503)


@dataclass
class IngestResult:
    """What an ingest of many records did, over all the batches it was sent in: records accepted
    and rejected, and each rejected record's error with its index in the whole input (``index``,
    ``field``, ``value``, ``reason``). ``batches`` holds each batch's own answer."""
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: List[Json] = field(default_factory=list)
    batches: List[Json] = field(default_factory=list)


class Client:
    """Persona's HTTP API.

    ``base_url``: the server, e.g. ``http://127.0.0.1:8080``. ``api_key``: a key from
    ``persona keys create`` (sent as ``Authorization: Bearer``); None for a server run with
    ``--no-auth``. A 429 or 503 answer is retried up to ``retries`` times, waiting what the
    server's ``Retry-After`` says, else ``backoff`` seconds doubled at each try (with jitter, at
    most ``max_backoff``); connection errors are retried the same way for reads. Other refusals
    raise a ``PersonaError`` subclass carrying the server's problem+json detail.
    """

    def __init__(self, base_url: str, api_key: Optional[str] = None, *, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 0.25, max_backoff: float = 8.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retried = 0  # requests sent again after a 429, a 503 or a lost connection (for monitoring)

    # ---- transport ---------------------------------------------------------------------------

    def request(self, method: str, path: str, params: Optional[Mapping[str, Any]] = None, body: Any = None) -> Json:
        """One call: ``path`` under the base URL, ``params`` as the query (None values left out),
        ``body`` sent as JSON. Returns the answer's JSON."""
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method),
                                            timeout=self.timeout) as answer:
                    return _json(answer.read())
            except urllib.error.HTTPError as e:
                text = e.read()
                if e.code in _RETRIED and not last:
                    self._wait(attempt, e.headers.get("Retry-After"))
                    continue
                raise _problem(e.code, text) from None
            except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
                if method == "GET" and not last:
                    self._wait(attempt, None)
                    continue
                raise ConnectionFailed(0, "Connection failed", f"{method} {url}: {getattr(e, 'reason', e)}") from None
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, retry_after: Optional[str]) -> None:
        self.retried += 1
        try:
            delay = float(retry_after) if retry_after else None
        except ValueError:
            delay = None
        if delay is None:
            delay = min(self.max_backoff, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)
        time.sleep(min(delay, self.max_backoff))

    def _get(self, path: str, **params: Any) -> Json:
        return self.request("GET", path, params)

    def _post(self, path: str, body: Any, **params: Any) -> Json:
        return self.request("POST", path, params, body)

    # ---- operations --------------------------------------------------------------------------

    def health(self) -> Json:
        """``GET /healthz``: the process answers."""
        return self._get("/healthz")

    def ready(self) -> bool:
        """``GET /readyz``: whether the server is ready to answer (False while it is not)."""
        try:
            return bool(self._get("/readyz").get("ready"))
        except PersonaError:
            return False

    def stats(self) -> Json:
        """``GET /v1/stats``: counts, revenue, date range, event types, top items and categories."""
        return self._get("/v1/stats")

    def models(self) -> Json:
        """``GET /v1/models``: the recommender, the text models, every model file and the training history."""
        return self._get("/v1/models")

    def retrain(self) -> Json:
        """``POST /v1/models/recommend/retrain``: retrain the recommender in the background."""
        return self._post("/v1/models/recommend/retrain", {})

    # ---- ingest ------------------------------------------------------------------------------

    def ingest(self, entity: str, records: Iterable[Mapping[str, Any]], batch_size: int = 10000) -> IngestResult:
        """Send records of one entity (``"event"``, ``"user"``, ``"item"`` or ``"text"``; their
        fields as in docs/data-model.md) in batches of ``batch_size``. Bad records do not raise:
        each is in ``errors`` with its index in ``records``, and the others are stored. The same
        batch sent twice is stored once."""
        if entity.endswith("s"):
            entity = entity[:-1]
        if entity not in ("event", "user", "item", "text"):
            raise ValueError(f"entity is event, user, item or text, not {entity!r}")
        result = IngestResult()
        batch: List[Mapping[str, Any]] = []

        def send() -> None:
            offset = result.records
            try:
                answer = self._post(f"/v1/{entity}s", batch)
            except PersonaError as e:
                if e.status != 422:
                    raise
                answer = {"records": len(batch), "accepted": 0, "rejected": len(batch), "errors": e.body.get("errors", [])}
            result.batches.append(answer)
            result.records += answer.get("records", len(batch))
            result.accepted += answer.get("accepted", 0)
            result.rejected += answer.get("rejected", 0)
            for error in answer.get("errors", []):
                result.errors.append(dict(error, index=offset + error.get("index", 0)))

        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                send()
                batch = []
        if batch:
            send()
        return result

    def ingest_events(self, records: Iterable[Mapping[str, Any]], batch_size: int = 10000) -> IngestResult:
        return self.ingest("event", records, batch_size)

    def ingest_users(self, records: Iterable[Mapping[str, Any]], batch_size: int = 10000) -> IngestResult:
        return self.ingest("user", records, batch_size)

    def ingest_items(self, records: Iterable[Mapping[str, Any]], batch_size: int = 10000) -> IngestResult:
        return self.ingest("item", records, batch_size)

    def ingest_texts(self, records: Iterable[Mapping[str, Any]], batch_size: int = 10000) -> IngestResult:
        return self.ingest("text", records, batch_size)

    # ---- people ------------------------------------------------------------------------------

    def profile(self, user: str) -> Json:
        """``GET /v1/users/{id}/profile``: RFM, activity, affinities, tags, segment and consent."""
        return self._get(f"/v1/users/{_segment(user)}/profile")

    def user_events(self, user: str, limit: int = 200) -> Json:
        """``GET /v1/users/{id}/events``: the user's events, newest first."""
        return self._get(f"/v1/users/{_segment(user)}/events", limit=limit)

    def segments(self) -> Json:
        """``GET /v1/segments``: the learned segments."""
        return self._get("/v1/segments")

    def rfm(self) -> Json:
        """``GET /v1/segments/rfm``: the RFM grid and the named RFM segments."""
        return self._get("/v1/segments/rfm")

    def segment_users(self, segment: Any, limit: int = 50, offset: int = 0) -> Json:
        """``GET /v1/segments/{id}/users``: a learned segment (a number) or an RFM one (a name)."""
        return self._get(f"/v1/segments/{_segment(str(segment))}/users", limit=limit, offset=offset)

    def erase(self, user: str) -> Json:
        """``DELETE /v1/users/{id}``: the right to be forgotten. The answer may say ``retraining``
        with a ``status_url``; ``erasure(id)`` follows it."""
        return self.request("DELETE", f"/v1/users/{_segment(user)}")

    def erasure(self, erasure_id: str) -> Json:
        """``GET /v1/erasures/{id}``: a 202 erasure's status."""
        return self._get(f"/v1/erasures/{_segment(erasure_id)}")

    # ---- recommendations ---------------------------------------------------------------------

    def recommendations(self, user: str, k: int = 10, *, category: Optional[str] = None, min_price: Optional[float] = None,
                        max_price: Optional[float] = None, diversity: Optional[float] = None,
                        exclude_bought: bool = False) -> Json:
        """``GET /v1/users/{id}/recommendations``: items with a score and a reason each, the
        ``request_id`` to send back with feedback, the model's version, and the experiment and
        variant when the user is in one."""
        return self._get(f"/v1/users/{_segment(user)}/recommendations", k=k, category=category, min_price=min_price,
                         max_price=max_price, diversity=diversity, exclude_bought="true" if exclude_bought else None)

    def recommendations_batch(self, users: Sequence[str], k: int = 10, **options: Any) -> Dict[str, Json]:
        """Recommendations for many users (one request each, on one connection's worth of retries):
        user -> answer."""
        return {user: self.recommendations(user, k, **options) for user in users}

    def similar(self, item: str, k: int = 10) -> Json:
        """``GET /v1/items/{id}/similar``: the item's neighbours."""
        return self._get(f"/v1/items/{_segment(item)}/similar", k=k)

    # ---- texts and the assistant -------------------------------------------------------------

    def analyze(self, text: str) -> Json:
        """``POST /v1/analyze``: language, sentiment, demand category, intent, keywords (English and Chinese)."""
        return self._post("/v1/analyze", {"text": text})

    def chat(self, message: str, user: Optional[str] = None, session: Optional[str] = None) -> Json:
        """``POST /v1/chat``: the assistant's reply; pass back ``session`` to continue the conversation."""
        body: Json = {"message": message}
        if user is not None:
            body["user"] = user
        if session is not None:
            body["session"] = session
        return self._post("/v1/chat", body)

    # ---- statistics --------------------------------------------------------------------------

    def dp(self, statistic: str, epsilon: float, **parameters: Any) -> Json:
        """``POST /v1/stats/dp``: a differentially private count, sum, mean, quantile or histogram,
        charged to this key's budget (``upper``, ``resolution``, ``q``, ``bins``, ``by``, ``event``
        as in docs/privacy.md)."""
        return self._post("/v1/stats/dp", dict(parameters, statistic=statistic, epsilon=epsilon))

    # ---- experiments and feedback ------------------------------------------------------------

    def feedback(self, records: Sequence[Mapping[str, Any]]) -> Json:
        """``POST /v1/feedback``: what users did with served lists (``request_id``, ``user``,
        ``item``, ``kind``; ``position``, ``value``, ``model``, ``time``). Stored once per
        request, item and kind; bad records are listed in ``errors``."""
        return self._post("/v1/feedback", list(records))

    def experiments(self) -> Json:
        """``GET /v1/experiments``: every experiment and the running ones."""
        return self._get("/v1/experiments")

    def create_experiment(self, name: str, variants: Mapping[str, Any], split: Optional[str] = None,
                          surface: str = "recommend") -> Json:
        """``POST /v1/experiments``: ``variants`` maps a name to ``"current"`` or a model file of
        the server's model directory (or, with ``surface="assistant"``, to assistant settings)."""
        body: Json = {"name": name, "variants": dict(variants), "surface": surface}
        if split:
            body["split"] = split
        return self._post("/v1/experiments", body)

    def experiment_report(self, name: str, alpha: Optional[float] = None, epsilon: Optional[float] = None) -> Json:
        """``GET /v1/experiments/{name}/report``: per-variant figures, sequential comparisons, the
        sample-ratio check and a verdict; with ``epsilon``, a differentially private release."""
        return self._get(f"/v1/experiments/{_segment(name)}/report", alpha=alpha, epsilon=epsilon)

    def stop_experiment(self, name: str) -> Json:
        return self._post(f"/v1/experiments/{_segment(name)}/stop", {})

    def promote_variant(self, name: str, variant: str) -> Json:
        return self._post(f"/v1/experiments/{_segment(name)}/promote", {"variant": variant})


def _segment(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(data: bytes) -> Json:
    return json.loads(data.decode("utf-8")) if data else {}


def _problem(status: int, data: bytes) -> PersonaError:
    try:
        body = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        body = {"detail": data.decode("utf-8", "replace")[:500]}
    if not isinstance(body, dict):
        body = {"detail": str(body)[:500]}
    return error_for(status, str(body.get("title", "")), str(body.get("detail", "")), body)
