"""``fabmeter sim``: simulated machines for the demo, and a visitor's badge or PIN at a running demo.

    fabmeter sim machines --octoprint-port 5000        # until Ctrl-C or SIGTERM
    fabmeter sim badge laser-1 0A1B2C3D4E              # the badge on laser-1's simulated reader
    fabmeter sim pin sewing-1 123456                   # the PIN typed at sewing-1
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import click

from agent.readers import datagram_credential
from broker.services import stop_on_signals
from broker.topics import is_id

DEMO_DIR = Path("demo-data")


@click.group("sim")
def sim() -> None:
    """Simulated machines and readers for the demo."""


@sim.command("machines")
@click.option("--octoprint-port", type=int, default=None, help="Serve a simulated OctoPrint here.")
@click.option("--api-key", default="demo-key", show_default=True, help="The OctoPrint API key.")
@click.option("--job-s", type=float, default=150, show_default=True, help="Length of a print job.")
@click.option("--idle-s", type=float, default=25, show_default=True, help="Idle time between prints.")
@click.option("--grbl-link", type=click.Path(path_type=Path), default=None,
              help="Create a GRBL laser on a pseudo-terminal and link it here.")  # fmt: skip
@click.option("--cut-s", type=float, default=40, show_default=True, help="Length of a laser cut.")
@click.option("--grbl-trigger", type=click.Path(path_type=Path), default=None,
              help="Cut only when this file is touched (a job sent), instead of on a cycle.")  # fmt: skip
def machines(octoprint_port: int | None, api_key: str, job_s: float, idle_s: float,
             grbl_link: Path | None, cut_s: float, grbl_trigger: Path | None) -> None:  # fmt: skip
    """Run simulated machines (OctoPrint printer, GRBL laser) for the demo."""
    from agent.sim.grbl import SimulatedGrbl
    from agent.sim.octoprint import SimulatedOctoPrint

    running: list[SimulatedOctoPrint | SimulatedGrbl] = []
    if octoprint_port is not None:
        printer = SimulatedOctoPrint(port=octoprint_port, api_key=api_key, job_s=job_s, idle_s=idle_s)
        running.append(printer.start())
        click.echo(f"simulated OctoPrint at {printer.url}")
    if grbl_link is not None:
        running.append(SimulatedGrbl(link=grbl_link, cut_s=cut_s, idle_s=cut_s * 1.5,
                                     trigger=grbl_trigger).start())  # fmt: skip
        click.echo(f"simulated GRBL laser on {grbl_link}")
    stop = threading.Event()
    stop_on_signals(stop)
    stop.wait()
    for machine in running:
        machine.stop()


DIR_OPTION = click.option("--dir", "root", type=click.Path(path_type=Path), default=DEMO_DIR, show_default=True,
                          help="The running demo's folder (fabmeter demo --dir).")  # fmt: skip


@sim.command("badge")
@click.argument("machine")
@click.argument("uid")
@DIR_OPTION
def badge(machine: str, uid: str, root: Path) -> None:
    """Present badge UID (hex, e.g. 0A1B2C3D4E) at MACHINE's simulated reader in a running demo."""
    present(root, machine, f"badge {uid}", "a badge UID is 4 to 32 hexadecimal digits")


@sim.command("pin")
@click.argument("machine")
@click.argument("pin")
@DIR_OPTION
def pin(machine: str, pin: str, root: Path) -> None:
    """Type PIN (the visit's 6 digits) at MACHINE's simulated keypad in a running demo."""
    present(root, machine, f"pin {pin}", "a PIN is 4 to 12 digits")


def present(root: Path, machine: str, text: str, rule: str) -> None:
    if not is_id(machine):
        raise click.BadParameter(f"{machine!r} is not a machine id (printer-1, laser-1, sewing-1)", param_hint="MACHINE")
    if datagram_credential(text.encode(), machine) is None:
        raise click.BadParameter(f"{text.split(' ', 1)[1]!r}: {rule}")
    path = root / "readers" / f"{machine}.sock"
    logs = sorted((root / "logs").glob("pi-*.log"))
    sizes = {log: log.stat().st_size for log in logs}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(text.encode(), str(path))
        except OSError as err:  # no such socket, or nobody bound to it any more
            raise click.ClickException(
                f"no simulated reader answers at {path} ({err.strerror}): is `fabmeter demo` running "
                f"with --dir {root}, and is {machine} one of its machines? (a restarting agent needs a few seconds)"
            ) from err
    click.echo(f"{text.split()[0]} presented at {machine}")
    for line in _agent_says(sizes, machine, timeout=8):
        click.echo(f"  {line}")


def _agent_says(sizes: dict[Path, int], machine: str, *, timeout: float) -> list[str]:
    """What the agents logged about ``machine`` just after: accepted, refused, session ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = []
        for log, size in sizes.items():
            with log.open("rb") as f:
                f.seek(size)
                lines = f.read().decode(errors="replace").splitlines()
            said += [line.split(": ", 1)[-1] for line in lines if machine in line and "agent.main" in line]
        if said:
            return said
        time.sleep(0.2)
    return ["(the agent said nothing yet: see the board, or the logs in the demo's folder)"]
