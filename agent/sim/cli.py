"""``fabmeter sim``: simulated machines for the demo, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from broker.services import stop_on_signals


@click.command("sim")
@click.option("--octoprint-port", type=int, default=None, help="Serve a simulated OctoPrint here.")
@click.option("--api-key", default="demo-key", show_default=True, help="The OctoPrint API key.")
@click.option("--job-s", type=float, default=150, show_default=True, help="Length of a print job.")
@click.option("--idle-s", type=float, default=25, show_default=True, help="Idle time between prints.")
@click.option("--grbl-link", type=click.Path(path_type=Path), default=None,
              help="Create a GRBL laser on a pseudo-terminal and link it here.")  # fmt: skip
@click.option("--cut-s", type=float, default=40, show_default=True, help="Length of a laser cut.")
@click.option("--grbl-trigger", type=click.Path(path_type=Path), default=None,
              help="Cut only when this file is touched (a job sent), instead of on a cycle.")  # fmt: skip
def sim(octoprint_port: int | None, api_key: str, job_s: float, idle_s: float,
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
