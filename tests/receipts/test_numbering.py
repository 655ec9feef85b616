"""Numbers under concurrency: closes that race each other get consecutive numbers, never twice."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from billing.ledger.chain import verify
from billing.ledger.documents import Document
from billing.ledger.receipts import close_with_receipt
from tests.receipts.conftest import ORG, walk_in

WORKERS = 4
EACH = 5


def _race(engine: Engine, visits: list[list[int]]) -> list[BaseException]:
    """Each worker closes its visits on its own connection; all start at the same instant."""
    start = threading.Barrier(len(visits))
    errors: list[BaseException] = []
    factory = sessionmaker(engine, expire_on_commit=False)

    def work(mine: list[int]) -> None:
        with factory() as db:
            start.wait()
            for visit_id in mine:
                try:
                    close_with_receipt(db, visit_id, "card", actor="desk", organisation=ORG)
                except BaseException as err:  # noqa: BLE001 - collected and asserted on below
                    errors.append(err)

    threads = [threading.Thread(target=work, args=(mine,)) for mine in visits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_racing_closes_get_consecutive_numbers_without_gap_or_duplicate(any_engine: Engine) -> None:
    with Session(any_engine) as db:
        ids = [walk_in(db, ("mdf-3mm", "1")) for _ in range(WORKERS * EACH)]
    errors = _race(any_engine, [ids[i::WORKERS] for i in range(WORKERS)])
    assert errors == []
    with Session(any_engine) as db:
        numbers = sorted(db.scalars(select(Document.number).where(Document.series == "R")))
        visits = sorted(v for v in db.scalars(select(Document.visit_id)) if v is not None)
        assert numbers == list(range(1, WORKERS * EACH + 1))
        assert visits == sorted(ids)
        assert verify(db) is None


def test_two_desks_closing_the_same_visit_issue_one_receipt(any_engine: Engine) -> None:
    with Session(any_engine) as db:
        visit = walk_in(db, ("mdf-3mm", "1"))
    errors = _race(any_engine, [[visit], [visit]])
    assert len(errors) == 1 and "closed" in str(errors[0])
    with Session(any_engine) as db:
        assert list(db.scalars(select(Document.number))) == [1]
        assert verify(db) is None
