"""``otp-pro html-email preview``: the companion's command added to the core's CLI through otp_pro_cli_commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from html_email_support import SECRET_KEY

from otp_pro_html_email.samples import SAMPLE_CODE

SCRIPT = Path(sys.executable).with_name("otp-pro")  # the core's console script, installed beside this package


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("OTP_PRO_CONFIG", "OTP_PRO_DISABLE_PLUGINS")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**base, **env}, timeout=120,
                          stdin=subprocess.DEVNULL)


def settings_file(folder: Path) -> Path:
    path = folder / "acme.toml"
    path.write_text(f'secret_key = "{SECRET_KEY}"\ndatabase_url = "sqlite:///never.sqlite3"\nsite_name = "Acme"\n')
    return path


def test_preview_through_the_otp_pro_command(tmp_path):
    config = settings_file(tmp_path)
    helped = run([str(SCRIPT), "--help"], tmp_path)
    assert helped.returncode == 0 and "html-email" in helped.stdout and "warning" not in helped.stderr
    subject = run([str(SCRIPT), "--config", str(config), "html-email", "preview", "code", "--format", "subject"],
                  tmp_path)
    assert subject.returncode == 0, subject.stderr
    assert subject.stdout == "Acme: your verification code\n"  # the core's --config reached the command
    html = run([str(SCRIPT), "--config", str(config), "html-email", "preview", "code"], tmp_path)
    assert html.returncode == 0 and SAMPLE_CODE in html.stdout and 'style="' in html.stdout
    # The core's own preview goes through the same rendering hook, so it shows this plugin's HTML too.
    core = run([str(SCRIPT), "--config", str(config), "templates", "preview", "code", "--format", "html"], tmp_path)
    assert core.returncode == 0 and SAMPLE_CODE in core.stdout and 'style="' in core.stdout
    # python -m keeps working.
    module = run([sys.executable, "-m", "otp_pro_html_email", "preview", "test", "--format", "subject",
                  "--config", str(config)], tmp_path)
    assert module.returncode == 0 and module.stdout == "Acme: provider test\n"
    assert not (tmp_path / "never.sqlite3").exists()


def test_switched_off_plugin_has_no_command(tmp_path):
    settings_file(tmp_path)
    off = run([str(SCRIPT), "html-email", "preview", "code"], tmp_path, OTP_PRO_DISABLE_PLUGINS="otp_pro_html_email")
    assert off.returncode == 2 and "Traceback" not in off.stderr
    assert off.stderr.strip().splitlines() == [
        "otp-pro: No such command 'html-email'. (see 'otp-pro --help')"]
