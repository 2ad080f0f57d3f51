"""docs/web-flask.md, checked against the adapter: its login snippet runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[3] / "docs"
SECRET_KEY = "test-secret-key-" + "x" * 32


def _flask_login_snippet() -> str:
    text = (DOCS / "web-flask.md").read_text()
    section = text[text.index("\n## Signing in\n"):]
    [block] = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "def login(" in b][:1]
    return block


def test_the_flask_login_snippet_keeps_next(tmp_path, monkeypatch):
    """docs/web-flask.md's login, run as written on a real Flask app: ``?next=`` survives the form's POST."""
    from otp_pro import Member

    monkeypatch.chdir(tmp_path)
    (tmp_path / "otp-pro.toml").write_text(
        f'secret_key = "{SECRET_KEY}"\ndatabase_url = "sqlite:///{tmp_path / "otp.sqlite3"}"\n'
        'channels = ["outbox:code"]\ndefault_channel = "outbox:code"\n')

    class User:
        """The site's users, as the snippet expects them: one, Ann, with the password "pw"."""

        def __init__(self, id: str) -> None:
            self.id = id

        @staticmethod
        def get(user_id: str) -> User:
            return User(user_id)

        @staticmethod
        def authenticate(email: str, password: str) -> User | None:
            return User("42") if (email, password) == ("ann@example.com", "pw") else None

        def check_password(self, password: str) -> bool:
            return password == "pw"

    namespace: dict[str, object] = {"__name__": "docs_snippet", "User": User,
                                    "member_for": lambda user: Member(user.id, email="ann@example.com")}
    exec(compile(_flask_login_snippet(), "docs/web-flask.md", "exec"), namespace)  # the doc's own code, as written
    app, otp = namespace["app"], namespace["otp"]
    try:
        app.secret_key = "test"  # type: ignore[attr-defined]
        client = app.test_client()  # type: ignore[attr-defined]
        page = client.get("/login?next=%2Fadmin%3Ftab%3D2")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        # As a browser does: post the form's hidden fields (CSRF token, next) to its action, no query string.
        action = re.search(r'<form method="post" action="([^"]*)"', html).group(1)  # type: ignore[union-attr]
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))
        assert action == "/login" and hidden["next"] == "/admin?tab=2"
        posted = client.post(action, data={**hidden, "email": "ann@example.com", "password": "pw"})
        assert posted.status_code == 302 and posted.headers["Location"] == "/admin?tab=2"
    finally:
        otp.close()  # type: ignore[attr-defined]
