#!/bin/sh
# Install the fabmeter server (broker, Redis, billing, dashboard) on Debian, as root:
#   sudo deploy/install-server.sh /path/to/site.toml
# site.toml lists the agents and their machines (see README, "Broker configuration").
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
registry=${1:?usage: install-server.sh SITE.toml}

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv mosquitto redis-server sqlite3

id fabmeter >/dev/null 2>&1 || adduser --system --group --home /var/lib/fabmeter fabmeter
mkdir -p /opt/fabmeter /etc/fabmeter/secrets /var/backups/fabmeter
chown fabmeter:fabmeter /var/backups/fabmeter
cp -r "$here/deploy" /opt/fabmeter/ && cp "$here/README.md" /opt/fabmeter/
[ -d /opt/fabmeter/venv ] || python3 -m venv /opt/fabmeter/venv
/opt/fabmeter/venv/bin/pip install --quiet --upgrade pip
/opt/fabmeter/venv/bin/pip install --quiet "$here[server]"

# the secrets (pepper, dashboard key, ledger key, archive signing key, broker passwords) in /etc/fabmeter/secrets and
# Mosquitto's listener, ACL and passwords in /etc/fabmeter/mosquitto, included from Debian's unit
/opt/fabmeter/venv/bin/fabmeter setup /etc/fabmeter --registry "$registry" --listen 0.0.0.0:1883 \
    --run-as mosquitto --group fabmeter ${FABMETER_TLS_CERT:+--tls-cert "$FABMETER_TLS_CERT" --tls-key "$FABMETER_TLS_KEY"}
mkdir -p /etc/systemd/system/mosquitto.service.d
cp "$here/deploy/mosquitto/fabmeter-override.conf" /etc/systemd/system/mosquitto.service.d/fabmeter.conf

[ -f /etc/fabmeter/server.toml ] || cp "$here/deploy/server.example.toml" /etc/fabmeter/server.toml
chown root:fabmeter /etc/fabmeter/server.toml

cp "$here"/deploy/systemd/fabmeter-*.service "$here"/deploy/systemd/fabmeter-*.timer /etc/systemd/system/
systemctl daemon-reload
systemctl restart mosquitto redis-server
systemctl enable --now fabmeter-billing fabmeter-dashboard fabmeter-backup.timer
echo "installed. Create the first admin: sudo -u fabmeter /opt/fabmeter/venv/bin/fabmeter admin create-user --config /etc/fabmeter/server.toml"
