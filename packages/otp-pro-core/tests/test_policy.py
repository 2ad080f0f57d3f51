"""The policy: who must use a second factor, with which channels, default and grace period.

Two layers:

* ``TABLE`` drives :func:`otp_pro.policy.resolve` directly (pure, no database)
  for every site mode and every shape of a member's roles. Each row states its
  expected answer literally; nothing is recomputed with the code under test.
* ``API_TABLE`` runs a subset through the public API (``OtpPro.status``,
  ``begin_setup``, ``disable``) on a real database (SQLite, and PostgreSQL when
  ``OTP_PRO_TEST_POSTGRES_URL`` is set).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from core_support import SECRET_KEY

from otp_pro import ChannelUnavailable, Member, OtpPro, PolicyError, policy
from otp_pro.settings import Settings
from otp_pro.testing import Clock, enrol

NR, OPT, REQ = "not_required", "optional", "required"
EMAIL, SMS, TOTP = "email:code", "sms:code", "totp"

# --------------------------------------------------------------------------
# The pure table
# --------------------------------------------------------------------------

#: What the plugins would register, in their preferred order (the pure layer
#: never loads plugins, so any channel names will do).
REGISTERED = (EMAIL, SMS, TOTP, "email:magic_link")

#: Site: three channels offered, email by default, 7 days of grace.
#: Roles without an entry here ("plain", "viewer") follow the site mode.
ROLES: dict[str, dict[str, Any]] = {
    # not_required
    "guest": {"requirement": NR},
    "alumni": {"requirement": NR},
    # optional
    "staff": {"requirement": OPT, "channels": [TOTP, SMS], "default_channel": SMS},
    "auditor": {"requirement": OPT, "channels": [EMAIL]},
    # required
    "admin": {"requirement": REQ, "channels": [TOTP, EMAIL], "grace_days": 3, "default_channel": TOTP},
    "finance": {"requirement": REQ, "channels": [SMS, EMAIL], "grace_days": 10},
    "ops": {"requirement": REQ, "channels": [SMS], "grace_days": 1},  # shares nothing with admin
    "contractor": {"requirement": REQ},  # site channels, site grace
}


def site_settings(mode: str, **overrides: Any) -> Settings:
    raw: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "mode": mode,
        "channels": [EMAIL, SMS, TOTP],
        "default_channel": EMAIL,
        "grace_days": 7,
        "roles": ROLES,
    }
    raw.update(overrides)
    return Settings.from_mapping(raw)


ALL3 = (EMAIL, SMS, TOTP)


def row(mode: str, roles: tuple[str, ...], requirement: str, channels: tuple[str, ...], default: str | None,
        grace: int) -> Any:
    return pytest.param(mode, roles, requirement, channels, default, grace,
                        id=f"{mode}-{'+'.join(roles) or 'no-roles'}")


def hidden(roles: tuple[str, ...]) -> Any:
    return row("hidden", roles, NR, (), None, 0)


TABLE = [
    # ------------------------------------------------------------------ hidden
    # A kill switch: nobody is asked, nothing is offered, overrides do not lift it.
    hidden(()),
    hidden(("plain",)),
    hidden(("guest",)),
    hidden(("staff",)),
    hidden(("admin",)),
    hidden(("plain", "viewer")),
    hidden(("plain", "admin")),
    hidden(("admin", "finance")),
    hidden(("admin", "ops")),
    hidden(("guest", "staff", "auditor")),
    hidden(("staff", "admin", "finance")),
    # ----------------------------------------------------------------- visible
    #    mode       roles                              requirement channels          default grace
    # no roles / one role
    row("visible", (), OPT, ALL3, EMAIL, 0),
    row("visible", ("plain",), OPT, ALL3, EMAIL, 0),
    row("visible", ("guest",), NR, (), None, 0),
    row("visible", ("staff",), OPT, (TOTP, SMS), SMS, 0),
    row("visible", ("auditor",), OPT, (EMAIL,), EMAIL, 0),
    row("visible", ("admin",), REQ, (TOTP, EMAIL), TOTP, 3),
    row("visible", ("contractor",), REQ, ALL3, EMAIL, 7),
    row("visible", ("admin", "admin"), REQ, (TOTP, EMAIL), TOTP, 3),
    # two roles: every pair of {no override, not_required, optional, required}
    row("visible", ("plain", "viewer"), OPT, ALL3, EMAIL, 0),
    row("visible", ("plain", "guest"), OPT, ALL3, EMAIL, 0),
    row("visible", ("plain", "staff"), OPT, ALL3, EMAIL, 0),  # union of site and staff
    row("visible", ("plain", "admin"), REQ, (TOTP, EMAIL), TOTP, 3),
    row("visible", ("guest", "alumni"), NR, (), None, 0),
    row("visible", ("guest", "staff"), OPT, (TOTP, SMS), SMS, 0),
    row("visible", ("guest", "admin"), REQ, (TOTP, EMAIL), TOTP, 3),
    row("visible", ("staff", "auditor"), OPT, (TOTP, SMS, EMAIL), SMS, 0),  # union
    row("visible", ("staff", "admin"), REQ, (TOTP, EMAIL), TOTP, 3),
    row("visible", ("admin", "finance"), REQ, (EMAIL,), EMAIL, 3),  # intersection; admin's totp not in it
    row("visible", ("admin", "ops"), REQ, (TOTP, EMAIL, SMS), TOTP, 1),  # disjoint: union fallback
    row("visible", ("finance", "ops"), REQ, (SMS,), SMS, 1),  # nobody's default fits: first channel
    row("visible", ("admin", "contractor"), REQ, (TOTP, EMAIL), TOTP, 3),
    # three roles
    row("visible", ("guest", "staff", "auditor"), OPT, (TOTP, SMS, EMAIL), SMS, 0),
    row("visible", ("plain", "guest", "staff"), OPT, ALL3, EMAIL, 0),
    row("visible", ("guest", "plain", "admin"), REQ, (TOTP, EMAIL), TOTP, 3),
    row("visible", ("staff", "admin", "finance"), REQ, (EMAIL,), EMAIL, 3),
    row("visible", ("admin", "finance", "ops"), REQ, (TOTP, EMAIL, SMS), TOTP, 1),  # admin∩ops empty
    row("visible", ("finance", "contractor", "ops"), REQ, (SMS,), SMS, 1),
    # ---------------------------------------------------------------- required
    # no roles / one role
    row("required", (), REQ, ALL3, EMAIL, 7),
    row("required", ("plain",), REQ, ALL3, EMAIL, 7),
    row("required", ("guest",), NR, (), None, 0),  # an override lowers the site mode
    row("required", ("staff",), OPT, (TOTP, SMS), SMS, 0),
    row("required", ("auditor",), OPT, (EMAIL,), EMAIL, 0),
    row("required", ("admin",), REQ, (TOTP, EMAIL), TOTP, 3),
    row("required", ("contractor",), REQ, ALL3, EMAIL, 7),
    # two roles
    row("required", ("plain", "viewer"), REQ, ALL3, EMAIL, 7),
    row("required", ("plain", "guest"), REQ, ALL3, EMAIL, 7),
    row("required", ("plain", "staff"), REQ, ALL3, EMAIL, 7),  # staff's optional does not count
    row("required", ("plain", "admin"), REQ, (EMAIL, TOTP), EMAIL, 3),  # site ∩ admin, shortest grace
    row("required", ("guest", "alumni"), NR, (), None, 0),
    row("required", ("guest", "staff"), OPT, (TOTP, SMS), SMS, 0),
    row("required", ("guest", "admin"), REQ, (TOTP, EMAIL), TOTP, 3),
    row("required", ("staff", "auditor"), OPT, (TOTP, SMS, EMAIL), SMS, 0),
    row("required", ("staff", "admin"), REQ, (TOTP, EMAIL), TOTP, 3),
    row("required", ("admin", "finance"), REQ, (EMAIL,), EMAIL, 3),
    row("required", ("admin", "ops"), REQ, (TOTP, EMAIL, SMS), TOTP, 1),
    row("required", ("finance", "ops"), REQ, (SMS,), SMS, 1),
    row("required", ("admin", "contractor"), REQ, (TOTP, EMAIL), TOTP, 3),
    # three roles
    row("required", ("guest", "staff", "auditor"), OPT, (TOTP, SMS, EMAIL), SMS, 0),
    row("required", ("plain", "guest", "staff"), REQ, ALL3, EMAIL, 7),
    row("required", ("guest", "plain", "admin"), REQ, (EMAIL, TOTP), EMAIL, 3),
    row("required", ("staff", "admin", "finance"), REQ, (EMAIL,), EMAIL, 3),
    row("required", ("admin", "finance", "ops"), REQ, (TOTP, EMAIL, SMS), TOTP, 1),
    row("required", ("finance", "contractor", "ops"), REQ, (SMS,), SMS, 1),
]


@pytest.mark.parametrize("mode, roles, requirement, channels, default, grace", TABLE)
def test_policy_table(mode: str, roles: tuple[str, ...], requirement: str, channels: tuple[str, ...],
                      default: str | None, grace: int) -> None:
    answer = policy.resolve(site_settings(mode), roles, REGISTERED)
    assert answer.requirement == requirement
    assert answer.is_required == (requirement == REQ)
    assert set(answer.channels) == set(channels)
    assert len(answer.channels) == len(set(answer.channels)), "a channel is offered twice"
    assert answer.default_channel == default
    assert answer.default_channel is None or answer.default_channel in answer.channels
    assert answer.grace_days == grace


def test_role_order_does_not_change_the_channel_set() -> None:
    s = site_settings("visible")
    for a, b in [("staff", "auditor"), ("admin", "finance"), ("admin", "ops"), ("plain", "staff")]:
        forward, backward = policy.resolve(s, (a, b), REGISTERED), policy.resolve(s, (b, a), REGISTERED)
        assert set(forward.channels) == set(backward.channels)


def test_single_role_keeps_its_preference_order() -> None:
    s = site_settings("visible")
    assert policy.resolve(s, ("staff",), REGISTERED).channels == (TOTP, SMS)
    assert policy.resolve(s, ("admin",), REGISTERED).channels == (TOTP, EMAIL)
    assert policy.resolve(s, ("plain",), REGISTERED).channels == (EMAIL, SMS, TOTP)


def test_deciding_roles_are_reported() -> None:
    s = site_settings("visible")
    assert policy.resolve(s, (), REGISTERED).roles == ()
    assert policy.resolve(s, ("plain",), REGISTERED).roles == ()
    assert policy.resolve(s, ("guest", "staff", "auditor"), REGISTERED).roles == ("staff", "auditor")
    assert policy.resolve(s, ("plain", "admin", "staff", "ops"), REGISTERED).roles == ("admin", "ops")


def test_site_channels_default_to_every_registered_channel() -> None:
    s = site_settings("required", channels=None)
    answer = policy.resolve(s, (), (EMAIL, TOTP))
    assert answer.requirement == REQ
    assert set(answer.channels) == {EMAIL, TOTP}
    assert answer.default_channel == EMAIL


def test_site_default_outside_the_offered_channels_falls_back_to_the_first() -> None:
    s = site_settings("visible", channels=[TOTP, SMS], default_channel=EMAIL, roles={})
    answer = policy.resolve(s, (), REGISTERED)
    assert set(answer.channels) == {TOTP, SMS}
    assert answer.default_channel == TOTP


# --------------------------------------------------------------------------
# conflicts
# --------------------------------------------------------------------------


def test_conflicts_reports_disjoint_required_roles() -> None:
    found = policy.conflicts(site_settings("visible"), REGISTERED)
    assert len(found) == 1
    assert "'admin'" in found[0] and "'ops'" in found[0]


def test_conflicts_ignores_overlapping_and_optional_roles() -> None:
    roles = {
        "admin": {"requirement": REQ, "channels": [TOTP, EMAIL]},
        "finance": {"requirement": REQ, "channels": [SMS, EMAIL]},
        "contractor": {"requirement": REQ},
        "staff": {"requirement": OPT, "channels": [SMS]},  # disjoint from admin, but optional
        "guest": {"requirement": NR, "channels": [SMS]},
    }
    assert policy.conflicts(site_settings("visible", roles=roles), REGISTERED) == []


def test_conflicts_lists_every_disjoint_pair() -> None:
    roles = {
        "a": {"requirement": REQ, "channels": [TOTP]},
        "b": {"requirement": REQ, "channels": [SMS]},
        "c": {"requirement": REQ, "channels": [EMAIL]},
        "d": {"requirement": REQ},  # site channels: overlaps all three
    }
    found = policy.conflicts(site_settings("visible", roles=roles), REGISTERED)
    assert len(found) == 3
    pairs = {tuple(sorted(name for name in "abc" if f"'{name}'" in line)) for line in found}
    assert pairs == {("a", "b"), ("a", "c"), ("b", "c")}


# --------------------------------------------------------------------------
# The same policy through the public API, on a real database
# --------------------------------------------------------------------------

OUTBOX = "outbox:code"
#: core_support.base_settings' site: channels outbox:code, totp, email:code; default outbox:code.
API_ROLES: dict[str, dict[str, Any]] = {
    "guest": {"requirement": NR},
    "staff": {"requirement": OPT, "channels": [TOTP, EMAIL], "default_channel": TOTP},
    "admin": {"requirement": REQ, "channels": [TOTP, OUTBOX], "grace_days": 3, "default_channel": TOTP},
    "ops": {"requirement": REQ, "channels": [EMAIL, OUTBOX], "grace_days": 1},
    "auditor": {"requirement": REQ, "channels": [EMAIL]},  # shares nothing with admin; site grace (7)
}
API_ALL = (OUTBOX, TOTP, EMAIL)


def api_row(mode: str, roles: tuple[str, ...], requirement: str, channels: tuple[str, ...], default: str | None,
            grace: int | None) -> Any:
    return pytest.param(mode, roles, requirement, channels, default, grace,
                        id=f"{mode}-{'+'.join(roles) or 'no-roles'}")


API_TABLE = [
    #       mode        roles                      requirement channels          default grace days
    api_row("hidden", (), NR, (), None, None),
    api_row("hidden", ("admin",), NR, (), None, None),
    api_row("visible", (), OPT, API_ALL, OUTBOX, None),
    api_row("visible", ("guest",), NR, (), None, None),
    api_row("visible", ("staff",), OPT, (TOTP, EMAIL), TOTP, None),
    api_row("visible", ("admin",), REQ, (TOTP, OUTBOX), TOTP, 3),
    api_row("visible", ("admin", "ops"), REQ, (OUTBOX,), OUTBOX, 1),
    api_row("visible", ("admin", "auditor"), REQ, (TOTP, OUTBOX, EMAIL), TOTP, 3),
    api_row("required", (), REQ, API_ALL, OUTBOX, 7),
    api_row("required", ("guest",), NR, (), None, None),
    api_row("required", ("staff",), OPT, (TOTP, EMAIL), TOTP, None),
    api_row("required", ("plain", "admin"), REQ, (OUTBOX, TOTP), OUTBOX, 3),
    api_row("required", ("staff", "guest", "plain"), REQ, API_ALL, OUTBOX, 7),
]

MakeOtp = Callable[..., OtpPro]


def api_otp(make_otp: MakeOtp, mode: str, **overrides: Any) -> OtpPro:
    return make_otp(mode=mode, grace_days=7, roles=API_ROLES, **overrides)


def person(*roles: str, email: str | None = "ann@example.com", id: str = "42") -> Member:
    return Member(id=id, roles=roles, email=email, name="Ann")


@pytest.mark.parametrize("mode, roles, requirement, channels, default, grace", API_TABLE)
def test_status_table(make_otp: MakeOtp, clock: Clock, mode: str, roles: tuple[str, ...], requirement: str,
                      channels: tuple[str, ...], default: str | None, grace: int | None) -> None:
    otp = api_otp(make_otp, mode)
    member = person(*roles)
    first_seen = clock()

    status = otp.status(member)
    assert status.requirement == requirement
    assert set(status.channels) == set(channels)
    assert status.default_channel == default
    assert status.unavailable == {}
    assert not status.enrolled and not status.can_disable
    if grace is None:
        assert status.grace_ends_at is None
        assert not status.in_grace and not status.must_setup
    else:
        assert status.grace_ends_at == first_seen + timedelta(days=grace)
        assert status.in_grace and not status.must_setup

    # one second before the end of the grace period: still in grace
    clock.advance(days=grace or 7, seconds=-1)
    status = otp.status(member)
    assert status.must_setup is False
    assert status.in_grace is (grace is not None)

    # the grace period is over: setup is forced (only) for required members
    clock.advance(seconds=1)
    status = otp.status(member)
    assert status.requirement == requirement
    assert not status.in_grace
    assert status.must_setup is (grace is not None)
    if grace is not None:
        assert status.grace_ends_at == first_seen + timedelta(days=grace), "the grace period must not restart"


def test_zero_grace_forces_setup_at_once(make_otp: MakeOtp) -> None:
    otp = make_otp(mode="required", grace_days=0)
    status = otp.status(person())
    assert status.requirement == REQ
    assert status.must_setup and not status.in_grace


def test_grace_starts_the_first_time_the_member_is_required(make_otp: MakeOtp, clock: Clock) -> None:
    member = person("plain")
    visible = api_otp(make_otp, "visible")
    assert visible.status(member).requirement == OPT  # seen, but not required: no grace yet
    clock.advance(days=5)
    became_required = clock()
    required = api_otp(make_otp, "required")
    status = required.status(member)
    assert status.grace_ends_at == became_required + timedelta(days=7)
    assert status.in_grace and not status.must_setup


def test_grace_start_persists_across_instances(make_otp: MakeOtp, clock: Clock) -> None:
    member = person("admin")
    started = clock()
    first = api_otp(make_otp, "visible")
    assert first.status(member).grace_ends_at == started + timedelta(days=3)
    first.close()

    clock.advance(days=2)
    second = api_otp(make_otp, "visible")
    status = second.status(member)
    assert status.grace_ends_at == started + timedelta(days=3)
    assert status.in_grace

    clock.advance(days=1)
    third = api_otp(make_otp, "visible")
    status = third.status(member)
    assert status.must_setup and not status.in_grace
    assert status.grace_ends_at == started + timedelta(days=3)


@pytest.mark.parametrize("grace_days", [0, 3])
def test_enrolled_member_never_must_setup(make_otp: MakeOtp, clock: Clock, grace_days: int) -> None:
    otp = make_otp(mode="required", grace_days=grace_days)
    member = person()
    enrol(otp, member, OUTBOX)
    for _ in range(3):
        status = otp.status(member)
        assert status.enrolled and status.channel == OUTBOX
        assert status.requirement == REQ
        assert not status.must_setup and not status.in_grace
        assert not status.can_disable
        clock.advance(days=30)


def test_required_member_cannot_disable_without_force(make_otp: MakeOtp) -> None:
    otp = api_otp(make_otp, "visible")
    member = person("admin")
    enrol(otp, member, OUTBOX)
    assert otp.status(member).can_disable is False
    with pytest.raises(PolicyError) as info:
        otp.disable(member)
    assert not isinstance(info.value, ChannelUnavailable)
    assert otp.status(member).enrolled, "a refused disable must leave the factor in place"

    otp.disable(member, force=True, actor="admin:1")
    status = otp.status(member)
    assert not status.enrolled and status.channel is None
    assert status.requirement == REQ


def test_required_by_site_mode_cannot_disable(make_otp: MakeOtp) -> None:
    otp = make_otp(mode="required", grace_days=0)
    member = person()
    enrol(otp, member, OUTBOX)
    with pytest.raises(PolicyError):
        otp.disable(member)
    otp.disable(member, force=True)
    status = otp.status(member)
    assert not status.enrolled and status.must_setup


@pytest.mark.parametrize(
    "mode, roles", [("visible", ()), ("required", ("staff",))], ids=["visible-site", "optional-role"]
)
def test_optional_member_may_disable(make_otp: MakeOtp, mode: str, roles: tuple[str, ...]) -> None:
    otp = api_otp(make_otp, mode)
    member = person(*roles)
    channel = TOTP if roles else OUTBOX
    enrol(otp, member, channel)
    status = otp.status(member)
    assert status.requirement == OPT and status.enrolled and status.can_disable
    otp.disable(member)
    status = otp.status(member)
    assert not status.enrolled and status.disabled
    assert not status.must_setup


def test_begin_setup_with_a_channel_the_role_does_not_allow(make_otp: MakeOtp) -> None:
    otp = api_otp(make_otp, "visible")
    with pytest.raises(ChannelUnavailable) as info:
        otp.begin_setup(person("admin"), EMAIL)  # admin: totp, outbox:code
    assert info.value.channel == EMAIL
    assert EMAIL in str(info.value)
    with pytest.raises(ChannelUnavailable):
        otp.begin_setup(person("staff"), OUTBOX)  # staff: totp, email:code


@pytest.mark.parametrize("mode, roles", [("visible", ("guest",)), ("required", ("guest",)), ("hidden", ("admin",))],
                         ids=["visible-guest", "required-guest", "hidden-admin"])
def test_begin_setup_for_a_not_required_member(make_otp: MakeOtp, mode: str, roles: tuple[str, ...]) -> None:
    otp = api_otp(make_otp, mode)
    for channel in (OUTBOX, TOTP):
        with pytest.raises(PolicyError) as info:
            otp.begin_setup(person(*roles), channel)
        assert not isinstance(info.value, ChannelUnavailable)


def test_email_channel_unavailable_without_an_email_address(make_otp: MakeOtp) -> None:
    otp = make_otp(mode="visible")
    member = person(email=None)
    status = otp.status(member)
    assert set(status.channels) == {OUTBOX, TOTP}
    assert set(status.unavailable) == {EMAIL}
    assert "email" in status.unavailable[EMAIL]
    with pytest.raises(ChannelUnavailable) as info:
        otp.begin_setup(member, EMAIL)
    assert info.value.channel == EMAIL
    assert info.value.reason == status.unavailable[EMAIL]
    by_name = {c.name: c for c in otp.available_channels(member)}
    assert by_name[EMAIL].available is False and by_name[EMAIL].reason == status.unavailable[EMAIL]
    assert by_name[TOTP].available is True


def test_unavailable_default_channel_falls_back_to_an_available_one(make_otp: MakeOtp) -> None:
    otp = make_otp(mode="required", default_channel=EMAIL, grace_days=1)
    status = otp.status(person(email=None))
    assert status.default_channel == OUTBOX  # first available in the site's order
    assert EMAIL in status.unavailable
    assert otp.status(person()).default_channel == EMAIL


def test_invalid_email_address_is_unavailable_too(make_otp: MakeOtp) -> None:
    otp = make_otp(mode="visible")
    status = otp.status(person(email="not-an-address"))
    assert EMAIL not in status.channels
    assert EMAIL in status.unavailable


def test_status_can_look_without_starting_the_grace_period(make_otp, clock):
    otp = make_otp(mode="required", grace_days=7)
    member = Member(id="looked-at", email="l@example.com")
    first = otp.status(member, start_grace=False)
    assert first.in_grace and first.grace_ends_at == clock() + timedelta(days=7)
    clock.advance(days=3)
    # Nothing was written: the real start is the first ordinary status().
    assert otp.status(member).grace_ends_at == clock() + timedelta(days=7)
