"""Errors raised by the client: the server's problem+json answers as exceptions, with its detail."""
from typing import Any, Dict, Optional


class PersonaError(Exception):
    """An answer the server refused (4xx) or could not give (5xx).

    ``status`` is the HTTP status, ``title`` and ``detail`` the problem+json fields (the detail
    says what was wrong and what to do), ``body`` the whole problem document (it may hold more:
    ``errors`` for records that could not be used, ``retry_after_s``)."""

    def __init__(self, status: int, title: str, detail: str, body: Optional[Dict[str, Any]] = None):
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.body = body or {}


class BadRequest(PersonaError):
    """400, 413 or 422: the request itself is wrong (its detail says how)."""


class AuthError(PersonaError):
    """401 (no key, or not a valid one) or 403 (the key's role may not do this)."""


class NotFound(PersonaError):
    """404: no such user, item, segment, experiment or route."""


class RateLimited(PersonaError):
    """429, after the client's retries ran out."""


class Unavailable(PersonaError):
    """503 after the client's retries ran out: the server (or its database) cannot answer now,
    or has nothing to answer with yet (no recommender trained)."""


class ConnectionFailed(PersonaError):
    """The server could not be reached at all (status 0)."""


def error_for(status: int, title: str, detail: str, body: Optional[Dict[str, Any]] = None) -> PersonaError:
    kind = {400: BadRequest, 413: BadRequest, 422: BadRequest, 401: AuthError, 403: AuthError, 404: NotFound,
            429: RateLimited, 503: Unavailable}.get(status, PersonaError)
    return kind(status, title, detail, body)
