"""The ``fabmeter`` command: one entry point, a subcommand per process kind.

Subcommands are imported only when run, so a Raspberry Pi with only ``fabmeter[agent]``
installed can still run ``fabmeter agent`` and list the others.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click

# name -> ("module:attribute", one-line help shown by ``fabmeter --help``)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("dashboard.demo:demo", "Run a whole fablab on this machine, with simulated machines."),
    "sim": ("agent.sim.cli:sim", "Simulated machines for the demo, and a badge or PIN at its readers."),
    "broker": ("broker.cli:broker", "Generate Mosquitto configuration, ACL and passwords."),
    "billing": ("billing.cli:billing", "Run the billing service: ingest, pricing, authorization, live state."),
    "setup": ("billing.cli:setup", "Make a server's secrets and broker files in one folder (e.g. /etc/fabmeter)."),
    "db": ("billing.cli:db", "Database migrations: fabmeter db upgrade."),
    "ledger": ("billing.ledger.cli:ledger", "Receipts ledger: verify the hash chain, closures, accounting export."),
    "agent": ("agent.cli:agent", "Run the machine agent beside one or more machines."),
    "dashboard": ("dashboard.cli:dashboard", "Serve the staff dashboard: live board, desk, admin, reports."),
    "admin": ("dashboard.cli:admin", "Administration: create staff users, erase a person's data."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in SUBCOMMANDS:
            return None
        target, short = SUBCOMMANDS[name]
        module, attr = target.split(":")
        try:
            command: click.Command = getattr(importlib.import_module(module), attr)
        except ImportError as err:
            return _missing_extra(name, short, err)
        command.short_help = short
        return command


def _missing_extra(name: str, short: str, err: ImportError) -> click.Command:
    @click.command(name, help=short, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args: Any) -> None:
        raise click.ClickException(
            f"'{name}' needs a part of fabmeter that is not installed ({err}); "
            "install it with pip install 'fabmeter[agent]' or 'fabmeter[server]'"
        )

    missing.short_help = short
    return missing


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """fabmeter meters machine time and material in a fablab and bills it."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


if __name__ == "__main__":
    main()
