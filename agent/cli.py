"""``fabmeter agent --config agent.toml``: run the machine agent beside one or more machines."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from agent.config import AgentConfig, ConfigError

log = logging.getLogger(__name__)


@click.command("agent")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/etc/fabmeter/agent.toml"),
    show_default=True,
    help="The agent's TOML configuration (see deploy/agent.example.toml).",
)
def agent(config_path: Path) -> None:
    """Run the machine agent: poll machines, identify people, meter usage, publish it durably."""
    try:
        config = AgentConfig.from_file(config_path)
    except ConfigError as err:
        raise click.ClickException(str(err)) from err
    from agent.main import run  # imported late: hardware libraries only when really running

    raise SystemExit(run(config))
