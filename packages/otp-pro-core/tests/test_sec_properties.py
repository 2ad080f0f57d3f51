"""Bad input of every shape at the public entry points: a typed error or a clean refusal, never a crash.

Property-based (hypothesis), with modest example counts so the suite stays fast:

* ``verify`` with codes of every shape: a :class:`VerifyResult`, and no state
  change except the documented failure count (a malformed code is not counted);
* ``normalize_code``: full-width (and other NFKC-compatibility) digits become
  ASCII, spaces and dashes are dropped; digits of other scripts (Arabic-Indic,
  Devanagari) are refused as malformed, as the docstring says;
* ``Member(...)`` with ids and roles of every shape: a Member or ``InvalidMember``;
* settings with wrong types, unknown keys or no ``secret_key``: ``ConfigurationError`` naming the key;
* the web flow layer's forms and JSON endpoints fed random fields and bodies (tests/web/test_flow.py;
  the Flask adapter's own run is in packages/otp-pro-flask/tests/test_sec_properties.py): never a 500.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from core_support import SECRET_KEY, base_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from otp_pro import Member, OtpPro
from otp_pro.core import normalize_code
from otp_pro.errors import ConfigurationError, InvalidCode, SetupError
from otp_pro.member import InvalidMember
from otp_pro.results import VerifyResult
from otp_pro.settings import CORE_SETTINGS, TOTP_SETTINGS, Settings
from otp_pro.storage.schema import audit_events, backup_codes, challenges, members, trusted_devices
from otp_pro.testing import Clock, enrol
from otp_pro.testing.strategies import ARABIC_INDIC, ASCII_DIGITS, DEVANAGARI, EXTENDED_ARABIC, codes

FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])



# ------------------------------------------------------------------ normalize_code


@given(st.text(alphabet=ASCII_DIGITS, min_size=1, max_size=10), st.data())
@settings(max_examples=100, deadline=None)
def test_full_width_digits_spaces_and_dashes_normalise_to_ascii(digits: str, data: st.DataObject) -> None:
    typed = ""
    for ch in digits:
        typed += data.draw(st.sampled_from([ch, chr(0xFF10 + int(ch))]))
        typed += data.draw(st.sampled_from(["", " ", "-", "\u3000", "\u2013"]))
    assert normalize_code(typed) == digits


@given(st.text(alphabet=ARABIC_INDIC + EXTENDED_ARABIC + DEVANAGARI, min_size=1, max_size=10))
@settings(max_examples=50, deadline=None)
def test_digits_of_other_scripts_are_refused_as_malformed(typed: str) -> None:
    # NFKC does not map them to ASCII; the documented rule refuses what is not ASCII after NFKC.
    assert normalize_code(typed) is None


@given(codes)
@settings(max_examples=100, deadline=None)
def test_normalize_code_never_raises(code: Any) -> None:
    out = normalize_code(code)
    assert out is None or (out.isascii() and out.isalnum() and out == out.lower() and 0 < len(out) <= 64)


# ------------------------------------------------------------------ verify


def _snapshot(otp: OtpPro, member_id: str) -> dict[str, Any]:
    """Everything a verification could change, except the failure counters (compared on their own)."""
    with otp.db.engine.connect() as conn:
        row = conn.execute(select(members).where(members.c.member_id == member_id)).one()._asdict()
        counters = {k: row.pop(k) for k in ("failures", "consecutive_failures", "locked_until", "updated_at")}
        return {
            "member": row,
            "counters": counters,
            "challenges": conn.execute(select(challenges).order_by(challenges.c.id)).all(),
            "backup_codes": conn.execute(select(backup_codes).order_by(backup_codes.c.id)).all(),
            "devices": conn.execute(select(trusted_devices).order_by(trusted_devices.c.id)).all(),
            "events": [r.kind for r in conn.execute(select(audit_events.c.kind).order_by(audit_events.c.id))],
        }


@pytest.fixture
def enrolled(make_otp: Any, clock: Clock) -> tuple[OtpPro, Member]:
    otp = make_otp(max_attempts=100)
    member = Member("prop", email="prop@example.com")
    enrol(otp, member)  # a code channel with no live challenge left: no code typed here can be right
    otp.trust_device(member, label="Laptop")
    return otp, member


@FEW
@given(code=codes)
def test_verify_with_codes_of_every_shape(enrolled: tuple[OtpPro, Member], code: Any) -> None:
    otp, member = enrolled
    otp.unlock(member)
    before = _snapshot(otp, member.id)
    result = otp.verify(member, code, ip="203.0.113.1")
    after = _snapshot(otp, member.id)
    assert isinstance(result, VerifyResult) and not result.ok
    assert after["member"] == before["member"]
    for table in ("challenges", "backup_codes", "devices"):
        assert after[table] == before[table], table
    added = after["events"][len(before["events"]):]
    assert after["events"][:len(before["events"])] == before["events"]
    if normalize_code(code) is None:
        # Malformed: refused before anything is looked at, and not counted.
        assert result.reason == "malformed"
        assert added == [] and after["counters"] == before["counters"]
    else:
        # Well-formed but wrong: exactly one failure counted and audited.
        assert result.reason == "invalid" and result.attempts_remaining == 99
        assert added == ["verify_failed"]
        assert after["counters"]["failures"] == before["counters"]["failures"] + 1
        assert after["counters"]["consecutive_failures"] == before["counters"]["consecutive_failures"] + 1


@pytest.fixture
def pending(make_otp: Any) -> tuple[OtpPro, Member]:
    otp = make_otp(max_attempts=100)
    member = Member("pending", email="pending@example.com")
    otp.begin_setup(member, "totp")
    return otp, member


@FEW
@given(code=codes)
def test_complete_setup_with_codes_of_every_shape(pending: tuple[OtpPro, Member], code: Any) -> None:
    otp, member = pending
    otp.unlock(member)
    try:
        otp.complete_setup(member, code)
    except InvalidCode as exc:
        assert isinstance(exc.result, VerifyResult) and not exc.result.ok
        assert exc.result.reason == ("malformed" if normalize_code(code) is None else "invalid")
    except SetupError:
        pass  # a random six digits matched the authenticator's window once: the setup is over


@FEW
@given(token=codes, binding=st.one_of(st.none(), st.text(max_size=40)))
def test_verify_token_with_tokens_of_every_shape(enrolled: tuple[OtpPro, Member], token: Any,
                                                 binding: str | None) -> None:
    otp, _member = enrolled
    result = otp.verify_token("code", token, binding=binding)
    assert isinstance(result, VerifyResult) and not result.ok
    assert result.reason in ("malformed", "unknown")


def test_a_full_width_code_with_separators_is_accepted(backend: str, make_otp: Any) -> None:
    otp = make_otp()
    member = Member("fw", email="fw@example.com")
    enrol(otp, member)
    otp.send_challenge(member)
    code = otp.transports["outbox"].last().text  # type: ignore[attr-defined]
    digits = re.search(r"\b(\d{6})\b", code)
    assert digits
    typed = " ".join(chr(0xFF10 + int(d)) for d in digits.group(1)[:3]) + "-" + digits.group(1)[3:]
    assert otp.verify(member, typed).ok
    arabic = "".join(chr(0x0660 + int(d)) for d in digits.group(1))
    otp.send_challenge(member)
    assert otp.verify(member, arabic).reason == "malformed"


def test_bad_codes_count_nothing_on_postgresql_too(backend: str, make_otp: Any) -> None:
    otp = make_otp()
    member = Member("pg", email="pg@example.com")
    enrol(otp, member)
    for code in (None, b"\xff\xfe", 12.5, "", " - ", "9" * 65, "١٢٣٤٥٦", "abc!def", ["123456"]):
        assert otp.verify(member, code).reason == "malformed"
    with otp.db.engine.connect() as conn:
        assert conn.execute(select(members.c.failures).where(members.c.member_id == "pg")).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(audit_events).where(
            audit_events.c.kind == "verify_failed")).scalar_one() == 0


# ------------------------------------------------------------------ Member


anything = st.one_of(st.text(max_size=300), st.integers(min_value=-(10**300), max_value=10**300),
                     st.integers(min_value=10**4400, max_value=10**4400 + 5), st.none(), st.booleans(), st.floats(),
                     st.binary(max_size=10), st.lists(st.text(max_size=5), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))


@given(member_id=anything, roles=st.one_of(anything, st.lists(anything, max_size=4)),
       email=st.one_of(st.none(), st.text(max_size=40), st.integers()),
       name=st.one_of(st.none(), st.text(max_size=40), st.integers()),
       fields=st.one_of(st.none(), st.dictionaries(st.text(max_size=5), anything, max_size=3), st.integers()))
@settings(max_examples=100, deadline=None)
def test_member_of_every_shape(member_id: Any, roles: Any, email: Any, name: Any, fields: Any) -> None:
    try:
        member = Member(member_id, roles=roles, email=email, name=name, fields=fields)
    except InvalidMember as exc:
        assert str(exc).startswith("member ")
        return
    assert isinstance(member.id, str) and 0 < len(member.id) <= 255 and member.id.isprintable()
    assert all(isinstance(r, str) and r for r in member.roles)
    assert isinstance(member.display_name, str)


def test_a_role_too_long_to_print_is_refused_by_type() -> None:
    """Found by the property above: the repr of an integer past 4300 digits raises ValueError."""
    import sys

    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        huge = 10**5000
    finally:
        sys.set_int_max_str_digits(limit)
    with pytest.raises(InvalidMember, match="got a value of type int"):
        Member("ann", roles=[huge])


# ------------------------------------------------------------------ settings


_CORE_KEYS = [s.name for s in CORE_SETTINGS]
wrong_values = st.one_of(st.text(max_size=20), st.integers(min_value=-(10**6), max_value=10**6), st.booleans(),
                         st.floats(allow_nan=True), st.none(), st.lists(st.integers(), max_size=2),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@given(key=st.sampled_from(_CORE_KEYS), value=wrong_values)
@settings(max_examples=100, deadline=None)
def test_settings_with_a_wrong_value_name_the_key(key: str, value: Any) -> None:
    raw = base_settings("sqlite:///unused.sqlite3")
    raw[key] = value
    try:
        Settings.from_mapping(raw)
    except ConfigurationError as exc:
        assert exc.key == key, (exc.key, str(exc))
        assert str(exc).startswith(f"{key}:")
        if key in ("secret_key", "previous_secret_keys") and isinstance(value, str) and value:
            assert repr(value) not in str(exc)  # quoted: a bare "must" would be found in any message


@given(key=st.sampled_from([s.name for s in TOTP_SETTINGS]), value=wrong_values)
@settings(max_examples=50, deadline=None)
def test_totp_settings_with_a_wrong_value_name_the_key(key: str, value: Any) -> None:
    try:
        Settings.from_mapping({**base_settings("sqlite:///unused.sqlite3"), "totp": {key: value}})
    except ConfigurationError as exc:
        assert exc.key == f"totp.{key}", (exc.key, str(exc))


@given(key=st.one_of(st.text(min_size=1, max_size=30), st.integers()).filter(
    lambda k: k not in (*_CORE_KEYS, "totp", "roles", "providers")), value=wrong_values)
@settings(max_examples=60, deadline=None)
def test_unknown_settings_are_named(key: Any, value: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_mapping({**base_settings("sqlite:///unused.sqlite3"), key: value})
    assert caught.value.key == str(key)
    assert "unknown setting" in str(caught.value)


@given(section=st.sampled_from(["totp", "roles", "providers"]), value=wrong_values.filter(lambda v: not isinstance(
    v, dict) or v))
@settings(max_examples=60, deadline=None)
def test_sections_of_the_wrong_shape_are_named(section: str, value: Any) -> None:
    try:
        Settings.from_mapping({**base_settings("sqlite:///unused.sqlite3"), section: value})
    except ConfigurationError as exc:
        assert exc.key is not None and exc.key.split(".")[0] == section, (exc.key, str(exc))


@given(raw=st.dictionaries(st.sampled_from(["smtp_host", "smtp_port", "smtp_password", "smtp_username",
                                            "from_address", "smtp_starttls", "smtp_timeout_seconds", "bogus"]),
                           wrong_values, min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_provider_settings_of_every_shape(tmp_path_factory: pytest.TempPathFactory, raw: dict[str, Any]) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('prov')}/otp.sqlite3"
    try:
        otp = OtpPro(base_settings(url, providers={"email": raw}), entry_points=False)
    except ConfigurationError as exc:
        assert exc.key is not None and exc.key.startswith(("providers.email", "channels", "default_channel")), (
            exc.key, str(exc))
        password = raw.get("smtp_password")
        others = " ".join(repr(v) for k, v in raw.items() if k != "smtp_password")
        if isinstance(password, str) and password and repr(password) not in others:
            assert repr(password) not in str(exc)
        return
    otp.close()


def test_missing_secret_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTP_PRO_SECRET_KEY", raising=False)
    raw = base_settings("sqlite:///unused.sqlite3")
    del raw["secret_key"]
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_mapping(raw)
    assert caught.value.key == "secret_key" and "is required" in str(caught.value)
    monkeypatch.setenv("OTP_PRO_SECRET_KEY", SECRET_KEY)
    assert Settings.from_mapping(raw).secret_key.reveal() == SECRET_KEY


@given(st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)))
@settings(max_examples=20, deadline=None)
def test_settings_that_are_not_a_mapping(raw: Any) -> None:
    with pytest.raises(ConfigurationError, match="settings must be a mapping"):
        Settings.from_mapping(raw)
