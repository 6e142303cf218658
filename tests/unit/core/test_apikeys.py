"""The pure parts of core.apikeys: hashing, scope checks, the stored record."""

from __future__ import annotations

import hashlib

import pytest

from riverwatch.core.apikeys import SCOPES, InvalidScope, KeyInfo, check_scopes, has_scope, hash_key


def test_hash_is_sha256_hex_of_the_key() -> None:
    assert hash_key("rw_abc") == hashlib.sha256(b"rw_abc").hexdigest()
    assert len(hash_key("rw_abc")) == 64


def test_check_scopes_sorts_dedups_and_normalises() -> None:
    assert check_scopes(["read", " Ingest", "read"]) == ("ingest", "read")
    assert check_scopes(SCOPES) == ("admin", "ingest", "read")


@pytest.mark.parametrize("scopes", [[], ["write"], ["read", "root"]])
def test_check_scopes_refuses_empty_or_unknown(scopes: list[str]) -> None:
    with pytest.raises(InvalidScope, match="choose from admin, ingest, read"):
        check_scopes(scopes)


def test_invalid_scope_is_a_value_error() -> None:
    assert issubclass(InvalidScope, ValueError)


@pytest.mark.parametrize(
    ("held", "needed", "ok"),
    [
        (["read"], "read", True),
        (["read"], "ingest", False),
        (["ingest"], "read", False),
        (["admin"], "ingest", True),
        (["admin"], "read", True),
        (["ingest", "read"], "admin", False),
        ([], "read", False),
    ],
)
def test_admin_implies_every_scope(held: list[str], needed: str, ok: bool) -> None:
    assert has_scope(held, needed) is ok
    assert KeyInfo("k", tuple(held), "").allows(needed) is ok


def test_key_info_round_trips_through_json() -> None:
    info = KeyInfo("ci", ("ingest", "read"), "2024-05-01T12:00:00+00:00")
    assert KeyInfo.from_json(info.to_json()) == info
    assert KeyInfo.from_json(info.to_json().decode()) == info


@pytest.mark.parametrize("raw", [b"[]", b'{"scopes": ["read"]}', b"null"])
def test_key_info_refuses_what_is_not_a_key_record(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not an API key record"):
        KeyInfo.from_json(raw)
