"""``fabmeter broker …``: the Mosquitto side of a site."""

from __future__ import annotations

from pathlib import Path

import click

from broker.errors import BrokerError
from broker.registry import TLSFiles, parse_listen, read_registry, write_broker_config


@click.group()
def broker() -> None:
    """Generate Mosquitto configuration, ACL and passwords."""


@broker.command("config")
@click.option("--registry", type=click.Path(path_type=Path), required=True,
              help="site.toml listing [[agents]] with their id and machines.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for mosquitto.conf, passwd, acl and secrets/.")
@click.option("--listen", default="0.0.0.0:1883", show_default=True, help="HOST:PORT to listen on.")
@click.option("--run-as", default=None, help="System user mosquitto switches to (its 'user' setting).")
@click.option("--tls-cert", type=click.Path(path_type=Path), help="Server certificate (enables TLS).")
@click.option("--tls-key", type=click.Path(path_type=Path), help="Server private key.")
@click.option("--tls-ca", type=click.Path(path_type=Path), help="CA for client certificates.")
def config(
    registry: Path, out: Path, listen: str, run_as: str | None,
    tls_cert: Path | None, tls_key: Path | None, tls_ca: Path | None,
) -> None:  # fmt: skip
    """Write Mosquitto's config, passwd, ACL and per-user password files from a registry."""
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        tls = TLSFiles(tls_cert, tls_key, tls_ca) if tls_cert and tls_key else None
        written = write_broker_config(
            read_registry(registry), out, listen=parse_listen(listen), run_as=run_as, tls=tls
        )
    except BrokerError as err:
        raise click.ClickException(str(err)) from err
    for path in written:
        click.echo(f"wrote {path}")


@broker.command("bridge")
@click.option("--name", required=True, help="The remote site's id in the central registry ([[sites]]).")
@click.option("--remote", required=True, help="HOST:PORT of the central broker.")
@click.option("--password-file", type=click.Path(path_type=Path, exists=True), required=True,
              help="The site's password on the central broker (secrets/site-<name>.password).")
@click.option("--cafile", type=click.Path(path_type=Path), help="CA of the central broker (TLS).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="File to write, e.g. /etc/mosquitto/conf.d/fabmeter-bridge.conf.")
def bridge(name: str, remote: str, password_file: Path, cafile: Path | None, out: Path) -> None:
    """Write the bridge section that links a site broker (the van) to the central one."""
    from broker.bridge import Bridge, bridge_conf

    try:
        conf = bridge_conf(Bridge(name, parse_listen(remote), f"site-{name}",
                                  password_file.read_text().strip(), cafile))  # fmt: skip
    except BrokerError as err:
        raise click.ClickException(str(err)) from err
    out.write_text(conf)
    out.chmod(0o600)
    click.echo(f"wrote {out}")
