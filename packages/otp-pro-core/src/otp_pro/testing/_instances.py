"""``OtpPro`` instances and members for tests, and reading and entering the codes an instance sends."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from .. import Member, OtpPro
from ._clock import Clock

#: The ``secret_key`` of the ``otp`` fixture's settings (test use only).
TEST_SECRET_KEY = "otp-pro-testing-secret-key-" + "k" * 32


@pytest.fixture
def otp_settings(tmp_path: Path) -> dict[str, Any]:
    """Settings of the ``otp`` fixture: a fresh SQLite file, ``visible`` mode, no resend cooldown.

    Override this fixture (in a conftest, module or class) to change them; it may
    request other fixtures, such as a loopback server whose URL goes in ``providers``.
    """
    return {
        "secret_key": TEST_SECRET_KEY,
        "database_url": f"sqlite:///{tmp_path}/otp.sqlite3",
        "site_name": "Example",
        "support_email": "help@example.com",
        "mode": "visible",
        # Tests that are not about throttling should not trip over it.
        "resend_cooldown_seconds": 0,
    }


@pytest.fixture
def otp_plugins() -> list[object]:
    """Plugin objects the ``otp`` fixture passes as ``OtpPro(plugins=...)`` (none by default).

    Override it for plugins that register transports, payloads or settings: those
    hooks run only while an instance starts.
    """
    return []


@pytest.fixture
def otp_factory(clock: Clock) -> Iterator[Callable[..., OtpPro]]:
    """``otp_factory(settings, plugins=(), **kwargs)``: :class:`~otp_pro.OtpPro` instances on the ``clock``,
    every one closed when the test ends (passed or failed). Build a test's own ``make_otp`` on it."""
    made: list[OtpPro] = []

    def factory(settings: Mapping[str, Any], *, plugins: Iterable[object] = (), **kwargs: Any) -> OtpPro:
        instance = OtpPro(settings, plugins=plugins, clock=clock, **kwargs)
        made.append(instance)
        return instance

    yield factory
    for instance in made:
        instance.close()


@pytest.fixture
def otp(otp_settings: dict[str, Any], otp_plugins: list[object], otp_factory: Callable[..., OtpPro]) -> OtpPro:
    """An :class:`~otp_pro.OtpPro` built from ``otp_settings`` and ``otp_plugins`` on the ``clock``; closed afterwards.

    Installed plugins are discovered as in production (entry-point group ``otp_pro``).
    """
    return otp_factory(otp_settings, plugins=otp_plugins)


# Tells "not given" from an explicit None, which means "no email" or "no name".
_UNSET: Any = object()


@pytest.fixture
def make_member() -> Callable[..., Member]:
    """Build members with unique ids: ``make_member()``, ``make_member(roles=["admin"], fields={"phone": ...})``.

    Defaults: id ``member-<n>``, email ``<id>@example.com`` (``email=None`` for none),
    name ``Member <n>``, no roles, no fields.
    """
    counter = itertools.count(1)

    def factory(
        id: str | int | None = None,
        *,
        roles: Sequence[str] = (),
        email: str | None = _UNSET,
        name: str | None = _UNSET,
        fields: Mapping[str, Any] | None = None,
    ) -> Member:
        number = next(counter)
        member_id = str(id) if id is not None else f"member-{number}"
        return Member(
            member_id,
            roles=roles,
            email=f"{member_id}@example.com" if email is _UNSET else email,
            name=f"Member {number}" if name is _UNSET else name,
            fields=fields,
        )

    return factory


def outbox_code(otp: OtpPro, recipient: str | None = None) -> str:
    """The code in the newest message of ``otp``'s ``outbox`` transport (the newest to ``recipient``, if given).

    The ``outbox`` transport keeps messages in memory instead of sending them, so a
    test with ``outbox:code`` among its channels reads each code back with this.
    """
    message = otp.transports["outbox"].last(recipient)  # type: ignore[attr-defined]
    assert message is not None, "no message in the outbox"
    match = re.search(rf"\b(\d{{{otp.settings.code_length}}})\b", message.text)
    assert match, "no code in the message"
    return match.group(1)


def enrol(otp: OtpPro, member: Member, channel: str = "outbox:code") -> list[str]:
    """Set up ``channel`` for ``member`` and return the backup codes the setup issued.

    For ``totp`` the code is computed from the secret the setup shows, at ``otp.clock()``;
    for any other channel it is read from the outbox (:func:`outbox_code`), so the
    channel must deliver there (``outbox:code``).
    """
    info = otp.begin_setup(member, channel)
    if channel == "totp":
        import pyotp

        assert info.secret is not None
        return otp.complete_setup(member, pyotp.TOTP(info.secret).at(otp.clock()))
    return otp.complete_setup(member, outbox_code(otp))
