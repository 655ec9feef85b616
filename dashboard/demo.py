"""``fabmeter demo``: a whole fablab on one machine, with simulated machines and a scripted visit.

It starts a private Mosquitto (with the generated passwords and ACL) and Redis, billing on
SQLite, the dashboard, simulated machines (``fabmeter sim``: an OctoPrint printer printing
around the clock, a GRBL laser on a pseudo-terminal) and three real agents (``fabmeter agent``),
the sewing machine's on a mocked current sensor. Then it plays a walk-in visit: check-in, the
loan badge on the laser's RDM6300 reader, a print, close, receipt to a file. Every machine also has
a simulated reader (a Unix socket) that ``fabmeter sim badge|pin`` presents a credential to, so a
newcomer plays the visitor. Every process is a real process; one that exits is restarted with
back-off, as systemd would; Ctrl-C stops them all.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from billing.money import to_cents
from billing.presentation import cents_text
from broker.registry import AgentEntry, Registry, write_broker_config
from broker.services import (
    PrivateMosquitto,
    PrivateRedis,
    free_port,
    stop_on_signals,
    wait_for_port,
)

log = logging.getLogger(__name__)

AGENTS = {"pi-printer": ["printer-1"], "pi-laser": ["laser-1"], "pi-sewing": ["sewing-1"]}
ADMIN = ("admin", "fablab-demo")
VISITOR = "Camille Martin"
BADGE = "0A1B2C3D4E"
DEMO_DIR = Path("demo-data")  # also fabmeter sim badge/pin's default


def rdm6300_frame(uid: str) -> bytes:
    """What an RDM6300 reader sends for a card: STX, 10 hex digits, XOR checksum, ETX."""
    checksum = 0
    for i in range(0, 10, 2):
        checksum ^= int(uid[i : i + 2], 16)
    return b"\x02" + uid.encode() + f"{checksum:02X}".encode() + b"\x03"


@dataclass(frozen=True)
class Layout:
    """Where the demo keeps its files, and the ports it chose."""

    root: Path
    mqtt_port: int
    http_port: int
    octoprint_port: int

    @property
    def server_toml(self) -> Path:
        return self.root / "server.toml"

    @property
    def database(self) -> Path:
        return self.root / "fabmeter.db"

    @property
    def receipts(self) -> Path:
        return self.root / "receipts.bin"

    def agent_toml(self, agent: str) -> Path:
        return self.root / f"{agent}.toml"

    def reader(self, machine: str) -> Path:
        """The socket of the machine's simulated reader (``fabmeter sim badge|pin``)."""
        return self.root / "readers" / f"{machine}.sock"


def write_configs(layout: Layout, redis_url: str) -> None:
    root = layout.root
    registry = Registry(tuple(AgentEntry(a, tuple(m)) for a, m in AGENTS.items()))
    write_broker_config(registry, root / "broker", listen=("127.0.0.1", layout.mqtt_port),
                        run_as=getpass.getuser())  # fmt: skip
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name in ("pepper", "secret_key", "ledger.key"):
        (secrets_dir / name).write_text(secrets.token_hex(32))
    (secrets_dir / "octoprint.key").write_text("demo-key")
    (secrets_dir / "archive.key").write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    layout.server_toml.write_text(
        f'database_url = "sqlite:///{layout.database}"\n'
        f'redis_url = "{redis_url}"\n'
        'pepper_file = "secrets/pepper"\nsecret_key_file = "secrets/secret_key"\n'
        'ledger_key_file = "secrets/ledger.key"\nanchor_file = "ledger.anchors"\n'
        'archive_key_file = "secrets/archive.key"\n\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {layout.mqtt_port}\nusername = "billing"\n'
        'password_file = "broker/secrets/billing.password"\nclient_id = "billing-demo"\n\n'
        f'[printer]\nkind = "file"\npath = "{layout.receipts}"\ncolumns = 42\n\n'
        '[organisation]\nname = "Fablab du Val (démo)"\n'
        'address = "1 place de la Mairie, 00000 Le Village"\nsiret = "000 000 000 00000"\n'
        'tax_regime = "franchise"\nlegal_mention = "TVA non applicable, art. 293 B du CGI"\n'
    )
    for agent, machines in AGENTS.items():
        layout.agent_toml(agent).write_text(_agent_toml(layout, agent, machines))


def _agent_toml(layout: Layout, agent: str, machines: list[str]) -> str:
    head = (
        f'agent_id = "{agent}"\n\n[mqtt]\nhost = "127.0.0.1"\nport = {layout.mqtt_port}\n'
        f'username = "{agent}"\npassword_file = "broker/secrets/{agent}.password"\nkeepalive = 10\n\n'
        f'[outbox]\npath = "{agent}-outbox.db"\n\n[agent]\npoll_s = 1.0\ncheckpoint_s = 30\n\n'
    )
    blocks = {
        "printer-1": f'[[machines]]\nid = "printer-1"\ndriver = "octoprint"\n'
        f'url = "http://127.0.0.1:{layout.octoprint_port}"\napi_key_file = "secrets/octoprint.key"\n',
        "laser-1": f'[[machines]]\nid = "laser-1"\ndriver = "grbl"\nport = "{layout.root / "laser-1.tty"}"\n'
        'interlock_pin = "GPIO17"\nidle_timeout_s = 120\n\n'
        f'[[readers]]\nkind = "rdm6300"\nmachine = "laser-1"\nport = "{layout.root / "badge-laser.tty"}"\n',
        "sewing-1": '[[machines]]\nid = "sewing-1"\ndriver = "gpio"\npin = "GPIO27"\non_s = 1.0\noff_s = 2.0\n'
        "simulate_busy_s = 20.0\nsimulate_idle_s = 40.0\n",
    }
    readers = "".join(f'\n[[readers]]\nkind = "socket"\nmachine = "{m}"\nsocket = "{layout.reader(m)}"\n'
                      for m in machines)  # fmt: skip
    return head + "\n".join(blocks[m] for m in machines) + readers


class BadgeReader:
    """The laser's RDM6300 reader, played by us on a pseudo-terminal the agent opens."""

    def __init__(self, link: Path) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.ttyname(self._slave))

    def present(self, uid: str) -> None:
        for _ in range(3):  # a real reader repeats while the card stays on it
            os.write(self._master, rdm6300_frame(uid))
            time.sleep(0.1)

    def close(self) -> None:
        os.close(self._master)
        os.close(self._slave)


FIRST_RESTART_S, MAX_RESTART_S, STABLE_S = 1.0, 30.0, 60.0


def restart_delay(previous_s: float | None, ran_s: float) -> float:
    """How long to wait before restarting a process that exited after running ``ran_s`` seconds, as
    systemd's ``Restart=always`` with ``RestartSteps=`` and ``RestartMaxDelaySec=30`` would: doubled
    while it keeps exiting quickly, back to the first delay once it ran a minute."""
    if previous_s is None or ran_s >= STABLE_S:
        return FIRST_RESTART_S
    return min(previous_s * 2, MAX_RESTART_S)


@dataclass
class Child:
    """One process of the demo and when it is due to be started again."""

    name: str
    args: tuple[str, ...]
    proc: subprocess.Popen[bytes]
    started: float
    delay: float | None = None
    due: float | None = None  # set while it waits to be restarted


class Demo:
    """Starts everything, keeps it running, plays the visit, and stops everything in reverse order."""

    def __init__(self, root: Path, http_port: int, say: Any = click.echo) -> None:
        self.say = say
        self.layout = Layout(root.resolve(), free_port(), http_port or free_port(), free_port())
        self.procs: dict[str, Child] = {}
        self.services: list[Any] = []
        self.stopping = threading.Event()
        self.badge: BadgeReader | None = None
        self.shown = 0  # charge lines of the visit already printed

    # -- setting up ------------------------------------------------------------------------

    def prepare(self) -> None:
        root = self.layout.root
        if root.exists():
            shutil.rmtree(root)
        (root / "logs").mkdir(parents=True)
        (root / "readers").mkdir()
        redis = PrivateRedis(root / "redis")
        redis.start()
        self.services.append(redis)
        write_configs(self.layout, redis.url)
        mosquitto = PrivateMosquitto(root / "mosquitto", port=self.layout.mqtt_port,
                                     conf=root / "broker" / "mosquitto.conf")  # fmt: skip
        mosquitto.start()
        self.services.append(mosquitto)
        self._prepare_database()

    def _prepare_database(self) -> None:
        from billing.config import ServerConfig
        from billing.database import make_engine, upgrade
        from billing.ledger.seals import LEDGER_KEY
        from billing.seed import seed
        from dashboard.staff import create_user

        config = self.config = ServerConfig.from_file(self.layout.server_toml)
        upgrade(config.database_url)
        self.factory = sessionmaker(make_engine(config.database_url), expire_on_commit=False,
                                    info={LEDGER_KEY: config.ledger_key} if config.ledger_key else {})  # fmt: skip
        with self.factory.begin() as db:
            seed(db)
            create_user(db, ADMIN[0], ADMIN[1], role="admin", actor="demo")

    def _popen(self, name: str, args: tuple[str, ...]) -> subprocess.Popen[bytes]:
        log_file = open(self.layout.root / "logs" / f"{name}.log", "ab")
        # no Raspberry Pi here: the relay, LED and current sensor are gpiozero mock pins
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "fabmeter", *args], cwd=self.layout.root, env=env,
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log_file.close()
        return proc

    def _spawn(self, name: str, *args: str) -> None:
        self.procs[name] = Child(name, args, self._popen(name, args), time.monotonic())

    def start(self) -> None:
        lay = self.layout
        self._spawn("billing", "billing", "--config", str(lay.server_toml))
        self._spawn("dashboard", "dashboard", "--config", str(lay.server_toml),
                    "--host", "127.0.0.1", "--port", str(lay.http_port))  # fmt: skip
        self._spawn("sim", "sim", "machines", "--octoprint-port", str(lay.octoprint_port), "--job-s", "90",
                    "--idle-s", "20", "--grbl-link", str(lay.root / "laser-1.tty"), "--cut-s", "15",
                    "--grbl-trigger", str(lay.root / "laser-1.job"))  # fmt: skip
        self.badge = BadgeReader(lay.root / "badge-laser.tty")
        wait_for_port(lay.octoprint_port, timeout=20)
        for agent in AGENTS:
            self._spawn(agent, "agent", "--config", str(lay.agent_toml(agent)))
        wait_for_port(lay.http_port, timeout=30)
        self.say(f"\n  dashboard: http://127.0.0.1:{lay.http_port}/   login: {ADMIN[0]} / {ADMIN[1]}")
        self.say(f"  other ports, picked free: mosquitto 127.0.0.1:{lay.mqtt_port}, "
                 f"redis 127.0.0.1:{self.services[0].port}, simulated OctoPrint 127.0.0.1:{lay.octoprint_port}")  # fmt: skip
        self.say(f"  logs and data in {lay.root}; Ctrl-C stops everything\n")
        self.say(play_hint(lay.root))

    def check(self) -> None:
        """Restart whatever exited, as systemd would, and say so."""
        now = time.monotonic()
        for child in self.procs.values():
            if child.due is None and child.proc.poll() is not None:
                child.delay = restart_delay(child.delay, now - child.started)
                child.due = now + child.delay
                self.say(f"[demo] {child.name} exited with status {child.proc.returncode}: restarting it in "
                         f"{child.delay:.0f} s, as systemd would (see logs/{child.name}.log)")  # fmt: skip
            elif child.due is not None and now >= child.due:
                child.proc, child.started, child.due = self._popen(child.name, child.args), now, None
                self.say(f"[demo] {child.name} restarted")

    # -- the scripted visit ----------------------------------------------------------------

    def play(self) -> None:
        from billing.visits import open_visit

        with self.factory.begin() as db:
            checkin = open_visit(db, pepper=self.config.pepper, category="walk-in", actor="demo",
                                 name=VISITOR, badge_uid=BADGE)  # fmt: skip
            visit_id = checkin.visit.id
        self.say(f"[visit] {VISITOR} checks in as a walk-in: visit {visit_id}, PIN {checkin.pin}, "
                 f"loan badge {BADGE}")  # fmt: skip
        self._pause(3)
        assert self.badge is not None
        self.badge.present(BADGE)
        self.say("[laser-1] badge on the reader: the laser is unlocked")
        self._pause(3)
        (self.layout.root / "laser-1.job").touch()  # the visitor sends a job from the laser's PC
        self._wait_machine("laser-1", "busy", 60)
        self.say("[laser-1] cutting…")
        self._wait_machine("laser-1", "idle", 60)
        self._pause(3)
        self.badge.present(BADGE)
        self.say("[laser-1] badge again: the session ends")
        self._show_charges(visit_id, 1, 60)
        self._claim_print(visit_id)
        self._close(visit_id)

    def _pause(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise KeyboardInterrupt

    def _wait(self, what: str, test: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            found = test()
            if found:
                return found
            self._pause(0.5)
        raise click.ClickException(f"the demo waited {timeout:.0f} s for {what} in vain")

    def _wait_machine(self, machine: str, state: str, timeout: float) -> None:
        import redis

        client = redis.Redis.from_url(self.services[0].url, decode_responses=True)
        self._wait(f"{machine} to be {state}",
                   lambda: client.hget(f"fabmeter:machine:{machine}", "state") == state, timeout)  # fmt: skip

    def _lines(self, visit_id: int) -> list[Any]:
        from billing.models import ChargeLine

        with self.factory() as db:
            return list(db.scalars(select(ChargeLine).where(ChargeLine.visit_id == visit_id)
                                   .order_by(ChargeLine.id)))  # fmt: skip

    def _show_charges(self, visit_id: int, count: int, timeout: float) -> None:
        lines = self._wait("a charge", lambda: (ls := self._lines(visit_id)) and len(ls) >= count and ls,
                           timeout)  # fmt: skip
        for line in lines[self.shown:]:
            self.say(f"[charge] {line.description}: {cents_text(line.amount_cents)}")
        self.shown = len(lines)

    def _claim_print(self, visit_id: int) -> None:
        from billing.charges import attach_session
        from billing.models import UsageSession

        self.say("[printer-1] staff hand the next print to the visitor at the desk")

        def next_print() -> Any:
            with self.factory() as db:
                return db.scalars(select(UsageSession).where(
                    UsageSession.machine_id == "printer-1", UsageSession.visit_id.is_(None),
                    UsageSession.state == "open")).first()  # fmt: skip

        session = self._wait("a print to start", next_print, 180)
        with self.factory.begin() as db:
            attach_session(db, session.id, visit_id, actor="demo")
        self.say(f"[printer-1] printing {session.job or 'a job'} for {VISITOR}; the visit waits for it")
        self._show_charges(visit_id, self.shown + 1, 240)

    def _close(self, visit_id: int) -> None:

        from billing.ledger.printing import EscposTransport, PrintSpooler
        from billing.ledger.receipts import close_with_receipt
        from billing.visits import visit_total

        config = self.config
        spooler = PrintSpooler(self.factory, EscposTransport(config.printer),
                               columns=config.printer.columns,
                               tz=config.organisation.zone)  # fmt: skip
        spooler.start()
        with self.factory() as db:
            total = visit_total(db, visit_id)
            document = close_with_receipt(db, visit_id, "card", actor="demo",
                                          organisation=config.organisation, spooler=spooler)  # fmt: skip
            number = document.reference
        spooler.wait_idle(10)
        spooler.stop()
        self.say(f"[desk] visit {visit_id} closed: {cents_text(to_cents(total))} paid by card, "
                 f"receipt {number} printed to {self.layout.receipts}")  # fmt: skip
        self.say("[demo] the printer goes on printing for nobody in particular; watch the board, "
                 "Ctrl-C to stop")  # fmt: skip

    # -- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        children = list(reversed(self.procs.values()))
        for child in children:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time: killed", child.name)
                child.proc.kill()
        if self.badge:
            self.badge.close()
        for service in reversed(self.services):
            service.stop()


def play_hint(root: Path) -> str:
    """How a newcomer plays the visitor from another terminal."""
    exe = Path(sys.executable).parent / "fabmeter"
    prog = "fabmeter" if shutil.which("fabmeter") == str(exe) or not exe.exists() else os.path.relpath(exe)
    prog = str(exe) if prog.startswith("..") else prog  # from elsewhere than the clone: the whole path
    where = "" if root == DEMO_DIR.resolve() else f" --dir {root}"
    return (
        "  play the visitor: check someone in at the desk (note the PIN, or give a loan badge), then from\n"
        "  another terminal present it at a machine (laser-1, printer-1, sewing-1):\n"
        f"    {prog} sim badge laser-1 0A1B2C3D4E{where}\n"
        f"    {prog} sim pin sewing-1 123456{where}\n"
        "  the same badge again ends the session; at printer-1 it claims a print nobody badged for.\n"
    )


def check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as err:
            raise click.ClickException(
                f"port {port} is taken on 127.0.0.1 ({err.strerror}): choose another with --port "
                "(make demo PORT=8080), or --port 0 for any free one"
            ) from err


@click.command("demo")
@click.option("--dir", "root", type=click.Path(path_type=Path), default=DEMO_DIR,
              show_default=True, help="Working folder (emptied at start).")  # fmt: skip
@click.option("--port", type=int, default=8000, show_default=True, help="Dashboard port (0: any).")
@click.option("--no-visit", is_flag=True, help="Do not play the scripted walk-in visit.")
def demo(root: Path, port: int, no_visit: bool) -> None:
    """Run a whole fablab on this machine: broker, billing, dashboard, simulated machines."""
    if port:
        check_port_free(port)
    runner = Demo(root, port)
    stop = runner.stopping
    stop_on_signals(stop)
    try:
        runner.prepare()
        runner.start()
        if not no_visit:
            runner.play()
        while not stop.wait(1):
            runner.check()
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping…")
        runner.stop()
    click.echo("stopped")
