from __future__ import annotations

import re
from pathlib import Path

import pytest

from broker import topics
from broker.errors import BadMessage

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("kind", sorted(topics.KINDS))
def test_every_topic_builds_and_parses_back(kind: str) -> None:
    topic = topics.build(kind, "pi-laser")
    assert topics.parse(topic) == topics.Topic(kind, "pi-laser")


def test_builders_follow_the_table() -> None:
    assert topics.agent_events("pi-1") == "fabmeter/v1/agent/pi-1/events"
    assert topics.auth_req("pi-1") == "fabmeter/v1/agent/pi-1/auth/req"
    assert topics.machine_state("printer-1") == "fabmeter/v1/machine/printer-1/state"
    assert topics.pattern("ack") == "fabmeter/v1/agent/+/ack"


@pytest.mark.parametrize(
    "topic",
    ["other/v1/agent/a/status", "fabmeter/v1/agent/A/status", "fabmeter/v1/agent/a/bogus",
     "fabmeter/v1/machine/a/events", "fabmeter/v1/agent//status", "fabmeter/v1/agent/a"],
)  # fmt: skip
def test_foreign_topics_are_refused(topic: str) -> None:
    with pytest.raises(BadMessage):
        topics.parse(topic)


def test_bad_ids_are_refused_when_building() -> None:
    with pytest.raises(BadMessage, match="lowercase letters"):
        topics.agent_status("Pi#1")


def test_readme_documents_every_topic() -> None:
    text = README.read_text()
    documented = set(re.findall(r"`(fabmeter/v1/[a-z/<>_]+)`", text))
    for kind, (level, suffix) in topics.KINDS.items():
        assert f"fabmeter/v1/{level}/<{level}>/{suffix}" in documented, kind
