"""The README's library snippet runs as written, and its account of which calls raise holds.

The snippet is taken from the README (the first ``python`` block under "## Library use")
and executed against a real SQLite file and a real SMTP server on loopback. One thing
in it is changed: its SMTP host (``smtp.example.com``) becomes the loopback server, so
the ``email:code`` channel it documents is the one that runs. The ``OtpPro`` it builds
reads the test's clock (the default clock is swapped before the snippet runs), so a
sign-in can come after the resend cooldown that follows enrolment without waiting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyotp
import pytest

from otp_pro import TOTP, ChannelUnavailable, InvalidCode, Member, audit
from otp_pro.testing import Clock, Mailbox, mailed_code

README = Path(__file__).resolve().parents[3] / "README.md"
DOCUMENTED_SMTP = '"smtp_host": "smtp.example.com"'


def library_snippet() -> str:
    text = README.read_text()
    assert "\n## Library use\n" in text, "README.md has no '## Library use' section"
    section = text.split("\n## Library use\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README.md's '## Library use' has no python block"
    return blocks[0]


@pytest.fixture
def readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: tuple[str, int, Mailbox],
           mailbox: Mailbox, clock: Clock) -> Any:
    """The snippet's names after running it: ``otp``, ``ann``, ``start_setup``... (``otp`` closed afterwards)."""
    host, port, _ = smtp_server
    code = library_snippet()
    assert code.count(DOCUMENTED_SMTP) == 1, f"the README snippet no longer says {DOCUMENTED_SMTP}"
    code = code.replace(DOCUMENTED_SMTP, f'"smtp_host": "{host}", "smtp_port": {port}')
    monkeypatch.setenv("OTP_PRO_SECRET_KEY", "readme-test-secret-key-" + "x" * 20)
    monkeypatch.setattr("otp_pro.core.utcnow", clock)  # OtpPro(settings) without clock= reads this
    monkeypatch.chdir(tmp_path)  # its database_url is sqlite:///otp-pro.sqlite3, relative to here
    namespace: dict[str, Any] = {"__name__": "readme_snippet"}
    exec(compile(code, f"{README}:Library use", "exec"), namespace)
    assert (tmp_path / "otp-pro.sqlite3").is_file()
    yield type("Readme", (), namespace)
    namespace["otp"].close()


def test_an_email_member_enrols_and_signs_in_as_the_readme_says(readme: Any, mailbox: Mailbox, clock: Clock) -> None:
    otp, ann = readme.otp, readme.ann
    assert readme.status.requirement == "optional" and not readme.status.enrolled

    readme.start_setup(ann, "email:code")
    sent = mailed_code(mailbox, ann.email)
    wrong = "000000" if sent != "000000" else "111111"
    assert readme.finish_setup(ann, wrong) is None  # InvalidCode, caught by the snippet
    with pytest.raises(InvalidCode) as raised:
        otp.complete_setup(ann, wrong)
    assert raised.value.result.ok is False and raised.value.result.attempts_remaining is not None
    backup_codes = readme.finish_setup(ann, sent)
    assert len(backup_codes) == 10 and otp.status(ann).channel == "email:code"

    clock.advance(hours=1)  # a later sign-in, past the cooldown after the setup code
    challenge = readme.second_step_sent(ann)
    assert challenge.channel == "email:code"
    code = mailed_code(mailbox, ann.email)
    # A wrong code is a result, not an exception.
    refused = otp.verify(ann, "000000" if code != "000000" else "111111", ip="192.0.2.1", user_agent="test")
    assert refused.ok is False and refused.reason == "invalid"
    token = readme.second_step(ann, code, "192.0.2.1", "Firefox on Linux")
    assert isinstance(token, str) and otp.is_trusted(ann, token)
    assert readme.second_step(ann, code, "192.0.2.1", "Firefox on Linux") is None  # used once only

    fresh = readme.member_settings(ann)
    assert len(fresh) == 10 and not set(fresh) & set(backup_codes)
    readme.support_reset(ann, "op-7")
    assert not otp.status(ann).enrolled
    actors: dict[str, str | None] = {}
    for event in otp.events(ann):  # newest first: the newest of each kind
        actors.setdefault(event.kind, event.actor)
    assert actors[audit.BACKUP_CODES_GENERATED] == ann.id  # the member acted themselves
    assert actors[audit.RESET] == "op-7"  # the operator, by id


def test_an_app_member_gets_nothing_sent_and_signs_in_with_a_code(readme: Any, mailbox: Mailbox, clock: Clock) -> None:
    otp = readme.otp
    admin = Member(id="7", roles=["admin"], email="root@example.com", name="Root")
    assert otp.status(admin).requirement == "required"
    setup = readme.start_setup(admin, TOTP)
    assert setup.provisioning_uri and setup.qr_svg
    backup_codes = readme.finish_setup(admin, pyotp.TOTP(setup.secret).at(clock()))
    assert len(backup_codes) == 10
    clock.advance(hours=1)
    mailed = len(mailbox.messages)  # the notice of the new factor

    # The snippet does not call send_challenge for an app member; the README says what it would raise.
    assert readme.second_step_sent(admin) is None
    with pytest.raises(ChannelUnavailable):
        otp.send_challenge(admin)
    assert len(mailbox.messages) == mailed  # nothing sent
    assert readme.second_step(admin, pyotp.TOTP(setup.secret).at(clock()), "192.0.2.2", "curl") is not None
    clock.advance(hours=1)
    assert readme.second_step(admin, backup_codes[0], "192.0.2.2", "curl") is not None  # a backup code too
