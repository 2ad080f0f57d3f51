"""Preview: render with sample data without sending, from Python and from the command line."""

from __future__ import annotations

import email
import email.policy

import pytest
from click.testing import CliRunner
from html_email_support import SECRET_KEY

from otp_pro import ConfigurationError
from otp_pro_html_email import preview
from otp_pro_html_email.__main__ import main
from otp_pro_html_email.samples import SAMPLE_CODE, SAMPLE_LINK


def test_preview_of_a_running_instance_sends_nothing(make_otp, mailbox):
    otp = make_otp()
    html = preview(otp, "code")
    assert SAMPLE_CODE in html and "Hello Ann Example" in html and 'style="' in html
    assert preview(otp, "magic_link", format="subject") == "Example: your sign-in link"
    assert SAMPLE_LINK in preview(otp, "magic_link", format="text")
    assert preview(otp, "code", variables={"member_name": "Bob"}, format="text").startswith("Hello Bob,")
    assert mailbox.messages == []


def test_preview_eml_is_the_message_the_email_transport_would_send(make_otp):
    mail = email.message_from_string(preview(make_otp(), "notification", format="eml"), policy=email.policy.default)
    assert mail["Subject"] == "Example: security change on your account"
    assert mail["From"] == "Example <otp@example.com>" and mail["Auto-Submitted"] == "auto-generated"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]


def test_preview_from_settings_needs_no_database(tmp_path):
    settings = {"secret_key": SECRET_KEY, "database_url": f"sqlite:///{tmp_path}/never.sqlite3", "site_name": "Acme"}
    assert preview(settings, "test", format="subject") == "Acme: provider test"
    assert not (tmp_path / "never.sqlite3").exists()


def test_preview_refuses_unknown_kinds_and_formats(make_otp):
    otp = make_otp()
    with pytest.raises(ValueError, match="kind must be one of"):
        preview(otp, "sms")
    with pytest.raises(ValueError, match="format must be one of"):
        preview(otp, "code", format="pdf")


def test_preview_when_the_plugin_is_switched_off(tmp_path):
    settings = {"secret_key": SECRET_KEY, "database_url": "sqlite://", "disable_plugins": ["otp_pro_html_email"]}
    with pytest.raises(ConfigurationError, match="not active"):
        preview(settings, "code")


def test_command_line_preview_to_a_file_and_to_stdout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OTP_PRO_CONFIG", raising=False)
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "code.subject.txt").write_text("Your {{ site_name }} code is {{ payload }}\n")
    runner = CliRunner()
    result = runner.invoke(main, ["preview", "code", "--template-dir", str(overrides), "--format", "subject"])
    assert result.exit_code == 0, result.output
    assert result.output == f"Your otp-pro code is {SAMPLE_CODE}\n"
    out = tmp_path / "code.html"
    result = runner.invoke(main, ["preview", "magic_link", "--out", str(out), "-v", "member_name=Zoë"])
    assert result.exit_code == 0, result.output
    assert "Hello Zoë" in out.read_text(encoding="utf-8")
    config = tmp_path / "otp-pro.toml"
    config.write_text(f'secret_key = "{SECRET_KEY}"\nsite_name = "Filed"\n')
    result = runner.invoke(main, ["preview", "code", "-f", "subject"])
    assert result.output == "Filed: your verification code\n"


def test_command_line_reports_template_errors(tmp_path):
    (tmp_path / "code.txt").write_text("{{ nope }}\n")
    result = CliRunner().invoke(main, ["preview", "code", "--template-dir", str(tmp_path)])
    assert result.exit_code == 1 and f"{tmp_path / 'code.txt'} line 1" in result.output
