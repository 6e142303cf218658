"""Webhook signing (Standard Webhooks).

Signing: ``webhook-signature = "v1," + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))``,
where ``key`` is the base64-decoded part of the ``whsec_...`` secret (standardwebhooks.com).
A receiver verifies with any Standard Webhooks library, or with :func:`verify`.

The address check that keeps webhooks off internal hosts, and the POST to the checked
address, are in :mod:`riverwatch.alerts.addresses`.

>>> key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
>>> sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence

from riverwatch.core.errors import RiverwatchError

SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300


class InvalidSignature(RiverwatchError, ValueError):
    """A webhook whose signature or timestamp does not verify."""


def new_secret() -> str:
    """A fresh signing secret ``whsec_<base64 of 32 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the prefix is optional); ValueError when malformed."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (``v1,<base64>``) for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def message_id(*parts: str, prefix: str = "msg") -> str:
    """A ``webhook-id`` derived from ``parts`` (e.g. an alert id): header-safe by construction.

    The same parts always give the same id, so a retried or redelivered message keeps it and
    receivers can de-duplicate on it; raw ids (user text: series, event ids) never reach a
    header, whatever characters they hold.

    >>> message_id("café.requests-1") == message_id("café.requests-1"), message_id("a")[:4]
    (True, 'msg_')
    """
    joined = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return f"{prefix}_{hashlib.sha256(joined).hexdigest()[:32]}"


def signed_headers(
    secret: str | Sequence[str], msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers; ``msg_id`` must stay the same across retries.

    ``msg_id`` must be printable ASCII (ValueError otherwise): use :func:`message_id`.

    With several secrets (a rotation's overlap) the signature header lists one ``v1,``
    signature per secret, space-separated: a receiver holding any of them verifies.
    """
    if not (msg_id.isascii() and msg_id.isprintable() and msg_id):
        # httpx would raise (UnicodeEncodeError) or, worse, send a split header: refuse here.
        raise ValueError(f"a webhook-id must be printable ASCII, not {msg_id!r}")
    ts = int(time.time()) if timestamp is None else timestamp
    keys = [secret] if isinstance(secret, str) else list(secret)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(sign(k, msg_id, ts, body) for k in keys),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Raise InvalidSignature unless ``headers`` sign ``body`` with ``secret`` recently enough.

    ``headers`` is matched case-insensitively; any ``v1`` entry of the space-separated
    signature list may match (secret rotation sends several). Whatever the headers hold,
    nothing but InvalidSignature is raised.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, raw_ts = lower["webhook-id"], lower["webhook-timestamp"]
        offered = lower["webhook-signature"].split()
    except (KeyError, AttributeError) as exc:
        raise InvalidSignature(f"missing or malformed webhook header: {exc!r}") from exc
    # Plain ASCII digits only: int() would take " 12", "١٢" or a 5000-digit number.
    if not (raw_ts.isascii() and raw_ts.isdigit() and len(raw_ts) <= 12):
        raise InvalidSignature("webhook-timestamp is not a number of seconds")
    ts = int(raw_ts)
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        raise InvalidSignature(f"webhook-timestamp {ts} is outside the {tolerance_s} s tolerance")
    # Compare bytes: compare_digest refuses str with non-ASCII characters (TypeError).
    try:
        expected = sign(secret, msg_id, ts, body).encode()
    except UnicodeEncodeError as exc:  # a lone surrogate in webhook-id
        raise InvalidSignature("webhook-id is not valid text") from exc
    if not any(
        hmac.compare_digest(expected, s.encode("utf-8", "replace"))
        for s in offered
        if s.startswith("v1,")
    ):
        raise InvalidSignature("no webhook-signature entry matches")
