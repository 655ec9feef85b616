#!/bin/sh
# Install the fabmeter agent on Raspberry Pi OS (run as root from a clone of the repository):
#   sudo deploy/install-agent.sh
# then edit /etc/fabmeter/agent.toml, put the agent's MQTT password in
# /etc/fabmeter/secrets/<agent-id>.password and: systemctl enable --now fabmeter-agent
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-lgpio python3-evdev chrony

id fabmeter >/dev/null 2>&1 || adduser --system --group --home /var/lib/fabmeter fabmeter
for group in gpio dialout input; do
    getent group "$group" >/dev/null || addgroup --system "$group"
    adduser fabmeter "$group" >/dev/null
done

mkdir -p /opt/fabmeter /etc/fabmeter/secrets
cp -r "$here/deploy" /opt/fabmeter/ && cp "$here/README.md" /opt/fabmeter/
# lgpio (GPIO) and evdev (USB badge readers) come from Debian; the venv sees them
[ -d /opt/fabmeter/venv ] || python3 -m venv --system-site-packages /opt/fabmeter/venv
/opt/fabmeter/venv/bin/pip install --quiet --upgrade pip
/opt/fabmeter/venv/bin/pip install --quiet "$here[agent]"

[ -f /etc/fabmeter/agent.toml ] || cp "$here/deploy/agent.example.toml" /etc/fabmeter/agent.toml
chown -R root:fabmeter /etc/fabmeter && chmod 750 /etc/fabmeter/secrets
cp "$here/deploy/udev/99-fabmeter.rules" /etc/udev/rules.d/ && udevadm control --reload-rules && udevadm trigger
cp "$here/deploy/systemd/fabmeter-agent.service" /etc/systemd/system/
systemctl daemon-reload
echo "installed: edit /etc/fabmeter/agent.toml, then: systemctl enable --now fabmeter-agent"
