"""Webhook signing (Standard Webhooks) and the URL safety check, with no network."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from riverwatch.alerts.addresses import Target, UnsafeURL, address_problem, check_url, pinned, post
from riverwatch.alerts.signing import (
    InvalidSignature,
    message_id,
    new_secret,
    secret_key,
    sign,
    signed_headers,
    verify,
)
from riverwatch.alerts.subscription import Subscription

SAFE_ID = re.compile(r"msg_[0-9a-f]{32}")
# The reference example of the Standard Webhooks specification (standardwebhooks.com).
REF_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REF_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
REF_TS = 1614265330
REF_BODY = b'{"test": 2432232314}'
REF_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def ref_headers(signature: str = REF_SIGNATURE, ts: int = REF_TS) -> dict[str, str]:
    return {"webhook-id": REF_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


def test_signature_matches_the_reference_example_and_a_hand_computation() -> None:
    key = base64.b64decode(REF_SECRET.removeprefix("whsec_"))
    by_hand = hmac.new(key, f"{REF_ID}.{REF_TS}.".encode() + REF_BODY, hashlib.sha256).digest()
    assert sign(REF_SECRET, REF_ID, REF_TS, REF_BODY) == REF_SIGNATURE
    assert "v1," + base64.b64encode(by_hand).decode() == REF_SIGNATURE


def test_verify_accepts_the_reference_and_rejects_tampering() -> None:
    verify(REF_SECRET, ref_headers(), REF_BODY, now=REF_TS + 10)
    # Header names are case-insensitive; a rotated secret's extra signature is ignored.
    upper = {k.upper(): v for k, v in ref_headers(f"v1,bogus= {REF_SIGNATURE}").items()}
    verify(REF_SECRET, upper, REF_BODY, now=REF_TS)
    with pytest.raises(InvalidSignature, match="no webhook-signature"):
        verify(REF_SECRET, ref_headers(), b'{"test": 2432232315}', now=REF_TS)
    forged_ts = sign(REF_SECRET, REF_ID, REF_TS, REF_BODY)  # signed for another timestamp
    with pytest.raises(InvalidSignature, match="no webhook-signature"):
        verify(REF_SECRET, ref_headers(forged_ts, REF_TS + 1), REF_BODY, now=REF_TS)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(REF_SECRET, ref_headers(), REF_BODY, now=REF_TS + 301)
    with pytest.raises(InvalidSignature, match="no webhook-signature"):
        verify(new_secret(), ref_headers(), REF_BODY, now=REF_TS)
    with pytest.raises(InvalidSignature, match="missing"):
        verify(REF_SECRET, {"webhook-id": REF_ID}, REF_BODY, now=REF_TS)


def test_signed_headers_round_trip_with_a_fresh_secret() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret_key(secret)) == 32
    assert secret != new_secret()
    headers = signed_headers(secret, "fraud-e1", b"{}")
    verify(secret, headers, b"{}")
    assert headers["webhook-id"] == "fraud-e1"
    with pytest.raises(ValueError, match="base64"):
        secret_key("whsec_not base64!")


@pytest.mark.parametrize(
    ("ip", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not a public address"),
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("172.32.0.1", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classification(ip: str, problem: str | None) -> None:
    assert address_problem(ip) == problem


def test_loopback_is_allowed_only_explicitly_and_nothing_else_with_it() -> None:
    assert address_problem("127.0.0.1", allow_loopback=True) is None
    assert address_problem("::1", allow_loopback=True) is None
    assert address_problem("10.0.0.1", allow_loopback=True) == "private"
    assert address_problem("169.254.169.254", allow_loopback=True) == "cloud metadata"


def fake_dns(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, _port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


def test_check_url_literals_and_localhost_offline() -> None:
    assert check_url("https://8.8.8.8/hook").addresses == ("8.8.8.8",)
    with pytest.raises(UnsafeURL, match=r"10\.1\.2\.3 \(private\)"):
        check_url("http://10.1.2.3:8080/x")
    with pytest.raises(UnsafeURL, match="cloud metadata"):
        check_url("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url("http://[::1]:9000/")
    with pytest.raises(UnsafeURL, match=r"localhost is loopback.*ALLOW_LOOPBACK"):
        check_url("http://localhost:9000/")  # refused by name, before any lookup
    t = check_url("http://localhost:9000/h", allow_loopback=True)  # getaddrinfo, offline
    assert t.port == 9000 and all(address_problem(a) == "loopback" for a in t.addresses)


def test_check_url_refuses_a_name_with_any_bad_address() -> None:
    dns = fake_dns(
        {"ok.example": ["93.184.215.14"], "mixed.example": ["93.184.215.14", "10.0.0.7"]}
    )
    assert check_url("https://ok.example/h", resolve=dns).port == 443
    with pytest.raises(UnsafeURL, match=r"mixed\.example resolves to 10\.0\.0\.7 \(private\)"):
        check_url("https://mixed.example/h", resolve=dns)
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://nowhere.example/h", resolve=dns)
    with pytest.raises(UnsafeURL, match="metadata"):
        check_url("http://metadata.google.internal/computeMetadata/v1/", resolve=dns)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://8.8.8.8/x", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("http:///nohost", "no host"),
        ("http://user:pw@8.8.8.8/", "credentials"),
        ("http://8.8.8.8:99999/", "port"),
    ],
)
def test_check_url_refuses_malformed_urls(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=reason):
        check_url(url)


def test_pinned_sends_to_the_checked_address_under_the_original_name() -> None:
    url, headers, ext = pinned(
        Target("https://hooks.example:8443/in?a=1", "hooks.example", 8443, ("93.184.215.14",))
    )
    assert url == "https://93.184.215.14:8443/in?a=1"
    assert headers == {"Host": "hooks.example:8443"} and ext == {"sni_hostname": "hooks.example"}
    url, headers, ext = pinned(Target("http://h.example", "h.example", 80, ("2001:db8::1",)))
    assert url == "http://[2001:db8::1]:80/" and headers == {"Host": "h.example"} and ext == {}


def test_post_checks_the_address_again_before_connecting() -> None:
    async def attempt() -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            await post(client, "http://10.0.0.9/hook", new_secret(), "a1", b"{}", True, 1.0)

    with pytest.raises(UnsafeURL, match=r"10\.0\.0\.9 \(private\)"):
        asyncio.run(attempt())


@pytest.mark.parametrize(
    "signature",
    ["v1,café", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OÉ=", "v1,\x00", "\u2028", ""],
)
def test_verify_refuses_a_non_ascii_or_junk_signature_with_its_own_error(signature: str) -> None:
    # Issue 13, finding 10: a non-ASCII signature raised TypeError from hmac.compare_digest.
    with pytest.raises(InvalidSignature):
        verify(REF_SECRET, ref_headers(signature), REF_BODY, now=REF_TS)


@pytest.mark.parametrize("ts", ["1e9", "١٦١٤٢٦٥٣٣٠", "9" * 5000, "-1614265330", " 1614265330"])
def test_verify_refuses_a_timestamp_that_is_not_plain_digits(ts: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(REF_SECRET, ref_headers(ts=0) | {"webhook-timestamp": ts}, REF_BODY, now=REF_TS)


@settings(max_examples=300, deadline=None)
@given(
    msg_id=st.text(max_size=40),
    ts=st.one_of(
        st.text(max_size=30), st.integers(min_value=-(10**400), max_value=10**400).map(str)
    ),
    sig=st.one_of(st.text(max_size=120), st.text(max_size=60).map(lambda t: f"v1,{t} v1,{t}")),
    body=st.binary(max_size=64),
    now=st.sampled_from([None, REF_TS]),
)
def test_verify_raises_nothing_but_invalid_signature(
    msg_id: str, ts: str, sig: str, body: bytes, now: int | None
) -> None:
    headers = {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}
    with pytest.raises(InvalidSignature):
        verify(REF_SECRET, headers, body, now=now)


def test_several_secrets_sign_one_message_and_the_official_library_takes_each() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"alert_id":"a1"}'
    headers = signed_headers([new, old], "msg_1", body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        verify(secret, headers, body)
        assert Webhook(secret).verify(body, headers) == {"alert_id": "a1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_rotation_signs_with_both_secrets_until_the_overlap_ends() -> None:
    old, new = new_secret(), new_secret()
    sub = Subscription("sub_1", "https://h.example/", {}, None, old, "2026-01-01")
    rotated = sub.rotated(new, now=1000.0, overlap_s=86_400)
    body = b'{"alert_id":"a1"}'
    during = signed_headers(rotated.signing_secrets(now=1000.0 + 86_399), "msg_1", body)
    for secret in (old, new):
        Webhook(secret).verify(body, during)
    after = signed_headers(rotated.signing_secrets(now=1000.0 + 86_400), "msg_1", body)
    Webhook(new).verify(body, after)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, after)
    # A second rotation within the overlap keeps only the one before it.
    again = rotated.rotated(new_secret(), now=2000.0, overlap_s=60)
    assert again.signing_secrets(now=2000.0) == [again.secret, new]
    assert set(again.public()).isdisjoint({"secret", "previous_secret", "previous_secret_until"})


@pytest.mark.parametrize("msg_id", ["café.requests", "a\r\nx-injected: 1", "nul\x00", ""])
def test_signed_headers_refuse_an_id_that_is_not_header_safe(msg_id: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        signed_headers(new_secret(), msg_id, b"{}")
    assert SAFE_ID.fullmatch(message_id(msg_id))
