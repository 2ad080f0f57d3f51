"""``otp-pro new-transport NAME``: names checked, the skeleton written, taken directories refused.

That the skeleton's tests pass once it is built and installed beside the core is
shown by the nox session ``authoring`` (a wheel in a clean environment).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from otp_pro.cli import main
from otp_pro.scaffold import ScaffoldError, names_for, new_transport

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_names() -> None:
    names = names_for("fax-gateway")
    assert (names.name, names.distribution, names.module, names.class_name, names.label) == (
        "fax_gateway", "otp-pro-fax-gateway", "otp_pro_fax_gateway", "FaxGateway", "Fax Gateway")
    assert names_for("pager2").module == "otp_pro_pager2"


@pytest.mark.parametrize(("raw", "why"), [
    ("Fax", "not a usable transport name"), ("2fa", "not a usable transport name"),
    ("fax gateway", "not a usable transport name"), ("fax__x", "not a usable transport name"),
    ("fax:code", "not a usable transport name"), ("x" * 41, "not a usable transport name"),
    ("", "not a usable transport name"), ("email", "taken by otp-pro"), ("totp", "taken by otp-pro"),
    ("otp_pro_fax", "leave out the otp_pro_ prefix"),
])
def test_bad_names(raw: str, why: str) -> None:
    with pytest.raises(ScaffoldError, match=why):
        names_for(raw)


def test_skeleton_files(tmp_path: Path) -> None:
    _, target, written = new_transport("fax-gateway", tmp_path / "out")
    assert target == tmp_path / "out"
    relative = {p.relative_to(target).as_posix() for p in written}
    assert relative == {
        "pyproject.toml", "README.md", "src/otp_pro_fax_gateway/__init__.py", "src/otp_pro_fax_gateway/plugin.py",
        "src/otp_pro_fax_gateway/transport.py", "src/otp_pro_fax_gateway/py.typed", "tests/conftest.py",
        "tests/test_contract.py",
    }
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "otp-pro-fax-gateway"
    assert project["project"]["entry-points"]["otp_pro"] == {"otp_pro_fax_gateway": "otp_pro_fax_gateway.plugin"}
    for path in written:
        text = path.read_text()
        assert "__" + "NAME__" not in text and "__CLASS" + "__" not in text, f"a placeholder is left in {path}"
        if path.suffix == ".py":
            ast.parse(text, filename=str(path))
    contract = (target / "tests/test_contract.py").read_text()
    assert "class TestFaxGatewayContract(TransportContract):" in contract
    assert 'transport = "fax_gateway"' in contract


def test_default_directory_is_named_after_the_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _, target, _ = new_transport("pager")
    assert target == tmp_path / "otp-pro-pager" and (target / "pyproject.toml").is_file()


def test_an_empty_directory_is_used_and_a_non_empty_one_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    new_transport("pager", tmp_path / "empty")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="already exists and is not empty"):
        new_transport("pager", tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ScaffoldError, match="is a file"):
        new_transport("pager", tmp_path / "file")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["new-transport", "fax_gateway", "--directory", str(tmp_path / "fax")])
    out = capsys.readouterr().out
    assert "otp-pro-fax-gateway" in out and "pip install -e '.[test]' && pytest" in out
    assert (tmp_path / "fax" / "src" / "otp_pro_fax_gateway" / "transport.py").is_file()
    for argv, message in (
        (["new-transport", "fax_gateway", "--directory", str(tmp_path / "fax")], "already exists and is not empty"),
        (["new-transport", "Fax Gateway"], "is not a usable transport name"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
