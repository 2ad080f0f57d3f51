"""Template overrides, start-up checks with file and line, subjects, and the once-per-instance inlining cache."""

from __future__ import annotations

import pytest

from otp_pro import ConfigurationError, Member
from otp_pro_html_email import inline, template_names
from otp_pro_html_email.renderer import DEFAULTS_DIR, KINDS

ANN = Member(id="1", email="ann@example.com", name="Ann")

CUSTOM_HTML = """<!DOCTYPE html>
<html><head><style>.shout { color: #c00; font-weight: bold; }</style></head>
<body>
<p class="shout">{{ site_name }} code: {{ payload }}</p>
{% if payload_kind == "magic_link" %}<p>link</p>{% endif %}
</body></html>
"""


def test_every_kind_ships_three_templates():
    for kind in KINDS:
        for name in template_names(kind).values():
            assert (DEFAULTS_DIR / name).is_file(), name


def test_override_files_replace_the_defaults_by_name(make_otp, mailbox, tmp_path):
    (tmp_path / "code.html").write_text(CUSTOM_HTML)
    (tmp_path / "code.subject.txt").write_text("{{ site_name }} sign-in code\n")
    otp = make_otp(html_email={"template_dir": str(tmp_path)})
    otp.begin_setup(ANN, "email:code")
    [mail] = mailbox.to("ann@example.com")
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == "Example sign-in code"
    assert '<p class="shout" style="color:#c00; font-weight:bold">Example code: ' in html
    assert "<style" not in html and "link" not in html
    assert "Hello Ann" in text  # code.txt was not overridden: the shipped one is used


def test_an_override_may_extend_the_shipped_layout(make_otp, tmp_path):
    (tmp_path / "code.html").write_text(
        '{% extends "layout.html" %}\n{% block content %}\n<p class="code">{{ payload }}</p>\n'
        '<p class="text">Ask <a href="mailto:{{ support_email }}?subject=Help">us</a>.</p>\n{% endblock %}\n'
    )
    otp = make_otp(html_email={"template_dir": str(tmp_path)})
    message = otp.render_message(otp.transports["email"], ANN, "email:code", "challenge",
                                 {"payload": "123456", "payload_kind": "code", "recipient": "ann@example.com"})
    assert '<p class="code" style="margin:8px 0 24px 0;' in message.html
    assert 'href="mailto:help@example.com?subject=Help"' in message.html


def test_a_syntax_error_in_an_override_fails_start_up_with_file_and_line(make_otp, tmp_path):
    bad = tmp_path / "magic_link.html"
    bad.write_text("<html><body>\n<p>{{ site_name }}</p>\n<p>{{ payload | }}</p>\n</body></html>\n")
    with pytest.raises(ConfigurationError) as info:
        make_otp(html_email={"template_dir": str(tmp_path)})
    assert info.value.key == "providers.html_email.template_dir"
    [problem] = info.value.problems
    assert problem.startswith(f"providers.html_email.template_dir: {bad} line 3: ")
    assert "expected token 'name'" in problem


@pytest.mark.parametrize(("name", "source", "line"), [
    ("code.txt", "Hello {{ member_name }},\n\nYour code is {{ payload }} ({{ shoe_size }})\n", 3),
    ("notification.html", '{% extends "layout.html" %}\n{% block content %}\n<p>{{ notice }}</p>\n'
                          "<p>{{ no_such_variable }}</p>\n{% endblock %}\n", 4),
    ("test.subject.txt", "{{ site_nme }} test\n", 1),
])
def test_an_undefined_variable_fails_start_up_with_file_and_line(make_otp, tmp_path, name, source, line):
    (tmp_path / name).write_text(source)
    with pytest.raises(ConfigurationError) as info:
        make_otp(html_email={"template_dir": str(tmp_path)})
    [problem] = info.value.problems
    assert problem.startswith(f"providers.html_email.template_dir: {tmp_path / name} line {line}: UndefinedError")


def test_several_broken_templates_are_reported_together(make_otp, tmp_path):
    (tmp_path / "code.txt").write_text("{{ nope }}\n")
    (tmp_path / "test.txt").write_text("{% for %}\n")
    with pytest.raises(ConfigurationError) as info:
        make_otp(html_email={"template_dir": str(tmp_path)})
    assert [p.split(": ")[1].split(" line ")[0] for p in info.value.problems] == [
        str(tmp_path / "code.txt"), str(tmp_path / "test.txt")]


def test_a_relative_template_dir_is_read_from_the_settings_file_folder(tmp_path, monkeypatch):
    from html_email_support import SECRET_KEY

    from otp_pro import OtpPro

    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "test.subject.txt").write_text("Filed test\n")
    config = tmp_path / "otp-pro.toml"
    config.write_text(f'secret_key = "{SECRET_KEY}"\n[providers.html_email]\ntemplate_dir = "tpl"\n')
    monkeypatch.chdir("/")
    with OtpPro.from_file(str(config)) as otp:
        assert otp.provider_test("email", "ops@example.com").subject == "Filed test"


def test_strict_off_renders_undefined_variables_as_empty(make_otp, tmp_path):
    (tmp_path / "code.txt").write_text("Code {{ payload }}{{ shoe_size }}.\n")
    otp = make_otp(html_email={"template_dir": str(tmp_path), "strict": False})
    message = otp.render_message(otp.transports["email"], ANN, "email:code", "challenge",
                                 {"payload": "123456", "payload_kind": "code", "recipient": "ann@example.com"})
    assert message.text == "Code 123456.\n"


def test_a_missing_template_dir_fails_start_up(make_otp, tmp_path):
    with pytest.raises(ConfigurationError, match=r"providers\.html_email\.template_dir: .* is not a folder"):
        make_otp(html_email={"template_dir": str(tmp_path / "nowhere")})


def test_subjects_are_one_line(make_otp, tmp_path):
    (tmp_path / "code.subject.txt").write_text("{{ site_name }}\n  code\n{{ member_name }}\n")
    otp = make_otp(html_email={"template_dir": str(tmp_path)})
    odd = Member(id="2", email="o@example.com", name="Mal\r\nBcc: x@evil.test")
    message = otp.render_message(otp.transports["email"], odd, "email:code", "challenge",
                                 {"payload": "123456", "payload_kind": "code", "recipient": "o@example.com"})
    assert message.subject == "Example code Mal Bcc: x@evil.test"


def test_premailer_runs_once_per_template_per_instance_not_per_message(make_otp, mailbox, monkeypatch):
    calls: list[str] = []
    real = inline.transform

    def counting(html, **kwargs):
        calls.append(html)
        return real(html, **kwargs)

    monkeypatch.setattr(inline, "transform", counting)
    first = make_otp()
    html_files = 1 + len(KINDS)  # the layout and one file per kind
    assert len(calls) == html_files
    for n in range(3):
        first.begin_setup(Member(id=str(n), email=f"m{n}@example.com"), "email:code")
    first.provider_test("email", "ops@example.com", dry_run=False)
    assert len(mailbox.messages) == 4
    assert len(calls) == html_files  # sends only render variables
    # A second instance has its own settings, so its own compiled templates.
    second = make_otp(html_email={"brand_colour": "#00aa00"})
    assert len(calls) == 2 * html_files
    render = {"payload": "123456", "payload_kind": "code", "recipient": "ann@example.com"}
    first_html = first.render_message(first.transports["email"], ANN, "email:code", "challenge", render).html
    second_html = second.render_message(second.transports["email"], ANN, "email:code", "challenge", render).html
    assert "#1a56db" in first_html and "#00aa00" not in first_html and "#00aa00" in second_html
    assert len(calls) == 2 * html_files


def test_placeholders_keep_jinja_intact_through_premailer():
    source = """<!DOCTYPE html>
<html><head><title>{{ title }}</title><style>
.row { color: {{ colour }}; } a { color: #00f; }
</style></head><body>
<table>
<tr><td class="row">a</td></tr>
{% if rows and rows|length > 2 %}
<tr><td class="row">{{ rows[0] }}</td></tr>
{% endif %}{# a comment with <markup> #}
</table>
<a href="{{ base }}/path?a=1&b={{ b|urlencode }}" {% if new %}target="_blank"{% endif %}>{{ "<x>" }}</a>
</body></html>"""
    out = inline.inline_document(source)
    assert '<td class="row" style="color:{{ colour }}">{{ rows[0] }}</td>' in out
    assert "{% if rows and rows|length > 2 %}" in out and "{% endif %}{# a comment with <markup> #}" in out
    assert '<a href="{{ base }}/path?a=1&amp;b={{ b|urlencode }}"' in out
    assert '{% if new %}' in out and 'style="color:#00f"' in out and '{{ "<x>" }}</a>' in out
    assert "<title>{{ title }}</title>" in out and "otpj" not in out
