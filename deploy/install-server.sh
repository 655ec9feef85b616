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

# Mosquitto: our listener, ACL and passwords, included from Debian's conf.d
/opt/fabmeter/venv/bin/fabmeter broker config --registry "$registry" --out /etc/fabmeter/mosquitto \
    --listen 0.0.0.0:1883 --run-as mosquitto ${FABMETER_TLS_CERT:+--tls-cert "$FABMETER_TLS_CERT" --tls-key "$FABMETER_TLS_KEY"}
chown -R mosquitto:mosquitto /etc/fabmeter/mosquitto
cp /etc/fabmeter/mosquitto/secrets/billing.password /etc/fabmeter/secrets/billing.password
mkdir -p /etc/systemd/system/mosquitto.service.d
cp "$here/deploy/mosquitto/fabmeter-override.conf" /etc/systemd/system/mosquitto.service.d/fabmeter.conf

# secrets that live outside the database
for secret in secret_key pepper ledger.key; do
    [ -f /etc/fabmeter/secrets/$secret ] || head -c 32 /dev/urandom | base64 > /etc/fabmeter/secrets/$secret
done
[ -f /etc/fabmeter/secrets/archive.key ] || openssl genpkey -algorithm ed25519 -out /etc/fabmeter/secrets/archive.key
[ -f /etc/fabmeter/server.toml ] || cp "$here/deploy/server.example.toml" /etc/fabmeter/server.toml
chown -R root:fabmeter /etc/fabmeter/secrets /etc/fabmeter/server.toml
chmod 640 /etc/fabmeter/secrets/* && chmod 750 /etc/fabmeter/secrets

cp "$here"/deploy/systemd/fabmeter-*.service "$here"/deploy/systemd/fabmeter-*.timer /etc/systemd/system/
systemctl daemon-reload
systemctl restart mosquitto redis-server
systemctl enable --now fabmeter-billing fabmeter-dashboard fabmeter-backup.timer
echo "installed. Create the first admin: sudo -u fabmeter /opt/fabmeter/venv/bin/fabmeter admin create-user --config /etc/fabmeter/server.toml"
