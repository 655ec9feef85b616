"""`fabmeter admin load site.toml`: the fablab described in a file, loaded once, edited, loaded again."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from billing.models import AuditEntry, CatalogueItem, Category, Machine, Material, TariffVersion
from billing.site import SiteFileError, load_site
from billing.tariffs import category_by_code, current_version, price_summary
from broker.registry import read_registry

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "site.example.toml"


@pytest.fixture
def empty(engine: Engine) -> Iterator[Session]:
    with Session(engine) as db:
        yield db


def edited(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE.read_text()
    assert old in text, old
    path = tmp_path / "site.toml"
    path.write_text(text.replace(old, new, 1))
    return path


def audits(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(AuditEntry)) or 0


def test_the_example_loads_and_loading_it_twice_changes_nothing(empty: Session) -> None:
    db = empty
    first = load_site(db, EXAMPLE, actor="cli")
    db.commit()
    assert "created machines laser-1" in first and "tariff printer-1/walk-in: version 1" in first
    laser, printer = db.get(Machine, "laser-1"), db.get(Machine, "printer-1")
    assert laser is not None and printer is not None
    assert (laser.agent, db.get(Machine, "sewing-1").agent, printer.agent) == ("pi-laser", "pi-laser", "pi-printer")  # type: ignore[union-attr]
    assert printer.material is not None and printer.material.code == "pla"
    version = current_version(db, "printer-1", category_by_code(db, "walk-in").id)
    assert version is not None and price_summary(version, printer.material) == "0,25 €/15 min + 0,06 €/g PLA"
    assert (version.unit_s, version.grace_s, version.basis, version.material_applies) == (900, 300, "job", True)
    plywood = db.scalars(select(CatalogueItem).where(CatalogueItem.code == "plywood-3mm")).one()
    assert (plywood.price_cents, plywood.unit) == (450, "plaque")
    before = audits(db)
    assert load_site(db, EXAMPLE, actor="cli") == []
    db.commit()
    assert audits(db) == before
    assert db.scalar(select(func.count()).select_from(TariffVersion)) == 6


def test_an_edited_price_makes_a_new_version_and_only_that(empty: Session, tmp_path: Path) -> None:
    db = empty
    load_site(db, EXAMPLE, actor="cli")
    db.commit()
    path = edited(tmp_path, 'price = "0.50"', 'price = "0.55"')
    path.write_text(path.read_text().replace('price_per_kg = "60.00"', 'price_per_kg = "64.00"'))
    changes = load_site(db, path, actor="alice")
    db.commit()
    assert changes == ["changed materials pla: price_cents_per_kg = 6400", "tariff laser-1/walk-in: version 2"]
    versions = db.scalars(select(TariffVersion.unit_price_cents).join(TariffVersion.tariff)
                          .where(TariffVersion.version >= 1).order_by(TariffVersion.id)).all()  # fmt: skip
    assert 50 in versions and 55 in versions  # the old version stays, for the lines that used it
    who = db.scalars(select(AuditEntry.actor).where(AuditEntry.action.in_(("load_site", "set_tariff")))
                     .order_by(AuditEntry.id.desc()).limit(2)).all()  # fmt: skip
    assert who == ["alice", "alice"]


def test_the_seeded_fablab_is_updated_in_place(db: Session, tmp_path: Path) -> None:
    """A ledger filled another way (the dashboard, the seed) keeps its rows: matched by code."""
    machines = db.scalar(select(func.count()).select_from(Machine))
    categories = db.scalar(select(func.count()).select_from(Category))
    load_site(db, EXAMPLE, actor="cli")
    db.commit()
    assert db.scalar(select(func.count()).select_from(Machine)) == machines
    assert db.scalar(select(func.count()).select_from(Category)) == categories
    assert db.scalar(select(func.count()).select_from(Material)) == 2


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('price = "0.50"', "price = 0.5", r"\[\[tariffs\]\] #3: price must be an amount in euros written as text"),
        ('price = "0.50"', 'price = "0,50"', r"\[\[tariffs\]\] #3: price '0,50' is not an amount in euros"),
        ('price = "0.50"', 'price = "0.505"', r"\[\[tariffs\]\] #3: price '0.505' must be an amount in euros, not negative, at most 2 decimals"),
        ('price = "4.50"', 'price = "-4.50"', r"\[\[items\]\] #1: price '-4.50' must be an amount"),
        ('basis = "busy"', 'basis = "cutting"', r"\[\[tariffs\]\] #3: basis must be one of session, busy, job"),
        ("unit_s = 900", "unit_s = 0", r"\[\[tariffs\]\] #1: unit_s must be a whole number of at least 1"),
        ('kind = "laser"', 'kind = "laser"\nspeed = 3', r"\[\[machines\]\] #2: unknown key 'speed'"),
        ('name = "PLA"\n', "", r"\[\[materials\]\] #1: name is missing"),
        ('material = "pla"  ', 'material = "abs"  ', r"\[\[machines\]\] #1: material 'abs' is neither in the file nor in the database"),
        ('category = "member"', 'category = "students"', r"\[\[tariffs\]\] #2: category 'students' is neither"),
        ('id = "sewing-1"', 'id = "Sewing 1"', r"\[\[machines\]\] #3: id 'Sewing 1' must be 1 to 40 lowercase"),
        ("[[items]]", "[[goods]]", r"unknown table 'goods'"),
        ('machines = ["printer-1"]', 'machines = ["printer-1", "laser-1"]', r"machine 'laser-1' belongs to both"),
        ('code = "pla"', 'code = "pla', r"not valid TOML"),
    ],
)
def test_a_bad_site_file_names_the_file_the_table_and_the_key(
    empty: Session, tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = edited(tmp_path, old, new)
    with pytest.raises(SiteFileError, match=re.escape(str(path)) + ".*" + message):
        load_site(empty, path, actor="cli")


def test_the_cli_loads_once_and_a_bad_file_changes_nothing(empty: Session, tmp_path: Path, db_url: str) -> None:
    from fabmeter import main

    (tmp_path / "pepper").write_text("p")
    config = tmp_path / "server.toml"
    config.write_text(f'database_url = "{db_url}"\npepper_file = "pepper"\n'
                      '[organisation]\nname = "Fablab"\naddress = "Ici"\nsiret = "1"\n')
    runner = CliRunner()
    bad = edited(tmp_path, 'material = "pla"  ', 'material = "abs"  ')
    failed = runner.invoke(main, ["admin", "load", str(bad), "--config", str(config)])
    assert failed.exit_code == 1 and "material 'abs' is neither" in failed.output
    assert empty.scalar(select(func.count()).select_from(Material)) == 0  # all or nothing
    first = runner.invoke(main, ["admin", "load", str(EXAMPLE), "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert f"{EXAMPLE}: 17 change(s)" in first.output
    again = runner.invoke(main, ["admin", "load", str(EXAMPLE), "--config", str(config)])
    assert again.exit_code == 0 and again.output.strip() == f"{EXAMPLE}: nothing to change"


def test_the_example_is_also_a_broker_registry() -> None:
    registry = read_registry(EXAMPLE)
    assert [(a.id, a.machines) for a in registry.agents] == [("pi-printer", ("printer-1",)), ("pi-laser", ("laser-1", "sewing-1"))]
