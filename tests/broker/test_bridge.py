"""A van's broker bridged to the central one: events sent while the link is cut arrive later."""

from __future__ import annotations

import getpass
from pathlib import Path

from click.testing import CliRunner

from broker import topics
from broker.services import PrivateMosquitto, free_port
from fabmeter import main
from tests.proxy import FaultProxy
from tests.recorder import Recorder

SITE = """
[[agents]]
id = "pi-van"
machines = ["laser-van"]

[[sites]]
id = "van"
agents = ["pi-van"]
"""


def invoke(*args: str) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output


def test_events_published_while_the_bridge_is_cut_arrive_once_it_is_back(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "site.toml").write_text(SITE)
    central_dir = tmp_path / "central"
    invoke("broker", "config", "--registry", str(tmp_path / "site.toml"), "--out", str(central_dir),
           "--listen", f"127.0.0.1:{port}", "--run-as", getpass.getuser())  # fmt: skip
    central = PrivateMosquitto(tmp_path / "central-run", port=port, conf=central_dir / "mosquitto.conf")
    central.start()
    proxy = FaultProxy(upstream_port=port).start()
    bridge_conf = tmp_path / "bridge.conf"
    invoke("broker", "bridge", "--name", "van", "--remote", f"127.0.0.1:{proxy.port}",
           "--password-file", str(central_dir / "secrets" / "site-van.password"),
           "--out", str(bridge_conf))  # fmt: skip
    van = PrivateMosquitto(tmp_path / "van", extra=bridge_conf.read_text())
    van.start()
    billing = Recorder(port, "billing", (central_dir / "secrets" / "billing.password").read_text().strip(),
                       client_id="billing", timeout=20)  # fmt: skip
    agent = Recorder(van.port, client_id="pi-van")
    try:
        assert billing.connect() == "Success"
        billing.client.subscribe(topics.agent_events("pi-van"), qos=1)
        agent.connect()
        agent.subscribe(topics.agent_ack("pi-van"))
        events = topics.agent_events("pi-van")

        agent.publish(events, b"0")
        assert billing.wait_for(lambda msgs: len(msgs) == 1), "the bridge never came up"

        proxy.mode = "blackhole"  # a silent link first, then a hard cut
        for i in range(1, 51):
            agent.publish(events, str(i).encode())
        proxy.mode = "reset"
        proxy.reset_all()
        for i in range(51, 101):
            agent.publish(events, str(i).encode())
        proxy.mode = "pass"

        assert billing.wait_for(lambda msgs: {int(m.payload) for m in msgs} == set(range(101)), 60)
        # and what billing sends back reaches the van
        billing.publish(topics.agent_ack("pi-van"), b"ack", retain=True)
        assert agent.wait_for(lambda msgs: any(m.payload == b"ack" for m in msgs), 20)
    finally:
        billing.close()
        agent.close()
        van.kill()
        proxy.close()
        central.kill()
