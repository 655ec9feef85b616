"""A fablab's machines, materials, categories, catalogue and tariffs, loaded from a TOML file.

    changes = load_site(db, Path("site.toml"), actor="cli")   # ['created machine laser-1', ...]
    load_site(db, Path("site.toml"), actor="cli")             # [] : loading twice changes nothing

The same file may hold the ``[[agents]]`` of the broker registry: a machine listed there belongs
to that agent. Rows are matched by code (machines by id, tariffs by machine and category); what
differs is updated and audited, a tariff that differs gets a new version. Nothing is deleted:
retiring a machine or a tariff is done in the dashboard. Amounts are text in euros ("0.25"),
never TOML floats. The caller commits; any error names the file, the table and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from decimal import InvalidOperation as DecimalError
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing.audit import audit
from billing.errors import BillingError
from billing.models import MACHINE_KINDS, TIME_BASES, CatalogueItem, Category, Machine, Material
from billing.tariffs import category_by_code, current_version, set_tariff
from broker import topics
from broker.errors import RegistryError
from broker.registry import CATALOGUE_TABLES, REGISTRY_TABLES, read_registry

TABLES = CATALOGUE_TABLES
REQUIRED = object()


class SiteFileError(BillingError, ValueError):
    """A site file that cannot be loaded; the message names the file, the table and the key."""


def _text(limit: int) -> Callable[[Any], Any]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise ValueError(f"must be text of 1 to {limit} characters, not {value!r}")
        return value.strip()

    return parse


def _code(value: Any) -> str:
    if not topics.is_id(value) or len(value) > 40:
        raise ValueError(f"{value!r} must be 1 to 40 lowercase letters, digits and hyphens")
    return str(value)


def _fixed(places: int, what: str) -> Callable[[Any], int]:
    """A decimal written as text ("0.25") or an integer, as an integer of 10^-places units."""

    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"must be {what} written as text, like \"0.25\", not {value!r}")
        try:
            number = Decimal(str(value).strip())
        except DecimalError:
            raise ValueError(f"{value!r} is not {what} like \"0.25\"") from None
        scaled = number.scaleb(places)
        if not number.is_finite() or number < 0 or scaled != scaled.to_integral_value():
            raise ValueError(f"{value!r} must be {what}, not negative, at most {places} decimals")
        return int(scaled)

    return parse


def _count(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be a whole number of at least {minimum}, not {value!r}")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, not {value!r}")
        return str(value)

    return parse


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


@dataclass(frozen=True)
class Field:
    key: str  # in the file
    column: str  # on the row (or set_tariff's argument)
    parse: Callable[[Any], Any]
    default: Any = REQUIRED


CENTS, MILLI = _fixed(2, "an amount in euros"), _fixed(3, "a number")
FIELDS: dict[str, tuple[Field, ...]] = {
    "materials": (Field("code", "code", _code), Field("name", "name", _text(120)),
                  Field("diameter_mm", "diameter_um", MILLI, 1750),
                  Field("density_g_cm3", "density_mg_cm3", MILLI, 1240),
                  Field("price_per_kg", "price_cents_per_kg", CENTS)),
    "categories": (Field("code", "code", _code), Field("name", "name", _text(120))),
    "items": (Field("code", "code", _code), Field("name", "name", _text(120)),
              Field("unit", "unit", _text(20), "pièce"), Field("price", "price_cents", CENTS)),
    "machines": (Field("id", "id", _code), Field("name", "name", _text(120)),
                 Field("kind", "kind", _choice(MACHINE_KINDS), "other"),
                 Field("material", "material", _code, None)),
    "tariffs": (Field("machine", "machine", _code), Field("category", "category", _code),
                Field("price", "unit_price_cents", CENTS), Field("unit_s", "unit_s", _count(1), 60),
                Field("minimum_units", "minimum_units", _count(0), 0),
                Field("start_fee", "start_fee_cents", CENTS, 0), Field("grace_s", "grace_s", _count(0), 0),
                Field("basis", "basis", _choice(TIME_BASES), "session"),
                Field("material", "material_applies", _flag, False)),
}  # fmt: skip
MODELS: dict[str, Any] = {"materials": Material, "categories": Category, "items": CatalogueItem}


@dataclass(frozen=True)
class Site:
    """A site file, checked and converted: table -> rows of column values, and machine -> agent."""

    rows: dict[str, list[dict[str, Any]]]
    agent_of: dict[str, str]


def read_site(path: Path) -> Site:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SiteFileError("cannot read %(path)s: %(err)s", path=str(path), err=err.strerror) from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SiteFileError("%(path)s: not valid TOML: %(err)s", path=str(path), err=str(err)) from err
    unknown = sorted(set(data) - set(TABLES) - set(REGISTRY_TABLES))
    if unknown:
        raise SiteFileError(
            "%(path)s: unknown table %(table)r (expected %(expected)s)",
            path=str(path), table=unknown[0], expected=", ".join(TABLES + REGISTRY_TABLES),
        )
    rows = {table: [_row(path, table, i, raw) for i, raw in enumerate(_tables(path, data, table))] for table in TABLES}
    return Site(rows, _agents(path, data))


def _tables(path: Path, data: dict[str, Any], table: str) -> list[Any]:
    raw = data.get(table, [])
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        raise SiteFileError("%(path)s: %(table)s must be an array of tables, [[%(table)s]]", path=str(path), table=table)
    return raw


def _row(path: Path, table: str, index: int, raw: dict[str, Any]) -> dict[str, Any]:
    fields = FIELDS[table]
    where = f"{path}: [[{table}]] #{index + 1}"
    unknown = sorted(set(raw) - {f.key for f in fields})
    if unknown:
        raise SiteFileError(
            "%(where)s: unknown key %(key)r (expected %(expected)s)",
            where=where, key=unknown[0], expected=", ".join(f.key for f in fields),
        )
    row: dict[str, Any] = {}
    for field in fields:
        if field.key not in raw:
            if field.default is REQUIRED:
                raise SiteFileError("%(where)s: %(key)s is missing", where=where, key=field.key)
            row[field.column] = field.default
            continue
        try:
            row[field.column] = field.parse(raw[field.key])
        except ValueError as err:
            raise SiteFileError("%(where)s: %(key)s %(err)s", where=where, key=field.key, err=str(err)) from None
    row["_where"] = where
    return row


def _agents(path: Path, data: dict[str, Any]) -> dict[str, str]:
    """machine -> agent, from the registry tables when the file has them."""
    if "agents" not in data:
        return {}
    try:
        registry = read_registry(path)
    except RegistryError as err:
        raise SiteFileError(str(err)) from err
    return {machine: agent.id for agent in registry.agents for machine in agent.machines}


def load_site(db: Session, path: Path, *, actor: str) -> list[str]:
    """Create or update what the file describes; the changes made (none on a second load)."""
    site = read_site(path)
    changes: list[str] = []
    for table, model in MODELS.items():
        for row in site.rows[table]:
            changes += _upsert(db, model, "code", row, actor)
    for row in site.rows["machines"]:
        changes += _machine(db, row, site.agent_of, actor)
    for row in site.rows["tariffs"]:
        changes += _tariff(db, row, actor)
    return changes


def _upsert(db: Session, model: Any, key: str, row: dict[str, Any], actor: str) -> list[str]:
    values = {k: v for k, v in row.items() if not k.startswith("_")}
    subject = f"{model.__tablename__} {values[key]}"
    found = db.scalars(select(model).where(getattr(model, key) == values[key])).first()
    if found is None:
        db.add(model(**values))
        db.flush()
        audit(db, actor, "load_site", subject, f"created from {row['_where'].split(': ')[0]}")
        return [f"created {subject}"]
    changed = {k: v for k, v in values.items() if getattr(found, k) != v}
    if not changed:
        return []
    for column, value in changed.items():
        setattr(found, column, value)
    detail = ", ".join(f"{k} = {v}" for k, v in sorted(changed.items()))
    audit(db, actor, "load_site", subject, detail)
    return [f"changed {subject}: {detail}"]


def _machine(db: Session, row: dict[str, Any], agent_of: dict[str, str], actor: str) -> list[str]:
    values = {k: v for k, v in row.items() if k != "material"}
    code = row["material"]
    material = db.scalars(select(Material).where(Material.code == code)).first() if code else None
    if code and material is None:
        raise SiteFileError(
            "%(where)s: material %(code)r is neither in the file nor in the database", where=row["_where"], code=code
        )
    values["material_id"] = material.id if material else None
    if row["id"] in agent_of:
        values["agent"] = agent_of[row["id"]]
    return _upsert(db, Machine, "id", values, actor)


def _tariff(db: Session, row: dict[str, Any], actor: str) -> list[str]:
    where, machine, code = row["_where"], row["machine"], row["category"]
    if db.get(Machine, machine) is None:
        raise SiteFileError(
            "%(where)s: machine %(machine)r is neither in the file nor in the database", where=where, machine=machine
        )
    try:
        category = category_by_code(db, code)
    except BillingError:
        raise SiteFileError(
            "%(where)s: category %(code)r is neither in the file nor in the database", where=where, code=code
        ) from None
    prices = {k: v for k, v in row.items() if k not in ("_where", "machine", "category")}
    current = current_version(db, machine, category.id)
    if current is not None and all(getattr(current, k) == v for k, v in prices.items()):
        return []
    try:
        version = set_tariff(db, machine, code, actor=actor, **prices)
    except BillingError as err:
        raise SiteFileError("%(where)s: %(err)s", where=where, err=str(err)) from err
    return [f"tariff {machine}/{code}: version {version.version}"]
