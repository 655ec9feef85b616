"""The site registry (which agent runs which machines) and the Mosquitto files made from it.

    site = read_registry(Path("site.toml"))
    write_broker_config(site, Path("/etc/fabmeter/mosquitto"), listen=("0.0.0.0", 1883))

writes ``mosquitto.conf``, ``passwd`` (Mosquitto's own PBKDF2-SHA512 format), ``acl`` and
``secrets/<user>.password``. Running it again keeps the passwords already in ``secrets/``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from broker import topics
from broker.errors import RegistryError
from broker.messages import MAX_PAYLOAD_BYTES

BILLING_USER = "billing"
REGISTRY_TABLES = ("agents", "sites")
# the same file may describe the fablab for `fabmeter admin load` (billing.site)
CATALOGUE_TABLES = ("materials", "categories", "items", "machines", "tariffs")
PASSWD_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes for "$7$"


@dataclass(frozen=True)
class AgentEntry:
    id: str
    machines: tuple[str, ...]


@dataclass(frozen=True)
class SiteEntry:
    """A remote site (the van) whose broker bridges its agents' topics to this one."""

    id: str
    agents: tuple[str, ...]

    @property
    def user(self) -> str:
        return f"site-{self.id}"


@dataclass(frozen=True)
class Registry:
    agents: tuple[AgentEntry, ...]
    sites: tuple[SiteEntry, ...] = ()


@dataclass(frozen=True)
class TLSFiles:
    certfile: Path
    keyfile: Path
    cafile: Path | None = None


def read_registry(path: Path) -> Registry:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise RegistryError(f"cannot read registry {path}: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise RegistryError(f"{path}: not valid TOML: {err}") from err
    unknown = sorted(set(data) - set(REGISTRY_TABLES) - set(CATALOGUE_TABLES))
    if unknown:
        raise RegistryError(f"{path}: unknown setting {unknown[0]!r} (expected [[agents]], [[sites]])")
    raw = data.get("agents")
    if not isinstance(raw, list) or not raw:
        raise RegistryError(f"{path}: needs at least one [[agents]] table")
    agents = tuple(_agent(path, i, entry) for i, entry in enumerate(raw))
    _check_unique(path, agents)
    raw_sites = data.get("sites", [])
    if not isinstance(raw_sites, list):
        raise RegistryError(f"{path}: sites must be an array of tables ([[sites]])")
    known = {a.id for a in agents}
    sites = tuple(_site(path, i, entry, known) for i, entry in enumerate(raw_sites))
    return Registry(agents, sites)


def _site(path: Path, index: int, entry: object, known: set[str]) -> SiteEntry:
    where = f"{path}: sites[{index}]"
    if not isinstance(entry, dict) or sorted(set(entry) - {"id", "agents"}):
        raise RegistryError(f"{where} must be a table with id and agents")
    ident, agents = entry.get("id"), entry.get("agents", [])
    if not topics.is_id(ident):
        raise RegistryError(f"{where}.id {ident!r} must be lowercase letters, digits, hyphens")
    if not isinstance(agents, list) or not all(a in known for a in agents):
        raise RegistryError(f"{where}.agents must list agents of this registry, got {agents!r}")
    return SiteEntry(str(ident), tuple(agents))


def _agent(path: Path, index: int, entry: object) -> AgentEntry:
    where = f"{path}: agents[{index}]"
    if not isinstance(entry, dict):
        raise RegistryError(f"{where} must be a table")
    unknown = sorted(set(entry) - {"id", "machines"})
    if unknown:
        raise RegistryError(f"{where}: unknown setting {unknown[0]!r}")
    ident, machines = entry.get("id"), entry.get("machines", [])
    if not topics.is_id(ident):
        raise RegistryError(f"{where}.id {ident!r} must be lowercase letters, digits, hyphens")
    if ident == BILLING_USER:
        raise RegistryError(f"{where}.id {BILLING_USER!r} is reserved for the billing service")
    if not isinstance(machines, list) or not all(topics.is_id(m) for m in machines):
        raise RegistryError(f"{where}.machines must be a list of machine ids, got {machines!r}")
    return AgentEntry(str(ident), tuple(machines))


def _check_unique(path: Path, agents: tuple[AgentEntry, ...]) -> None:
    seen_agents: set[str] = set()
    owner: dict[str, str] = {}
    for agent in agents:
        if agent.id in seen_agents:
            raise RegistryError(f"{path}: agent {agent.id!r} is listed twice")
        seen_agents.add(agent.id)
        for machine in agent.machines:
            if machine in owner:
                raise RegistryError(
                    f"{path}: machine {machine!r} belongs to both {owner[machine]!r} and {agent.id!r}"
                )
            owner[machine] = agent.id


def password_hash(password: str, salt: bytes | None = None) -> str:
    """A ``passwd`` line's hash in Mosquitto 2.0's ``$7$`` (PBKDF2-SHA512) format."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PASSWD_ITERATIONS)
    return f"$7${PASSWD_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _agent_rules(agent: AgentEntry) -> list[str]:
    rules = [f"topic write {topics.build(k, agent.id)}" for k in ("status", "events", "auth_req")]
    rules += [f"topic write {topics.machine_state(m)}" for m in agent.machines]
    rules += [f"topic read {topics.build(k, agent.id)}" for k in ("ack", "auth_resp", "allowlist", "cmd")]
    rules += [f"topic read {topics.machine_service(m)}" for m in agent.machines]
    return rules


def acl_text(registry: Registry) -> str:
    lines = ["# generated by 'fabmeter broker config' - edit the registry, not this file", ""]
    lines += [f"user {BILLING_USER}", f"topic readwrite {topics.PREFIX}/#", ""]
    by_id = {a.id: a for a in registry.agents}
    for agent in registry.agents:
        lines += [f"user {agent.id}", *_agent_rules(agent), ""]
    for site in registry.sites:
        # a site's bridge carries exactly what its agents may do themselves
        lines.append(f"user {site.user}")
        for agent_id in site.agents:
            lines += _agent_rules(by_id[agent_id])
        lines.append("")
    return "\n".join(lines)


def conf_text(
    out: Path, listen: tuple[str, int], run_as: str | None, tls: TLSFiles | None
) -> str:
    host, port = listen
    lines = [
        "# generated by 'fabmeter broker config'",
        "per_listener_settings false",
        f"listener {port} {host}",
        "allow_anonymous false",
        f"password_file {out / 'passwd'}",
        f"acl_file {out / 'acl'}",
        "persistence true",
        f"persistence_location {out / 'data'}/",
        "autosave_interval 30",
        "# a subscriber that falls behind must not lose messages (README: Broker configuration)",
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        "max_inflight_messages 1000",
        "# no payload larger than billing accepts (broker.messages.MAX_PAYLOAD_BYTES): a bigger one is",
        "# acknowledged to its publisher and dropped, never stored or forwarded",
        f"message_size_limit {MAX_PAYLOAD_BYTES}",
        "persistent_client_expiration 14d",
        "log_dest stderr",
    ]
    if run_as:
        lines.append(f"user {run_as}")
    if tls:
        lines += [f"certfile {tls.certfile}", f"keyfile {tls.keyfile}"]
        if tls.cafile:
            lines.append(f"cafile {tls.cafile}")
    return "\n".join(lines) + "\n"


def _password_for(secrets_dir: Path, user: str) -> str:
    path = secrets_dir / f"{user}.password"
    if path.exists():
        existing = path.read_text().strip()
        if existing:
            return existing
    password = secrets.token_urlsafe(24)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def write_broker_config(
    registry: Registry,
    out: Path,
    *,
    listen: tuple[str, int] = ("0.0.0.0", 1883),
    run_as: str | None = None,
    tls: TLSFiles | None = None,
    secrets_dir: Path | None = None,
) -> list[Path]:
    """Write the broker's files into ``out`` and each user's password into ``secrets_dir``
    (``out/secrets`` unless given); return the paths written."""
    out = out.resolve()
    secrets_dir = (secrets_dir or out / "secrets").resolve()
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    (out / "data").mkdir(parents=True, exist_ok=True)
    users = [BILLING_USER] + [a.id for a in registry.agents] + [s.user for s in registry.sites]
    passwd = "".join(f"{u}:{password_hash(_password_for(secrets_dir, u))}\n" for u in users)
    written = []
    for name, text, mode in (
        ("passwd", passwd, 0o600),
        ("acl", acl_text(registry), 0o644),
        ("mosquitto.conf", conf_text(out, listen, run_as, tls), 0o644),
    ):
        path = out / name
        path.write_text(text)
        path.chmod(mode)
        written.append(path)
    return written + [secrets_dir / f"{u}.password" for u in users]


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RegistryError(f"--listen {value!r} must be HOST:PORT, e.g. 0.0.0.0:1883")
    return host, int(port)
