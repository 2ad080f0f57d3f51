"""The console's statistics page over a month of generated activity: inline SVG charts, each with its numbers
in a table that agrees with ``otp-pro stats``; delivery-time percentiles picked in SQL on either database."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta

from test_operator import MEMBER, OPERATOR, ROLES, Lookup, console, verified

from otp_pro import OtpPro, stats, stats_trends
from otp_pro.storage.schema import challenges
from otp_pro.testing import Clock, enrol, fill_activity
from otp_pro.web.flow.operator.charts import Chart, svg


def test_the_statistics_page_draws_each_chart_with_its_numbers(make_otp: Callable[..., OtpPro],
                                                                clock: Clock) -> None:
    otp = make_otp(roles=ROLES, plugins=[Lookup()])
    enrol(otp, OPERATOR)
    enrol(otp, MEMBER)
    clock.advance(60)
    counts = fill_activity(otp, days=30)
    assert counts["events"] > 1000
    client = console(otp, OPERATOR)
    verified(otp, client)
    reply = client.get("/otp/operator/statistics")
    assert reply.status_code == 200
    page = reply.text
    figures = re.findall(r'<figure class="chart" id="chart-(\w+)">', page)
    assert figures == ["setups", "adoption", "adoption_over_time", "verifications", "daily", "deliveries",
                       "delivery_times"]
    assert page.count("<svg") == 7 and page.count('<table class="visually-hidden">') == 7
    assert "<script" not in page and " style=" not in page  # nothing the Content-Security-Policy would block
    found = stats.collect(otp, otp.clock() - timedelta(days=30), until=otp.clock())
    email = next(c for c in found.channels if c.channel == "email:code")
    row = re.search(r'<tr><th scope="row">email:code</th><td>([\d.]+)</td><td>([\d.]+)</td></tr>', page)
    assert row and (float(row.group(1)), float(row.group(2))) == (email.verify_ok, email.verify_failed)
    assert f"Lockouts <strong>{found.totals['lockouts']}</strong>" in page
    assert "21211" in page  # a provider's error code, in the failures table
    assert client.get("/otp/operator/statistics?days=7").status_code == 200


def test_delivery_time_percentiles_are_the_nearest_rank_of_the_rows(make_otp: Callable[..., OtpPro]) -> None:
    otp = make_otp()
    fill_activity(otp, days=10, members=40, per_day=30)
    start, until = otp.clock() - timedelta(days=11), otp.clock()
    with otp.db.read() as conn:
        rows = conn.execute(challenges.select().where(challenges.c.sent_at.is_not(None))).fetchall()
    for times in stats_trends.delivery_times(otp, start, until):
        ms = sorted((r.sent_at - r.created_at).total_seconds() * 1000 for r in rows if r.channel == times.channel)
        assert times.sent == len(ms)
        for p, value in times.percentiles.items():
            expected = ms[max(1, math.ceil(p * len(ms) / 100)) - 1]
            assert abs(value - expected) < 1.5, (times.channel, p, value, expected)


def test_a_chart_escapes_its_labels() -> None:
    drawn = svg(Chart("x", "t", "bar", ["<script>alert(1)</script>"], {"a&b": [3.0]}))
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn and "a&amp;b" in drawn
