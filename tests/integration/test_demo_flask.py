"""The demo site with every companion installed, through Flask's test client.

Runs in the ``integration`` nox session, where the core and every companion
(otp-pro-sms-twilio, otp-pro-html-email, otp-pro-magic-links, otp-pro-webauthn) are installed
together; the core's own session installs the core alone and cannot show these.
The ``site`` / ``client`` fixtures and the ``webkit`` helpers are the Flask
adapter's tests' own (packages/otp-pro-flask/tests, on the path through pytest.ini).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from webkit import csrf_of, last_code, sign_in

from otp_pro.storage.schema import challenges
from otp_pro_flask.demo_site import DemoSite

COMPANIONS = {
    # plugin (entry-point name): (distribution, transports, payloads)
    "otp_pro_sms_twilio": ("otp-pro-sms-twilio", ["sms_twilio"], []),
    "otp_pro_html_email": ("otp-pro-html-email", [], []),
    "otp_pro_magic_links": ("otp-pro-magic-links", [], ["magic_link"]),
    "otp_pro_webauthn": ("otp-pro-webauthn", [], []),
}
SMS = ("sms@demo.test", "sms-demo", "+447400123456")
LINK = ("link@demo.test", "link-demo")
EDITOR = ("editor@demo.test", "editor-demo")

# The Flask adapter's demo-site fixtures (site, client), registered by module rather than imported name by
# name; test_flask's own tests are not collected here.
pytest_plugins = ("test_flask",)


def newest_consumed_at(site: DemoSite) -> Any:
    with site.otp.db.read() as conn:
        row = conn.execute(select(challenges.c.consumed_at).order_by(challenges.c.id.desc())).first()
    assert row is not None, "no challenge stored"
    return row[0]


def test_demo_instance_has_every_companion(site: DemoSite, client: Any) -> None:
    plugins = {p.name: p for p in site.otp.plugins()}
    for name, (distribution, transports, payloads) in COMPANIONS.items():
        assert name in plugins, f"{name} missing from plugins(): {sorted(plugins)}"
        info = plugins[name]
        assert (info.distribution, info.builtin, info.enabled, info.error) == (distribution, False, True, None)
        assert list(info.transports) == transports and list(info.payloads) == payloads
    # Every companion's channel is offered, in safe mode.
    assert {"email:code", "totp", "sms_twilio:code", "email:magic_link", "webauthn"} <= set(site.otp.channels)
    assert {a.email for a in site.accounts()} >= {SMS[0], LINK[0], "passkey@demo.test"}
    home = client.get("/")
    assert home.status_code == 200
    assert "Companions installed: otp_pro_html_email, otp_pro_magic_links, otp_pro_sms_twilio, otp_pro_webauthn" \
        in home.text
    for channel in ("sms_twilio:code", "email:magic_link"):
        assert f"<code>{channel}</code>" in home.text
    assert "sms@demo.test" in home.text and "link@demo.test" in home.text


def test_providers_list_on_the_demo_database(site: DemoSite, tmp_path: Path) -> None:
    """``otp-pro providers list --json`` against the demo's database names every companion."""
    config = tmp_path / "otp-pro.toml"
    config.write_text(f'secret_key = "{"d" * 48}"\ndatabase_url = "sqlite:///{site.database}"\n')
    result = subprocess.run([sys.executable, "-m", "otp_pro", "--config", str(config), "providers", "list", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = {row["plugin"]: row for row in json.loads(result.stdout)}
    for name, (distribution, transports, payloads) in COMPANIONS.items():
        row = rows[name]
        assert (row["distribution"], row["enabled"], row["error"]) == (distribution, True, None)
        assert row["transports"] == transports and row["payloads"] == payloads
    assert rows["otp_pro_webauthn"]["factor_types"] == ["webauthn"]
    table = subprocess.run([sys.executable, "-m", "otp_pro", "--config", str(config), "providers", "list"],
                           capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    for name, (distribution, _, _) in COMPANIONS.items():
        assert re.search(rf"^{name}\s+{distribution}\s+\S+\s+\[enabled\]", table.stdout, re.M), table.stdout


def test_sms_member_signs_in_with_the_code_from_the_outbox(site: DemoSite, client: Any) -> None:
    email_address, password, phone = SMS
    response = sign_in(client, email_address, password, next_url="/protected")
    assert response.status_code == 303 and response.headers["Location"] == "/otp/verify"
    message = site.outbox.last(phone)
    assert message is not None and message.channel == "sms_twilio:code"
    # Rendered and checked by the Twilio transport, delivered to the outbox (safe mode).
    assert message.headers["X-Otp-Pro-Demo-Transport"] == "sms_twilio"
    assert message.html is None  # html-email leaves short-text transports alone
    page = client.get("/otp/verify")
    assert page.status_code == 200 and phone not in page.text
    assert "by SMS (Twilio) to <strong>+44*******456</strong>" in page.text
    mailbox = client.get("/mailbox").text
    assert phone in mailbox and "sms_twilio:code" in mailbox
    code = last_code(site, phone)
    done = client.post("/otp/verify", data={"code": code, "csrf_token": csrf_of(client, "/otp/verify")})
    assert done.status_code == 303 and done.headers["Location"] == "/protected"
    assert client.get("/protected").status_code == 200


def test_email_code_html_part_matches_the_mailbox(site: DemoSite, client: Any) -> None:
    """otp-pro-html-email renders the email code; the mailbox shows its text part, the .eml carries both."""
    sign_in(client, *EDITOR)
    message = site.outbox.last(EDITOR[0])
    assert message is not None and message.channel == "email:code"
    code = last_code(site, EDITOR[0])
    assert message.html is not None and message.html.lstrip().lower().startswith("<!doctype html>")
    assert code in message.html and code in message.text
    mailbox = client.get("/mailbox").text
    # The dev mailbox shows the plain-text part (escaped); the HTML part is one link away.
    first = re.search(r'<pre class="mail">(.*?)</pre>', mailbox, re.S)
    assert first is not None
    assert code in first.group(1) and "<!DOCTYPE" not in mailbox
    # The .eml written beside the database has both parts, each with the same code.
    newest = max(Path(site.mail_dir).glob("*.eml"), key=lambda p: p.name)
    parsed = email.message_from_bytes(newest.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == EDITOR[0]
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    assert code in text_part.get_content() and code in html_part.get_content()
    assert html_part.get_content().strip() == message.html.strip()
    # The mailbox links the HTML version, served as a mail client would show it: no script, nothing fetched.
    href = re.search(r'<a class="mail-html" href="([^"]+)"', mailbox)
    assert href is not None
    shown = client.get(href.group(1))
    assert shown.status_code == 200 and shown.mimetype == "text/html"
    assert shown.text == message.html
    csp = shown.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert client.get("/mailbox/99999.html").status_code == 404


def test_magic_link_landing(site: DemoSite, client: Any) -> None:
    """Moved from the Flask adapter's tests/test_flask.py: needs otp-pro-magic-links beside the core."""
    assert "email:magic_link" in site.otp.channels
    sign_in(client, *LINK)
    page = client.get("/otp/verify")
    assert "sign-in link" in page.text and "l***@demo.test" in page.text
    link = re.search(r"(http://\S+/otp/magic\?token=[A-Za-z0-9_-]+)", site.outbox.last().text)  # type: ignore[union-attr]
    assert link
    path = link.group(1).split("127.0.0.1:5000", 1)[1]
    landing = client.get(path)
    assert landing.status_code == 200 and "Continue signing in" in landing.text
    landing_again = client.get(path)
    assert landing_again.status_code == 200
    assert newest_consumed_at(site) is None  # GET never consumes
    token = re.search(r'name="token" value="([^"]+)"', landing.text).group(1)  # type: ignore[union-attr]
    # Another browser (its own session, so its own binding) cannot use the link, and does not burn it.
    other = site.app.test_client()
    stolen = other.post("/otp/magic", data={"token": token, "csrf_token": csrf_of(other, path)})
    assert stolen.status_code == 403 and "browser you are signing in with" in stolen.text
    assert newest_consumed_at(site) is None
    used = client.post("/otp/magic", data={"token": token, "csrf_token": csrf_of(client, path)})
    assert used.status_code == 303 and used.headers["Location"] == "/protected"
    assert newest_consumed_at(site) is not None
    assert client.get("/protected").status_code == 200
    replay = client.post("/otp/magic", data={"token": token, "csrf_token": csrf_of(client, path)})
    assert replay.status_code == 410 and "already used" in replay.text
    assert client.get("/otp/magic?token=short").status_code == 400
