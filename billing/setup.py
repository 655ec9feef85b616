"""A server's secrets and broker files, made in one folder with the paths server.example.toml uses.

    written = write_server_files(Path("/etc/fabmeter"), read_registry(Path("site.toml")))

makes ``secrets/pepper``, ``secrets/secret_key``, ``secrets/ledger.key``, ``secrets/archive.key``
(the Ed25519 key that signs the yearly archive, PEM) and one
``secrets/<user>.password`` per broker user (billing, each agent, each remote site), and
``mosquitto/mosquitto.conf``, ``mosquitto/passwd``, ``mosquitto/acl``. A secret that exists is
kept: a new pepper would make every PIN and badge unknown, a new ledger key starts a new segment.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.registry import Registry, TLSFiles, write_broker_config

SERVER_SECRETS = ("pepper", "secret_key", "ledger.key")  # pepper_file, secret_key_file, ledger_key_file
ARCHIVE_KEY = "archive.key"  # archive_key_file


def write_server_files(
    folder: Path, registry: Registry, *, listen: tuple[str, int] = ("0.0.0.0", 1883),
    run_as: str | None = None, tls: TLSFiles | None = None, group: str | None = None,
) -> list[Path]:  # fmt: skip
    """Write what is missing or generated; the paths written or kept. ``group`` may read the secrets
    (the services' user); ``run_as``, mosquitto's user, owns the broker's folder when run as root."""
    folder = folder.resolve()
    secrets_dir = folder / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    for name in SERVER_SECRETS:
        path = secrets_dir / name
        if not path.exists() or not path.read_text().strip():
            path.write_text(secrets.token_urlsafe(32) + "\n")
    archive_key = secrets_dir / ARCHIVE_KEY
    if not archive_key.exists() or not archive_key.read_text().strip():
        archive_key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    broker = write_broker_config(registry, folder / "mosquitto", listen=listen, run_as=run_as, tls=tls,
                                 secrets_dir=secrets_dir)  # fmt: skip
    _permissions(folder, secrets_dir, run_as, group)
    return [secrets_dir / name for name in SERVER_SECRETS] + [archive_key] + broker


def _permissions(folder: Path, secrets_dir: Path, run_as: str | None, group: str | None) -> None:
    secrets_dir.chmod(0o750 if group else 0o700)
    for path in secrets_dir.iterdir():
        path.chmod(0o640 if group else 0o600)
        if group:
            shutil.chown(path, group=group)
    if group:
        shutil.chown(secrets_dir, group=group)
    if run_as and os.geteuid() == 0:  # mosquitto reads passwd and acl, and writes data/, as run_as
        for path in [folder / "mosquitto", *(folder / "mosquitto").rglob("*")]:
            shutil.chown(path, user=run_as, group=run_as)
