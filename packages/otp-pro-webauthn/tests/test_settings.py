"""``providers.webauthn``: validated by the core's settings machinery, origins checked at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from conftest import webauthn_settings

from otp_pro import OtpPro
from otp_pro.errors import ConfigurationError
from otp_pro_webauthn.options import origin_problem


@pytest.fixture
def start(sqlite_url: str, otp_factory: Callable[..., OtpPro]) -> Callable[..., OtpPro]:
    def factory(settings: dict[str, Any] | None = None, **section: Any) -> OtpPro:
        return otp_factory(settings or webauthn_settings(sqlite_url, **section))

    return factory


def test_an_origin_outside_the_relying_party_id_is_refused_at_start_up(start):
    with pytest.raises(ConfigurationError) as refused:
        start(origins=["https://example.com", "https://evil-example.com"])
    assert refused.value.key == "providers.webauthn.origins"
    assert "does not match the relying-party id 'example.com'" in str(refused.value)


def test_plain_http_is_for_localhost_only(start):
    with pytest.raises(ConfigurationError, match="must use https"):
        start(origins=["http://example.com"])
    otp = start(rp_id="localhost", origins=["http://localhost:8000", "http://app.localhost:5000"])
    assert otp.channels["webauthn"].factor_type is not None


def test_a_subdomain_origin_is_allowed():
    assert origin_problem("https://login.example.com", "example.com") is None
    assert origin_problem("https://example.com.evil.net", "example.com") is not None
    assert origin_problem("https://example.com/path", "example.com") is not None


def test_the_channel_needs_a_relying_party_id(start, sqlite_url):
    settings = webauthn_settings(sqlite_url)
    settings["providers"] = {}
    with pytest.raises(ConfigurationError) as refused:
        start(settings)
    assert refused.value.key == "providers.webauthn.rp_id"


@pytest.mark.parametrize(("key", "value", "says"), [
    ("user_verification", "always", "user_verification"),
    ("attestation", "full", "attestation"),
    ("algorithms", ["ES256", "MD5"], "algorithms"),
    ("timeout_seconds", 5, "timeout_seconds"),
    ("rp_id", "https://example.com", "rp_id"),
    ("rp_id", "127.0.0.1", "not an IP address"),
    ("colour", "blue", "colour"),
])
def test_bad_values_are_refused_naming_the_key(start, key, value, says):
    with pytest.raises(ConfigurationError, match=says):
        start(**{key: value})


def test_the_section_shapes_the_ceremony(start):
    otp = start(user_verification="required", resident_key="required", attestation="direct", algorithms=["ES256"],
                timeout_seconds=60, rp_name="Example Shop")
    from otp_pro import Member

    show = otp.begin_setup(Member("1", email="a@example.com"), "webauthn", binding="s").show["publicKey"]
    assert show["rp"]["name"] == "Example Shop" and show["timeout"] == 60_000 and show["attestation"] == "direct"
    assert show["authenticatorSelection"] == {"residentKey": "required", "requireResidentKey": True,
                                              "userVerification": "required"}
    assert [p["alg"] for p in show["pubKeyCredParams"]] == [-7]


def test_providers_list_shows_the_factor(tmp_path):
    """The installed distribution is listed with its factor type (as an operator reads it, in a subprocess)."""
    env = {k: v for k, v in os.environ.items() if k != "OTP_PRO_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "otp_pro", "providers", "list", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    rows = {r["plugin"]: r for r in json.loads(result.stdout)}
    assert rows["otp_pro_webauthn"]["factor_types"] == ["webauthn"]
    assert rows["otp_pro_webauthn"]["distribution"] == "otp-pro-webauthn"
