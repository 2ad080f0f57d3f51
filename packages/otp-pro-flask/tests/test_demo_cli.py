"""``otp-pro demo`` starts the demo site on a real port and prints its URL and the demo logins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path


def test_otp_pro_demo_serves_the_site(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "otp_pro", "demo", "--port", "0", "--database", str(database)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl+C" in line:
                break
        output = "".join(lines)
        url = re.search(r"demo site: (http://127\.0\.0\.1:\d+/)", output)
        assert url, output
        assert "admin@demo.test" in output and "editor-demo" in output
        with urllib.request.urlopen(url.group(1) + "mailbox", timeout=15) as response:
            assert response.status == 200
            assert b"Dev mailbox" in response.read()
        assert database.exists()
    finally:
        process.terminate()
        process.wait(15)


def test_otp_pro_demo_reports_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "otp_pro", "demo", "--port", str(port), "--database",
                                 str(tmp_path / "d.sqlite3")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    # werkzeug's own one-line explanation (it names the port and what to do), never a traceback.
    assert f"Port {port} is in use" in result.stderr and "Traceback" not in result.stderr
