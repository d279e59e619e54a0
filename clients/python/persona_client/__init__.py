"""A small, typed client for Persona's HTTP API (docs/api.md).

    from persona_client import Client
    persona = Client("http://127.0.0.1:8080", api_key="pk_...")
    persona.recommendations("U000042", k=5)

Standard library only; ``persona_client.frames`` turns answers into pandas DataFrames when pandas
is installed."""
from .client import Client, IngestResult
from .errors import (AuthError, BadRequest, ConnectionFailed, NotFound, PersonaError, RateLimited, Unavailable)

__all__ = ["Client", "IngestResult", "PersonaError", "BadRequest", "AuthError", "NotFound", "RateLimited", "Unavailable",
           "ConnectionFailed"]
__version__ = "0.1.0"
