"""The built-in email transport against a real SMTP server on 127.0.0.1 (aiosmtpd)."""

from __future__ import annotations

import re

import pytest
from core_support import base_settings

from otp_pro import ChannelUnavailable, Member, OtpPro, PermanentDeliveryError, TransientDeliveryError
from otp_pro.storage.schema import challenges
from otp_pro.testing import free_port


def _code(message) -> str:
    body = message.get_body(("plain",)).get_content()
    return re.search(r"\b(\d{6})\b", body).group(1)


def test_code_by_email_end_to_end(make_otp, mailbox, clock):
    otp = make_otp(site_name="Acme", support_email="help@acme.test", channels=["email:code"],
                   default_channel="email:code")
    ann = Member(id="1", email="ann@example.com", name="Ann")
    otp.begin_setup(ann, "email:code")
    [setup_mail] = mailbox.to("ann@example.com")
    assert setup_mail["Subject"] == "Acme: your verification code"
    assert setup_mail["From"] == "Acme <otp@example.com>"
    assert setup_mail["Auto-Submitted"] == "auto-generated"
    assert setup_mail["Message-ID"] and setup_mail["Date"]
    body = setup_mail.get_body(("plain",)).get_content()
    assert "Hello Ann" in body and "expires in 10 minutes" in body and "help@acme.test" in body
    otp.complete_setup(ann, _code(setup_mail))
    clock.advance(31)
    challenge = otp.send_challenge(ann)
    mail = mailbox.to("ann@example.com")[-1]
    assert challenge.provider_message_id == mail["Message-ID"]
    assert otp.verify(ann, _code(mail)).ok


def test_member_without_email_cannot_use_email(make_otp):
    otp = make_otp()
    nobody = Member(id="2")
    assert otp.status(nobody).unavailable["email:code"] == "no email address on file"
    with pytest.raises(ChannelUnavailable):
        otp.begin_setup(nobody, "email:code")
    broken = Member(id="3", email="not an address")
    assert otp.status(broken).unavailable["email:code"] == "the email address on file is not valid"


def test_refused_connection_is_transient_and_leaves_no_usable_code(backend, clock):
    otp = OtpPro(base_settings(backend, providers={"email": {"smtp_host": "127.0.0.1", "smtp_port": free_port(),
                                                             "smtp_timeout_seconds": 2}}), clock=clock)
    ann = Member(id="4", email="ann@example.com")
    with pytest.raises(TransientDeliveryError) as info:
        otp.begin_setup(ann, "email:code")
    assert info.value.provider_code == "connection_refused"
    with otp.db.read() as conn:
        assert [r.status for r in conn.execute(challenges.select())] == ["failed"]
    assert otp.events(ann, kinds=["delivery_failed"])[0].details["provider_code"] == "connection_refused"
    otp.close()


@pytest.mark.parametrize(("reply", "error", "code"), [
    ("451 4.3.0 try again later", TransientDeliveryError, "451"),
    ("554 5.7.1 rejected", PermanentDeliveryError, "554"),
])
def test_smtp_error_replies_are_mapped(make_otp, mailbox, reply, error, code):
    otp = make_otp()
    mailbox.reply = reply
    with pytest.raises(error) as info:
        otp.begin_setup(Member(id="5", email="e@example.com"), "email:code")
    assert info.value.provider_code == code


def test_provider_test_dry_run_and_send(make_otp, mailbox):
    otp = make_otp()
    dry = otp.provider_test("email", "ops@example.com", dry_run=True, actor="ops")
    assert dry.dry_run and dry.ok and mailbox.to("ops@example.com") == []
    assert dry.parameters["to"] == "ops@example.com" and "provider test" in dry.subject
    sent = otp.provider_test("email", "ops@example.com", dry_run=False, actor="ops")
    assert sent.ok and len(mailbox.to("ops@example.com")) == 1
    events = otp.events(kinds=["provider_test"])
    assert [e.details["dry_run"] for e in events] == [False, True] and events[0].actor == "ops"


def test_smtp_password_never_shown(tmp_path):
    otp = OtpPro(base_settings(f"sqlite:///{tmp_path}/o.sqlite3", providers={"email": {
        "smtp_username": "mailer", "smtp_password": "hunter2-secret"}}))
    assert "hunter2-secret" not in repr(otp.transports["email"])
    assert "hunter2-secret" not in str(otp.redacted_settings())
    dry = otp.provider_test("email", "ops@example.com", dry_run=True)
    assert "hunter2-secret" not in str(dry)
    otp.close()


def test_message_headers_and_parts_are_well_formed_with_non_ascii_and_an_html_alternative(make_otp, mailbox,
                                                                                         smtp_server):
    """The transport writes messages itself (no EmailMessage per send): what arrives must parse as it did."""
    from otp_pro.transports import Message

    otp = make_otp(providers={"email": {"smtp_host": "127.0.0.1", "smtp_port": smtp_server[1],
                                        "from_address": "otp@example.com", "from_name": "Café Açaí, Inc."}})
    transport = otp.transports["email"]
    long_subject = "Votre code de vérification pour Café Açaí — " + "très " * 20
    html = "<p>Bonjour Zoë, votre code : <b>123456</b></p>" + "<span>" + "x" * 1500 + "</span>\n"
    receipt = transport.send(Message(recipient="zoe@example.com", subject=long_subject,
                                     text="Bonjour Zoë,\n\n123456\n.\nfin\n", html=html,
                                     headers={"Reply-To": "help@example.com", "Auto-Submitted": "auto-replied"}))
    [mail] = mailbox.to("zoe@example.com")
    assert mail["From"] == '"Café Açaí, Inc." <otp@example.com>'
    assert mail["From"].addresses[0].display_name == "Café Açaí, Inc."
    assert mail["Subject"] == long_subject  # RFC 2047 words, folded, decode to the same text
    assert mail["Reply-To"] == "help@example.com" and mail["Auto-Submitted"] == "auto-replied"
    assert mail["Message-ID"] == receipt.provider_message_id and mail["Date"].datetime is not None
    assert mail["MIME-Version"] == "1.0" and mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    text = mail.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == "Bonjour Zoë,\n\n123456\n.\nfin\n"  # a lone dot survives SMTP quoting
    assert mail.get_body(("html",)).get_content().replace("\r\n", "\n") == html
    # Every line of the raw message fits SMTP's limit; the message is 7-bit clean (no 8BITMIME needed).
    raw = mail.as_bytes()
    assert raw.isascii() and max(len(line) for line in raw.split(b"\n")) <= 998
    # build() is what send() writes, parsed: the same shape.
    built = transport.build(Message(recipient="zoe@example.com", subject="Hi", text="Hello\n"))
    assert built["Subject"] == "Hi" and built.get_content_type() == "text/plain"
    assert built.get_content().replace("\r\n", "\n") == "Hello\n"


def test_a_header_value_with_a_line_break_is_refused(make_otp):
    from otp_pro.transports import Message

    transport = make_otp().transports["email"]
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        transport.send(Message(recipient="zoe@example.com", subject="Hi\r\nBcc: evil@example.com", text="x"))
