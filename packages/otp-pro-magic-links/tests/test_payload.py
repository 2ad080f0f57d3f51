"""The payload, its settings section ``providers.magic_links``, availability and the small helpers."""

from __future__ import annotations

import pytest
from magic_links_support import SECRET_KEY

from otp_pro import ChannelUnavailable, ConfigurationError, Member, OtpPro, Transport, hookimpl
from otp_pro_magic_links import binding_cookie, new_binding, parse, read_binding
from otp_pro_magic_links.payload import NO_BASE_URL, MagicLinkPayload


class ShortText(Transport):
    name = "short_text"
    label = "Short text"
    message_format = "text"

    def recipient(self, member):  # type: ignore[no-untyped-def]
        return "+15550100"


class ShortTexts:
    __name__ = "short_texts"

    @hookimpl
    def otp_pro_register_transports(self, register):  # type: ignore[no-untyped-def]
        register(ShortText)


def settings(url: str, **magic: object) -> dict[str, object]:
    return {"secret_key": SECRET_KEY, "database_url": url, "channels": ["email:magic_link", "totp"],
            "default_channel": "email:magic_link", "providers": {"magic_links": magic}}


def test_registered_for_email_format_transports_only(sqlite_url):
    with OtpPro(settings(sqlite_url, base_url="https://example.com"), plugins=[ShortTexts()]) as otp:
        payload = otp.payloads["magic_link"]
        assert isinstance(payload, MagicLinkPayload) and not payload.entered_as_code
        assert {"email:magic_link", "outbox:magic_link"} <= set(otp.channels)
        assert "short_text:code" in otp.channels and "short_text:magic_link" not in otp.channels
        assert otp.channels["email:magic_link"].label.endswith("(sign-in link)")
        assert payload.ttl_seconds == 600 and payload.path == "/otp/magic" and payload.same_browser is False
        assert otp.plugin_settings["magic_links"]["base_url"] == "https://example.com"


def test_url_building(sqlite_url):
    with OtpPro(settings(sqlite_url, base_url="https://example.com/app/", path="/mfa/link")) as otp:
        payload = otp.payloads["magic_link"]
        assert payload.url("abc-_DEF") == "https://example.com/app/mfa/link?token=abc-_DEF"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("base_url", "ftp://example.com"),
        ("base_url", "http://example.com"),  # plain http only on loopback
        ("base_url", "https://example.com/?next=1"),
        ("base_url", "example.com"),
        ("path", "otp/magic"),
        ("path", "//evil.example/x"),
        ("ttl_seconds", 10),
        ("ttl_seconds", 10**6),
        ("same_browser", "perhaps"),
        ("unknown_key", 1),
    ],
)
def test_bad_settings_are_refused_by_key(sqlite_url, key, value):
    with pytest.raises(ConfigurationError) as info:
        OtpPro(settings(sqlite_url, **{"base_url": "https://example.com", key: value}))
    assert info.value.key == f"providers.magic_links.{key}"


def test_loopback_http_is_allowed_for_development(sqlite_url):
    for url in ("http://127.0.0.1:8000", "http://localhost:5000", "http://[::1]:8080"):
        with OtpPro(settings(sqlite_url, base_url=url)) as otp:
            assert otp.payloads["magic_link"].base_url == url


def test_without_base_url_the_channel_is_not_offered(sqlite_url, caplog):
    member = Member(id="7", email="bo@example.com")
    with OtpPro(settings(sqlite_url)) as otp:
        status = otp.status(member)
        assert "email:magic_link" not in status.channels
        assert status.unavailable["email:magic_link"] == NO_BASE_URL
        with pytest.raises(ChannelUnavailable, match="base URL"):
            otp.begin_setup(member, "email:magic_link")
    assert "base_url is not set" in caplog.text


def test_parse():
    token = "A" * 43
    assert parse(f"token={token}") == token
    assert parse(f"?token={token}") == token
    assert parse(f"https://example.com/otp/magic?token={token}#x") == token
    assert parse(f"/otp/magic?a=1&token={token}") == token
    for bad in (None, "", "token=", "token=abc", f"token={token}&token={token}", "token=" + "é" * 43, "x=1"):
        assert parse(bad) is None


def test_binding_cookie_helpers():
    value = new_binding()
    assert len(value) >= 43 and value != new_binding()
    header = binding_cookie(value)
    assert header.startswith(f"__Host-otp_pro_magic_link={value}; Path=/")
    assert {"HttpOnly", "Secure", "SameSite=Lax"} <= {p.strip() for p in header.split(";")}
    assert read_binding(f"a=b; {header.split(';')[0]}") == value
    assert read_binding("__Host-otp_pro_magic_link=short") is None
    assert read_binding(None) is None and read_binding('bad"cookie') is None
    with pytest.raises(ValueError):
        binding_cookie("x y")
    with pytest.raises(ValueError):
        binding_cookie(value, secure=False)
    dev = binding_cookie(value, name="otp_pro_magic_link", secure=False)
    assert "Secure" not in dev and "HttpOnly" in dev
