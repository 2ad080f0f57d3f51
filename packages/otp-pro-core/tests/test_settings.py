"""Settings validation: every bad input is a ConfigurationError naming the key and what is allowed.

Settings-only checks build :class:`Settings`; checks that need the installed
plugins (channel names, ``providers.*``) go through :class:`OtpPro` on a
throw-away SQLite file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_support import SECRET_KEY
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from otp_pro import ConfigurationError, OtpPro, Secret
from otp_pro.settings import CORE_SETTINGS, ROLE_SETTINGS, TOTP_SETTINGS, Settings

SECRET_ENV = "OTP_PRO_SECRET_KEY"
PREVIOUS_KEY = "previous-key-" + "p" * 40
SMTP_PASSWORD = "smtp-pa55word-do-not-show"
DB_PASSWORD = "hunter2"


@pytest.fixture(autouse=True, scope="module")
def _clean_environment() -> Iterator[None]:
    """The developer's own OTP_PRO_SECRET_KEY / disabled plugins must not leak into these tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(SECRET_ENV, raising=False)
        mp.delenv("OTP_PRO_DISABLE_PLUGINS", raising=False)
        yield


def build(**raw: Any) -> Settings:
    return Settings.from_mapping({"secret_key": SECRET_KEY, **raw})


def problem(**raw: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"secret_key": SECRET_KEY, **raw})
    return info.value


def otp_problem(database_url: str, **raw: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        OtpPro({"secret_key": SECRET_KEY, "database_url": database_url, **raw}, entry_points=False)
    return info.value


# --------------------------------------------------------------------------
# Valid settings
# --------------------------------------------------------------------------


def test_defaults() -> None:
    s = build()
    assert s.mode == "visible"
    assert s.code_length == 6
    assert s.max_attempts == 5
    assert s.channels is None
    assert isinstance(s.secret_key, Secret) and s.secret_key.reveal() == SECRET_KEY
    assert s.roles == {} and s.providers == {}


def test_a_full_valid_mapping() -> None:
    s = build(
        mode="required", code_length=8, max_attempts=100, lockout_seconds=1, grace_days=14,
        channels=["email:code", "totp"], default_channel="totp", previous_secret_keys=[PREVIOUS_KEY],
        totp={"digits": 8, "period": 60, "algorithm": "SHA256", "issuer": "Example", "valid_window": 0},
        roles={"admin": {"requirement": "required", "grace_days": 0, "channels": ["totp"], "default_channel": "totp"},
               "guest": {"requirement": "not_required"}},
    )
    assert (s.mode, s.code_length, s.max_attempts, s.lockout_seconds, s.grace_days) == ("required", 8, 100, 1, 14)
    assert s.channels == ("email:code", "totp")
    assert s.totp.digits == 8 and s.totp.algorithm == "SHA256"
    assert s.roles["admin"].channels == ("totp",) and s.roles["admin"].grace_days == 0
    assert s.roles["guest"].requirement == "not_required" and s.roles["guest"].channels is None
    assert [k.reveal() for k in s.all_secret_keys] == [SECRET_KEY, PREVIOUS_KEY]


@pytest.mark.parametrize("key, value", [("code_length", 6), ("code_length", 10), ("max_attempts", 1),
                                        ("max_attempts", 100), ("lockout_seconds", 1)])
def test_range_limits_are_inclusive(key: str, value: int) -> None:
    assert getattr(build(**{key: value}), key) == value


# --------------------------------------------------------------------------
# Wrong types and out of range
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        pytest.param("code_length", "six", "a whole number from 6 to 10", id="code_length-string"),
        pytest.param("code_length", 6.5, "a whole number from 6 to 10", id="code_length-float"),
        pytest.param("code_length", True, "a whole number from 6 to 10", id="code_length-bool"),
        pytest.param("mode", ["visible"], "one of 'hidden', 'visible', 'required'", id="mode-list"),
        pytest.param("mode", "sometimes", "one of 'hidden', 'visible', 'required'", id="mode-unknown"),
        pytest.param("channels", 5, "a list of strings", id="channels-int"),
        pytest.param("channels", ["totp", 3], "a list of strings", id="channels-mixed"),
        pytest.param("site_name", 42, "a string", id="site_name-int"),
    ],
)
def test_wrong_type(key: str, value: Any, allowed: str) -> None:
    err = problem(**{key: value})
    assert err.key == key
    assert str(err).startswith(f"{key}: ")
    assert allowed in str(err)
    assert err.problems == [str(err)]


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        pytest.param("code_length", 5, "from 6 to 10", id="code_length-5"),
        pytest.param("code_length", 11, "from 6 to 10", id="code_length-11"),
        pytest.param("max_attempts", 0, "from 1 to 100", id="max_attempts-0"),
        pytest.param("max_attempts", 101, "from 1 to 100", id="max_attempts-101-nist-ceiling"),
        pytest.param("lockout_seconds", 0, "from 1 to 2592000", id="lockout_seconds-0"),
        pytest.param("grace_days", -1, "from 0 to 3650", id="grace_days-negative"),
    ],
)
def test_out_of_range(key: str, value: int, allowed: str) -> None:
    err = problem(**{key: value})
    assert err.key == key
    assert key in str(err)
    assert allowed in str(err)
    assert repr(value) in str(err)


def test_nist_ceiling_cannot_be_configured_away() -> None:
    for value in (101, 1000, 10**9):
        assert problem(max_attempts=value).key == "max_attempts"


def test_numeric_strings_are_accepted_for_whole_numbers() -> None:
    # values read from the environment arrive as strings
    assert build(code_length="8").code_length == 8
    assert build(code_length=" 7 ").code_length == 7


def test_null_value_is_the_default_or_an_error() -> None:
    """``None`` (JSON null, a dict built in code) must not slip past validation as a value.

    Either the default applies or a ConfigurationError names the key; never a
    Settings with ``mode=None`` / ``max_attempts=None``, nor a TypeError.
    """
    defaults = build()
    slipped: dict[str, str] = {}
    for spec in CORE_SETTINGS:
        if spec.default is None or spec.name == "secret_key":
            continue
        try:
            s = build(**{spec.name: None})
        except ConfigurationError as err:
            if err.key != spec.name:
                slipped[spec.name] = f"error names {err.key!r}"
        except Exception as exc:  # noqa: BLE001 - reported below
            slipped[spec.name] = f"{type(exc).__name__}: {exc}"
        else:
            if getattr(s, spec.name) != getattr(defaults, spec.name):
                slipped[spec.name] = f"validated to {getattr(s, spec.name)!r}"
    assert slipped == {}


@pytest.mark.parametrize("value", ["²", "--5", "9" * 5000, "٣"], ids=["superscript-two", "double-minus", "5000-digits",
                                                                     "arabic-indic-three"])
def test_odd_numeric_strings_are_configuration_errors(value: str) -> None:
    """Strings that look like digits to ``str.isdigit`` but are not whole numbers for ``int``."""
    try:
        s = build(code_length=value)
    except ConfigurationError as err:
        assert err.key == "code_length"
        assert "a whole number from 6 to 10" in str(err)
    else:
        assert 6 <= s.code_length <= 10


def test_float_setting_rejects_nan(sqlite_url: str) -> None:
    err = otp_problem(sqlite_url, providers={"email": {"smtp_timeout_seconds": math.nan}})
    assert err.key == "providers.email.smtp_timeout_seconds"
    assert "from 0.1 to 300" in str(err)
    err = otp_problem(sqlite_url, providers={"email": {"smtp_timeout_seconds": "nan"}})
    assert err.key == "providers.email.smtp_timeout_seconds"


# --------------------------------------------------------------------------
# Unknown keys and wrong tables
# --------------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    err = problem(colour="blue")
    assert err.key == "colour"
    assert "unknown setting" in str(err)
    allowed = str(err).split("allowed here:", 1)[1]
    for name in ("code_length", "max_attempts", "mode", "secret_key"):
        assert name in allowed
    # the tables are settings too: a member who typed `role` must be pointed to `roles`
    for table in ("roles", "totp", "providers"):
        assert table in allowed, f"{table!r} missing from the allowed keys"
    assert "blue" not in str(err)


def test_unknown_key_in_a_role() -> None:
    err = problem(roles={"editor": {"requirement": "required", "grace": 3}})
    assert err.key == "roles.editor.grace"
    for name in ("requirement", "grace_days", "channels", "default_channel"):
        assert name in str(err)


def test_unknown_key_in_totp() -> None:
    err = problem(totp={"digit": 6})
    assert err.key == "totp.digit"
    for name in ("digits", "period", "algorithm", "issuer", "valid_window"):
        assert name in str(err)


def test_unknown_key_in_provider_email(sqlite_url: str) -> None:
    err = otp_problem(sqlite_url, providers={"email": {"smtp_hots": "mail.example.com", "smtp_host": "x"}})
    assert err.key == "providers.email.smtp_hots"
    assert "unknown setting" in str(err) and "smtp_host" in str(err)
    assert "mail.example.com" not in str(err)


def test_unknown_provider(sqlite_url: str) -> None:
    err = otp_problem(sqlite_url, providers={"fax": {}})
    assert err.key == "providers.fax"
    assert "email" in str(err) and "outbox" in str(err)


@pytest.mark.parametrize(
    "raw, key, allowed",
    [
        ({"roles": {"editor": {"requirement": "sometimes"}}}, "roles.editor.requirement",
         "one of 'not_required', 'optional', 'required'"),
        ({"roles": {"editor": {}}}, "roles.editor.requirement", "one of 'not_required', 'optional', 'required'"),
        ({"roles": {"editor": "required"}}, "roles.editor", "requirement"),
        ({"roles": ["editor"]}, "roles", "table"),
        ({"totp": {"digits": 9}}, "totp.digits", "one of 6, 7, 8"),
        ({"totp": {"algorithm": "MD5"}}, "totp.algorithm", "'SHA1', 'SHA256', 'SHA512'"),
        ({"totp": 30}, "totp", "table"),
        ({"providers": "email"}, "providers", "table"),
        ({"providers": {"email": "smtp"}}, "providers.email", "table"),
    ],
    ids=["role-requirement", "role-no-requirement", "role-not-table", "roles-list", "totp-digits", "totp-algorithm",
         "totp-not-table", "providers-string", "provider-not-table"],
)
def test_bad_tables(raw: dict[str, Any], key: str, allowed: str) -> None:
    err = problem(**raw)
    assert err.key == key
    assert key in str(err)
    assert allowed in str(err)


def test_settings_must_be_a_mapping() -> None:
    with pytest.raises(ConfigurationError, match="mapping"):
        Settings.from_mapping(["secret_key", SECRET_KEY])  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# secret_key, { env = "NAME" } and OTP_PRO_SECRET_KEY
# --------------------------------------------------------------------------


def test_missing_secret_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({})
    assert info.value.key == "secret_key"
    assert "secret_key" in str(info.value) and "required" in str(info.value)
    assert SECRET_ENV in str(info.value)


def test_null_secret_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"secret_key": None})
    assert info.value.key == "secret_key"


@pytest.mark.parametrize("value", ["short-secret", "s" * 31], ids=["12-chars", "31-chars"])
def test_short_secret_key(value: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"secret_key": value})
    assert info.value.key == "secret_key"
    assert "at least 32 characters" in str(info.value)
    assert value not in str(info.value)
    assert all(value not in p for p in info.value.problems)


def test_secret_key_of_exactly_32_characters() -> None:
    assert Settings.from_mapping({"secret_key": "s" * 32}).secret_key.reveal() == "s" * 32


def test_wrong_type_secret_is_not_shown() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"secret_key": 1234567890123456789012345678901234567890})
    assert info.value.key == "secret_key"
    assert "a string" in str(info.value)
    assert "1234567890" not in str(info.value)


def test_short_previous_key_is_reported_and_not_shown() -> None:
    err = problem(previous_secret_keys=[PREVIOUS_KEY, "old-short-key"])
    assert err.key == "previous_secret_keys"
    assert "at least 32 characters" in str(err)
    assert "old-short-key" not in str(err)


def test_env_reference_is_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_OTP_KEY", "from-the-environment-" + "e" * 20)
    monkeypatch.setenv("MY_CODE_LENGTH", "8")
    s = Settings.from_mapping({"secret_key": {"env": "MY_OTP_KEY"}, "code_length": {"env": "MY_CODE_LENGTH"}})
    assert s.secret_key.reveal() == "from-the-environment-" + "e" * 20
    assert s.code_length == 8


def test_env_reference_to_a_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_OTP_KEY", raising=False)
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"secret_key": {"env": "MY_OTP_KEY"}})
    assert info.value.key == "secret_key"
    assert "MY_OTP_KEY" in str(info.value) and "not set" in str(info.value)


def test_env_reference_value_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_OTP_KEY", "too-short-from-env")
    monkeypatch.setenv("MY_CODE_LENGTH", "4")
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"secret_key": {"env": "MY_OTP_KEY"}, "code_length": {"env": "MY_CODE_LENGTH"}})
    assert [p.split(":")[0] for p in info.value.problems] == ["secret_key", "code_length"]
    assert "too-short-from-env" not in str(info.value)


@pytest.mark.parametrize("name", ["", 5, None], ids=["empty", "int", "none"])
def test_env_reference_needs_a_name(name: Any) -> None:
    err = problem(site_name={"env": name})
    assert err.key == "site_name"
    assert "env" in str(err)


def test_secret_key_falls_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "fallback-" + "f" * 40)
    assert Settings.from_mapping({}).secret_key.reveal() == "fallback-" + "f" * 40
    # an explicit key wins over the environment
    assert Settings.from_mapping({"secret_key": SECRET_KEY}).secret_key.reveal() == SECRET_KEY


def test_short_secret_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "short-env-key")
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({})
    assert info.value.key == "secret_key"
    assert "short-env-key" not in str(info.value)


# --------------------------------------------------------------------------
# Channel names (known only once the plugins are loaded)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, key, name",
    [
        ({"channels": ["email:code", "fax:code"]}, "channels", "fax:code"),
        ({"default_channel": "pigeon"}, "default_channel", "pigeon"),
        ({"roles": {"editor": {"requirement": "required", "channels": ["sms_twilio:code"]}}}, "roles.editor.channels",
         "sms_twilio:code"),
        ({"roles": {"editor": {"requirement": "optional", "default_channel": "fax:code"}}},
         "roles.editor.default_channel", "fax:code"),
    ],
    ids=["channels", "default_channel", "role-channels", "role-default_channel"],
)
def test_unknown_channel_names(sqlite_url: str, raw: dict[str, Any], key: str, name: str) -> None:
    Settings.from_mapping({"secret_key": SECRET_KEY, **raw})  # the names are fine for Settings alone
    err = otp_problem(sqlite_url, **raw)
    assert err.key == key
    assert repr(name) in str(err)
    for known in ("email:code", "outbox:code", "totp"):
        assert known in str(err)


def test_empty_channel_list(sqlite_url: str) -> None:
    err = otp_problem(sqlite_url, channels=[])
    assert err.key == "channels"
    assert "at least one" in str(err)


def test_known_channels_are_accepted(sqlite_url: str) -> None:
    with OtpPro({"secret_key": SECRET_KEY, "database_url": sqlite_url, "channels": ["totp", "outbox:code"],
                 "default_channel": "totp", "roles": {"a": {"requirement": "required", "channels": ["totp"]}}},
                entry_points=False) as otp:
        assert otp.settings.channels == ("totp", "outbox:code")


# --------------------------------------------------------------------------
# Several problems together
# --------------------------------------------------------------------------


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({
            "secret_key": "short",
            "code_length": 5,
            "mode": "sometimes",
            "colour": "blue",
            "totp": {"digits": 9},
            "roles": {"editor": {"requirement": "maybe", "grace": 1}},
        })
    err = info.value
    keys = [p.split(":")[0] for p in err.problems]
    assert sorted(keys) == sorted(["secret_key", "code_length", "mode", "colour", "totp.digits",
                                   "roles.editor.requirement", "roles.editor.grace"])
    assert err.key in keys
    for line in err.problems:
        assert line in str(err)
    assert "short" not in str(err).replace("shortest", "")


def test_several_channel_problems_are_reported_together(sqlite_url: str) -> None:
    err = otp_problem(sqlite_url, channels=["fax:code"], default_channel="pigeon",
                      roles={"editor": {"requirement": "required", "channels": ["sms:code"]}})
    keys = [p.split(":")[0] for p in err.problems]
    assert keys == ["channels", "default_channel", "roles.editor.channels"]


def test_provider_and_channel_problems_are_reported_together(sqlite_url: str) -> None:
    """OtpPro promises to name *every* bad key: a bad provider key must not hide an unknown channel."""
    err = otp_problem(sqlite_url, providers={"email": {"smtp_hots": "x"}}, channels=["fax:code"])
    keys = [p.split(":")[0] for p in err.problems]
    assert "providers.email.smtp_hots" in keys
    assert "channels" in keys


# --------------------------------------------------------------------------
# TOML files
# --------------------------------------------------------------------------

VALID_TOML = f"""
secret_key = "{SECRET_KEY}"
database_url = "sqlite:///data/otp.sqlite3"
mode = "required"
code_length = 8
channels = ["outbox:code", "totp"]
default_channel = "totp"

[totp]
issuer = "Example"

[roles.admin]
requirement = "required"
grace_days = 2
channels = ["totp"]

[providers.email]
smtp_host = "mail.example.com"
"""


def test_from_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "otp-pro.toml"
    path.write_text(VALID_TOML, encoding="utf-8")
    s = Settings.from_file(path)
    assert s.mode == "required" and s.code_length == 8
    assert s.totp.issuer == "Example"
    assert s.roles["admin"].grace_days == 2 and s.roles["admin"].channels == ("totp",)
    assert s.providers == {"email": {"smtp_host": "mail.example.com"}}
    assert s.source == str(path)
    assert s.database_url == f"sqlite:///{(tmp_path / 'data' / 'otp.sqlite3').resolve()}"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///otp.sqlite3", "sqlite:///{dir}/otp.sqlite3"),
        ("sqlite:///sub/../otp.sqlite3", "sqlite:///{dir}/otp.sqlite3"),
        ("sqlite:////var/lib/otp.sqlite3", "sqlite:////var/lib/otp.sqlite3"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
    ids=["relative", "relative-dotdot", "absolute", "memory", "postgresql"],
)
def test_relative_sqlite_path_is_taken_from_the_file_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            url: str, expected: str) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    path = conf / "otp-pro.toml"
    path.write_text(f'secret_key = "{SECRET_KEY}"\ndatabase_url = "{url}"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # anywhere but the file's folder
    assert Settings.from_file(path).database_url == expected.format(dir=conf.resolve())
    # without a file, a relative path stays relative (to the working directory)
    assert build(database_url=url).database_url == url


def test_otppro_from_file_creates_the_database_next_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = conf / "otp-pro.toml"
    path.write_text(f'secret_key = "{SECRET_KEY}"\ndatabase_url = "sqlite:///otp.sqlite3"\n'
                    'channels = ["outbox:code", "totp"]\ndefault_channel = "totp"\n', encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    with OtpPro.from_file(str(path), entry_points=False) as otp:
        assert otp.settings.source == str(path)
        assert otp.settings.channels == ("outbox:code", "totp")
    assert (conf / "otp.sqlite3").exists()
    assert not (elsewhere / "otp.sqlite3").exists()


def test_from_file_validates(tmp_path: Path) -> None:
    path = tmp_path / "otp-pro.toml"
    path.write_text(f'secret_key = "{SECRET_KEY}"\ncode_length = 5\n[roles.admin]\nrequirement = "always"\n')
    with pytest.raises(ConfigurationError) as info:
        Settings.from_file(path)
    assert [p.split(":")[0] for p in info.value.problems] == ["code_length", "roles.admin.requirement"]


def test_from_file_resolves_env_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITE_OTP_KEY", "k" * 48)
    path = tmp_path / "otp-pro.toml"
    path.write_text('secret_key = { env = "SITE_OTP_KEY" }\n', encoding="utf-8")
    assert Settings.from_file(path).secret_key.reveal() == "k" * 48


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    for load in (Settings.from_file, OtpPro.from_file):
        with pytest.raises(ConfigurationError) as info:
            load(str(path))
        assert str(path) in str(info.value)
        assert "does not exist" in str(info.value)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_file(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize(
    "text", ['secret_key = "unterminated\n', "mode = visible\n", "[roles\nrequirement = 1\n", 'a = 1\na = 2\n'],
    ids=["unterminated-string", "bare-word", "broken-table", "duplicate-key"],
)
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "otp-pro.toml"
    path.write_text(text, encoding="utf-8")
    for load in (Settings.from_file, OtpPro.from_file):
        with pytest.raises(ConfigurationError) as info:
            load(str(path))
        assert str(path) in str(info.value)
        assert "not valid TOML" in str(info.value)
        assert "line" in str(info.value)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "otp-pro.toml"
    path.write_bytes(b'site_name = "\xff\xfe"\n')
    with pytest.raises(ConfigurationError, match="UTF-8"):
        Settings.from_file(path)


def test_invalid_toml_does_not_echo_a_secret(tmp_path: Path) -> None:
    path = tmp_path / "otp-pro.toml"
    path.write_text(f'secret_key = "{SECRET_KEY}"\nsmtp_password = hunter2-bare\n', encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        Settings.from_file(path)
    assert SECRET_KEY not in str(info.value)


# --------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------

SECRETS = (SECRET_KEY, PREVIOUS_KEY, SMTP_PASSWORD, DB_PASSWORD)


def secret_settings(database_url: str = f"postgresql+psycopg://u:{DB_PASSWORD}@h/db") -> dict[str, Any]:
    return {
        "secret_key": SECRET_KEY,
        "previous_secret_keys": [PREVIOUS_KEY],
        "database_url": database_url,
        "providers": {"email": {"smtp_username": "mailer", "smtp_password": SMTP_PASSWORD}},
    }


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_redacted_settings_hide_every_secret() -> None:
    s = Settings.from_mapping(secret_settings())  # no connection is made
    shown = s.redacted()
    dumped = json.dumps(shown)  # plain data, ready for `otp-pro config show`
    assert_no_secret(dumped)
    assert shown["secret_key"] == "********"
    assert shown["previous_secret_keys"] == ["********"]
    assert shown["database_url"] == "postgresql+psycopg://u:***@h/db"
    assert shown["providers"]["email"]["smtp_password"] == "********"
    assert shown["mode"] == "visible" and shown["code_length"] == 6


def test_repr_hides_every_secret() -> None:
    s = Settings.from_mapping(secret_settings())
    assert_no_secret(repr(s))
    assert_no_secret(str(s))
    assert_no_secret(repr(s.secret_key))
    assert_no_secret(repr(s.previous_secret_keys))
    assert_no_secret(str(s.secret_key))
    assert "u:***@h/db" in repr(s)


def test_otppro_redacted_settings(tmp_path: Path) -> None:
    with OtpPro(secret_settings(f"sqlite:///{tmp_path}/otp.sqlite3"), entry_points=False) as otp:
        shown = otp.redacted_settings()
        assert_no_secret(json.dumps(shown))
        assert_no_secret(repr(otp))
        assert_no_secret(repr(otp.settings))
        assert_no_secret(repr(otp.transports["email"].config))
        email = shown["providers"]["email"]
        assert email["smtp_password"] == "********"
        assert email["smtp_username"] == "mailer"  # not a secret: shown as validated
        assert email["smtp_host"] == "localhost"
        assert shown["secret_key"] == "********"


def test_validation_errors_do_not_show_secrets(sqlite_url: str) -> None:
    raw = secret_settings(sqlite_url)
    raw["providers"]["email"]["smtp_password"] = 12345678987654321
    err = otp_problem(sqlite_url, **{k: v for k, v in raw.items() if k not in ("secret_key", "database_url")})
    assert err.key == "providers.email.smtp_password"
    assert "12345678987654321" not in str(err)
    raw["providers"]["email"]["smtp_password"] = SMTP_PASSWORD
    raw["providers"]["email"]["smtp_pasword"] = SMTP_PASSWORD  # a misspelt secret key is still not echoed
    err = otp_problem(sqlite_url, **{k: v for k, v in raw.items() if k not in ("secret_key", "database_url")})
    assert err.key == "providers.email.smtp_pasword"
    assert_no_secret(str(err))


# --------------------------------------------------------------------------
# Property: arbitrary JSON-like input validates or raises ConfigurationError
# --------------------------------------------------------------------------

_NAMES = sorted({s.name for s in (*CORE_SETTINGS, *TOTP_SETTINGS, *ROLE_SETTINGS)}
                | {"totp", "roles", "providers", "env", "email", "outbox", "smtp_password"})
_keys = st.sampled_from(_NAMES) | st.text(max_size=8)
#: strings that look like numbers, or almost (what an environment variable holds)
_numberish = st.from_regex(r" ?[-+]{0,2}[0-9²٣]{1,4}(\.[0-9])? ?", fullmatch=True) | st.sampled_from(
    ["nan", "inf", "-0", "1e3", "0x10", "1_000", "true", "no"])
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | _numberish
    | st.sampled_from(["hidden", "visible", "required", "optional", "not_required", "totp", "email:code",
                       "SHA256", SECRET_KEY, "sqlite:///x.db", "postgresql://u:p@h/db"])
)
_json = st.recursive(
    _leaves,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_keys, children, max_size=5)
    | st.fixed_dictionaries(
        {"env": st.text(max_size=6) | st.integers() | st.none() | st.sampled_from(["PATH", "HOME"])}
    ),
    max_leaves=25,
)
_top = st.dictionaries(_keys, _json, max_size=8)
#: flat mappings of real setting names to plain values reach every converter often
_flat = st.dictionaries(st.sampled_from([s.name for s in CORE_SETTINGS]), _leaves | _numberish, max_size=6)
#: a valid mapping with one value replaced: the converters see every kind of value with nothing else wrong
_one_value = _leaves | _numberish | _json
_one_bad = st.one_of(
    st.builds(
        lambda k, v: {"secret_key": SECRET_KEY, k: v}, st.sampled_from([s.name for s in CORE_SETTINGS]), _one_value
    ),
    st.builds(lambda k, v: {"secret_key": SECRET_KEY, "totp": {k: v}}, st.sampled_from([s.name for s in TOTP_SETTINGS]),
              _one_value),
    st.builds(lambda k, v: {"secret_key": SECRET_KEY, "roles": {"editor": {"requirement": "required", k: v}}},
              st.sampled_from([s.name for s in ROLE_SETTINGS]), _one_value),
)
_mappings = st.one_of(_top, _flat, _top.map(lambda d: {**d, "secret_key": SECRET_KEY}), _one_bad)


def _assert_sane(s: Settings) -> None:
    """What validation promises about a Settings it returns."""
    for specs, section in ((CORE_SETTINGS, s), (TOTP_SETTINGS, s.totp)):
        for spec in specs:
            value = getattr(section, spec.name)
            if spec.default is not None or spec.required:
                assert value is not None, f"{spec.name} validated to None"
            if value is None:
                continue
            if spec.type is int:
                assert isinstance(value, int) and not isinstance(value, bool), spec.name
            if spec.minimum is not None:
                assert value >= spec.minimum, spec.name
            if spec.maximum is not None:
                assert value <= spec.maximum, spec.name
            if spec.choices is not None:
                assert value in spec.choices, spec.name
    for role in s.roles.values():
        assert role.requirement in ("not_required", "optional", "required")
        assert role.grace_days is None or (isinstance(role.grace_days, int) and role.grace_days >= 0)


@hsettings(max_examples=400, deadline=None, database=None, derandomize=True,
           suppress_health_check=[HealthCheck.too_slow])
@given(raw=_mappings)
def test_any_json_like_mapping_validates_or_raises_configuration_error(raw: dict[str, Any]) -> None:
    try:
        s = Settings.from_mapping(raw)
    except ConfigurationError as err:
        assert err.problems and all(isinstance(p, str) and p for p in err.problems)
        assert err.key is None or isinstance(err.key, str)
    else:
        assert isinstance(s, Settings)
        _assert_sane(s)
        json.dumps(s.redacted())
        repr(s)


@given(raw=_json)
@hsettings(max_examples=100, deadline=None, database=None, derandomize=True)
def test_any_json_like_value_validates_or_raises_configuration_error(raw: Any) -> None:
    try:
        Settings.from_mapping(raw)
    except ConfigurationError:
        pass


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("demo.localhost", True), ("127.0.0.1", True), ("127.0.0.1:5000", True),
    ("127.8.9.10", True), ("::1", True), ("[::1]:8080", True), ("localhost:5000", True),
    ("example.com", False), ("localhost.example.com", False), ("10.0.0.1:80", False), ("[2001:db8::1]:443", False),
    ("", False),
])
def test_is_loopback_host_for_the_plain_http_exceptions(host, loopback):
    """One rule for where plain http is tolerated: the Flask cookies' Secure flag and magic-links' base_url."""
    from otp_pro.settings import is_loopback_host

    assert is_loopback_host(host) is loopback
