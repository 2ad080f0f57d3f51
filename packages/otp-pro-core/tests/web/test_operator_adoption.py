"""Adoption over time by current role (``otp_pro.stats_adoption``): members enrolled at the end of each day,
read from the audit log's enrolment history, each member under the roles the member lookup gives now."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete
from test_operator import MEMBER, OPERATOR, OTHER, ROLES, STAFF, Lookup, operator_signed_in

from otp_pro import OtpPro, stats_adoption
from otp_pro.stats_adoption import _intervals
from otp_pro.storage.schema import audit_events
from otp_pro.testing import Clock, enrol


def test_members_enrolled_per_day_by_current_role(make_otp: Callable[..., OtpPro], clock: Clock) -> None:
    otp = make_otp(roles=ROLES, plugins=[Lookup()])
    start = clock() - timedelta(days=1)
    enrol(otp, OPERATOR)                          # day 1: the operator (staff)
    clock.advance(days=1)
    enrol(otp, MEMBER)                            # day 2: + 42 (editor)
    enrol(otp, MEMBER, "totp")                    # a second factor changes nothing
    clock.advance(days=1)
    enrol(otp, OTHER)                             # day 3: + 420 (editor)
    clock.advance(days=1)
    otp.disable(MEMBER, actor="support")          # day 4: - 42
    clock.advance(days=1)
    enrol(otp, STAFF)                             # day 5: + op-2 (staff), - the operator, + 42 again, whose
    otp.reset(OPERATOR, actor="support")          # last factor is then removed (- 42)
    enrol(otp, MEMBER)
    otp.remove_factor(MEMBER, otp.factors(MEMBER)[0].id, actor="support")
    found = stats_adoption.enrolled_per_day(otp, start, clock())
    assert found == {"*": [0, 1, 2, 3, 2, 2], "staff": [0, 1, 1, 1, 1, 1], "editor": [0, 0, 1, 2, 1, 1]}
    # Without roles: one series.
    assert stats_adoption.enrolled_per_day(otp, start, clock(), roles=False) == {"*": [0, 1, 2, 3, 2, 2]}


def test_a_history_the_log_no_longer_holds_is_taken_from_the_member_row(make_otp: Callable[..., OtpPro],
                                                                         clock: Clock) -> None:
    otp = make_otp(roles=ROLES, plugins=[Lookup()])
    start = clock()
    enrol(otp, MEMBER)
    enrol(otp, OTHER)
    clock.advance(days=2)
    with otp.db.write() as conn:  # the setups pruned from the log
        conn.execute(delete(audit_events))
    otp.disable(OTHER, actor="support")  # switched off: so enrolled before the log begins
    assert stats_adoption.enrolled_per_day(otp, start, clock()) == {"*": [2, 2, 1], "editor": [2, 2, 1]}


def test_intervals_of_odd_histories() -> None:
    t = [datetime(2026, 1, 1 + n, tzinfo=timezone.utc) for n in range(4)]
    assert _intervals([], None) == []
    assert _intervals([], t[0]) == [(t[0], None)]
    assert _intervals([(t[1], "disabled", None)], None) == [(None, t[1])]
    assert _intervals([(t[0], "setup_completed", None), (t[1], "factor_removed", '{"factors_left": 1}')],
                      t[0]) == [(t[0], None)]
    # Not enrolled now, though the log's last word is a setup (a later change was pruned): off by then.
    assert _intervals([(t[0], "setup_completed", None), (t[2], "setup_completed", None)], None) == [(t[0], t[2])]


def test_the_statistics_page_charts_it_labelled_by_current_role(make_otp: Callable[..., OtpPro],
                                                                clock: Clock) -> None:
    client, _token = operator_signed_in(make_otp(roles=ROLES, plugins=[Lookup()]), clock)
    page = client.get("/otp/operator/statistics?days=7").text
    assert 'id="chart-adoption_over_time"' in page and "by current role" in page
    assert "otp-pro does not store past roles" in page
    header = re.search(r'<caption>Members enrolled over time, by current role \(members\)</caption>\s*'
                       r'<thead><tr><th scope="col">Day</th>(.*?)</tr></thead>', page)
    assert header and re.findall(r">([^<]+)</th>", header.group(1)) == ["all members", "editor", "staff"]
