"""``fabmeter admin create-user``, the app factory's start-up errors, and the French catalogue."""

from __future__ import annotations

import ast
import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from click.testing import CliRunner
from sqlalchemy.orm import Session

from billing.database import make_engine
from billing.models import StaffUser
from dashboard import create_app
from dashboard.errors import SetupError
from dashboard.staff import authenticate
from fabmeter import main
from tests.dashboard.conftest import write_config

TRANSLATIONS = Path(__file__).parents[2] / "dashboard" / "translations" / "fr" / "LC_MESSAGES"


def test_create_user_makes_the_first_admin_in_a_fresh_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "fresh.db")
    (tmp_path / "pw").write_text("first admin password\n")
    result = CliRunner().invoke(main, ["admin", "create-user", "--config", str(config), "--username", "Alice",
                                       "--role", "admin", "--password-file", str(tmp_path / "pw")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "created admin 'alice'" in result.output
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with Session(engine) as db:
        assert db.query(StaffUser).one().role == "admin"
        assert authenticate(db, "alice", "first admin password") is not None
    again = CliRunner().invoke(main, ["admin", "create-user", "--config", str(config), "--username", "alice",
                                      "--password-file", str(tmp_path / "pw")])  # fmt: skip
    assert again.exit_code == 1 and "taken" in again.output
    engine.dispose()


def test_create_user_prompts_for_the_password(tmp_path: Path) -> None:
    config = write_config(tmp_path, tmp_path / "fresh.db")
    result = CliRunner().invoke(main, ["admin", "create-user", "--config", str(config), "--username", "bob"],
                                input="typed password 1\ntyped password 1\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    short = CliRunner().invoke(main, ["admin", "create-user", "--config", str(config), "--username", "carl"],
                               input="short\nshort\n")  # fmt: skip
    assert short.exit_code == 1 and "at least 10 characters" in short.output


def test_the_factory_reads_fabmeter_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FABMETER_CONFIG", raising=False)
    with pytest.raises(SetupError, match="FABMETER_CONFIG"):
        create_app()
    config = write_config(tmp_path, tmp_path / "x.db")
    monkeypatch.setenv("FABMETER_CONFIG", str(config))
    app = create_app()
    assert app.config["FABMETER"].organisation.name == "Fablab du Val"
    assert app.test_client().get("/desk/").status_code == 302
    (tmp_path / "secrets" / "secret_key").unlink()
    with pytest.raises(SetupError, match="secret_key"):
        create_app()


def test_dashboard_command_is_registered() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


def test_every_message_has_a_french_translation() -> None:
    root = Path(__file__).parents[2]
    methods = [("dashboard/**.py", "python"), ("dashboard/templates/**.html", "jinja2"), ("billing/**.py", "python")]
    # a billing refusal's template is a msgid too: the desk shows it translated (dashboard.labels.error)
    keywords = {"_": None, "_l": None, "gettext": None, **dict.fromkeys(_billing_errors(root))}
    found = {
        message[2] if isinstance(message[2], str) else message[2][0]
        for message in extract_from_dir(str(root), methods, keywords=keywords)
    }
    with open(TRANSLATIONS / "messages.po", "rb") as po:
        catalog = read_po(po)
    assert len(found) > 100
    untranslated = sorted(m for m in found if not getattr(catalog.get(m), "string", None))
    assert untranslated == [], "add these to dashboard/translations/fr/LC_MESSAGES/messages.po"


def test_the_compiled_catalogue_matches_the_po_file() -> None:
    with open(TRANSLATIONS / "messages.po", "rb") as po:
        catalog = read_po(po)
    with open(TRANSLATIONS / "messages.mo", "rb") as mo:
        compiled = read_mo(mo)
    assert {m.id: m.string for m in catalog if m.id} == {m.id: m.string for m in compiled if m.id}, (
        "run: pybabel compile -d dashboard/translations"
    )
    write_mo(io.BytesIO(), catalog)  # the .po file itself compiles


def _billing_errors(root: Path) -> set[str]:
    """The names of BillingError and of every class of billing/ that derives from it, however deep."""
    classes = [
        (node.name, {base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases})
        for path in sorted((root / "billing").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ClassDef)
    ]
    names = {"BillingError"}
    while grown := {name for name, bases in classes if bases & names} - names:
        names |= grown
    return names


def _built_templates(source: str, filename: str, errors: set[str]) -> list[str]:
    """file:line of each call of a billing error whose template is built (f-string, ``%``, ``+``,
    ``.format``) instead of written: such a message is no msgid, so the desk would show it in English."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        template = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "template"), None)
        if name not in errors or template is None:
            continue
        formatted = isinstance(template, ast.Call) and getattr(template.func, "attr", None) == "format"
        if isinstance(template, ast.JoinedStr | ast.BinOp) or formatted:
            found.append(f"{filename}:{node.lineno}: {name}({ast.unparse(template)[:60]}…)")
    return found


def test_no_billing_error_builds_its_message() -> None:
    root = Path(__file__).parents[2]
    errors = _billing_errors(root)
    assert {"InvalidOperation", "NotFound", "NotYours", "DatabaseError"} <= errors
    built = [
        site
        for path in sorted((root / "billing").rglob("*.py"))
        for site in _built_templates(path.read_text(), str(path.relative_to(root)), errors)
    ]
    assert built == [], "write the template with %(name)s and pass name=value:\n" + "\n".join(built)


def test_the_check_finds_every_way_of_building_a_message() -> None:
    source = """
raise NotFound(f"no visit {visit_id}")
raise errors.InvalidOperation("visit %s is closed" % visit_id)
raise InvalidOperation("visit {} is closed".format(visit_id))
raise InvalidOperation("visit " + str(visit_id) + " is closed")
raise Refused(template=f"no {what}")
raise InvalidOperation("visit %(visit)s is closed", visit=visit_id)
raise InvalidOperation(
    "a message in two literals "
    "is one msgid"
)
raise ValueError(f"not a billing error {x}")
"""
    found = _built_templates(source, "sample.py", {"NotFound", "InvalidOperation", "Refused"})
    assert [site.split(":")[1] for site in found] == ["2", "3", "4", "5", "6"]
