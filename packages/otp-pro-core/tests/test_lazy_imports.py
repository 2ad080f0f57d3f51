"""``import otp_pro`` loads nothing but the facade; each public name loads its own module when first used.

Run in fresh interpreters: the test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import otp_pro


def _fresh(code: str) -> Any:
    """What ``code`` printed last, as JSON, run in a new interpreter."""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_otp_pro_loads_no_submodule_and_no_dependency() -> None:
    loaded = _fresh("import json, sys, otp_pro\n"
                    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
                    "('otp_pro', 'sqlalchemy', 'pluggy', 'typing', 'click', 'jinja2', 'cryptography'))))")
    assert loaded == ["otp_pro"]


def test_a_name_loads_its_module_and_no_storage() -> None:
    """A plugin module's imports (``hookimpl``, ``Transport``, ``Member``) do not bring SQLAlchemy."""
    loaded = _fresh("import json, sys\nfrom otp_pro import Member, Transport, hookimpl, ConfigurationError\n"
                    "print(json.dumps({'member': 'otp_pro.member' in sys.modules, "
                    "'sqlalchemy': 'sqlalchemy' in sys.modules, 'core': 'otp_pro.core' in sys.modules}))")
    assert loaded == {"member": True, "sqlalchemy": False, "core": False}


def test_every_public_name_resolves_to_its_module_object() -> None:
    import otp_pro.core
    import otp_pro.errors
    import otp_pro.results

    for name in otp_pro.__all__:
        assert getattr(otp_pro, name) is not None, name
    assert otp_pro.OtpPro is otp_pro.core.OtpPro
    assert otp_pro.Reason is otp_pro.results.Reason
    assert otp_pro.LockedOut is otp_pro.errors.LockedOut
    star = _fresh("import json\nfrom otp_pro import *\nprint(json.dumps([OtpPro.__name__, Member.__name__, "
                  "hookimpl.__class__.__name__, str(type(__version__).__name__)]))")
    assert star == ["OtpPro", "Member", "HookimplMarker", "str"]


def test_dir_lists_the_public_names_before_their_first_use() -> None:
    listed = _fresh("import json, otp_pro\nprint(json.dumps(dir(otp_pro)))")
    assert {"OtpPro", "Member", "hookimpl", "Standing", "__version__"} <= set(listed)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        otp_pro.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("otp_pro.NoSuchThing resolved")
