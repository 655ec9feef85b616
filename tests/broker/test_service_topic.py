"""The out-of-service topic through a real mosquitto with the generated ACL, and across the bridge."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

from click.testing import CliRunner

from broker import topics
from broker.bridge import IN_KINDS, Bridge, bridge_conf
from broker.services import PrivateMosquitto, free_port
from fabmeter import main
from tests.recorder import Recorder

SITE = """
[[agents]]
id = "pi-laser"
machines = ["laser-1"]

[[agents]]
id = "pi-printer"
machines = ["printer-1"]
"""


def test_an_agent_reads_the_service_orders_of_its_own_machines_only(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "site.toml").write_text(SITE)
    out = tmp_path / "broker"
    result = CliRunner().invoke(main, ["broker", "config", "--registry", str(tmp_path / "site.toml"), "--out", str(out),
                                       "--listen", f"127.0.0.1:{port}", "--run-as", getpass.getuser()])  # fmt: skip
    assert result.exit_code == 0, result.output
    broker = PrivateMosquitto(tmp_path / "run", port=port, conf=out / "mosquitto.conf")
    broker.start()
    secret = {u: (out / "secrets" / f"{u}.password").read_text().strip() for u in ("billing", "pi-laser")}
    billing = Recorder(port, "billing", secret["billing"], client_id="billing")
    agent = Recorder(port, "pi-laser", secret["pi-laser"], client_id="pi-laser")
    try:
        assert billing.connect() == "Success" and agent.connect() == "Success"
        for machine in ("laser-1", "printer-1"):
            billing.publish(topics.machine_service(machine), machine.encode(), retain=True)
        agent.subscribe(topics.machine_service("laser-1"))
        agent.subscribe(topics.machine_service("printer-1"))
        assert agent.wait_for(lambda msgs: any(m.payload == b"laser-1" for m in msgs))
        time.sleep(0.5)  # the other machine's retained order, were the ACL wrong, would be here by now
        assert [m.payload for m in agent.messages] == [b"laser-1"]
        agent.publish(topics.machine_service("laser-1"), b"forged", retain=True)  # an agent cannot write it
        billing.subscribe(topics.machine_service("laser-1"))
        assert billing.wait_for(lambda msgs: any(m.payload == b"laser-1" for m in msgs))
        assert all(m.payload != b"forged" for m in billing.messages)
    finally:
        billing.close()
        agent.close()
        broker.kill()


def test_the_bridge_brings_service_orders_to_the_site() -> None:
    assert "service" in IN_KINDS
    text = bridge_conf(Bridge("van", ("central.example.org", 8883), "site-van", "pw"))
    assert f"topic {topics.pattern('service')} in 1" in text
