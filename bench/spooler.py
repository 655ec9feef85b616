"""Print spooler benchmark: several spoolers (as gunicorn workers) draining one queue of jobs.

    python bench/spooler.py                        # 400 jobs, 4 spoolers, a SQLite file
    python bench/spooler.py --jobs 1000 --spoolers 8 --url postgresql+psycopg://127.0.0.1/test

Prints one ``name: value`` line per figure: how many jobs each spooler printed, how many were
printed twice or never (both must be 0), and jobs per second through the claims. The printer
is a transport that only counts, so the figure is the cost of claiming and rendering.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy.orm import sessionmaker  # noqa: E402

from billing.catalogue import add_item  # noqa: E402
from billing.config import OrganisationConfig  # noqa: E402
from billing.database import make_engine, upgrade  # noqa: E402
from billing.ledger.printing import PrintSpooler, reprint  # noqa: E402
from billing.ledger.receipts import close_with_receipt  # noqa: E402
from billing.seed import seed  # noqa: E402
from billing.visits import open_visit  # noqa: E402

ORG = OrganisationConfig(name="Fablab", address="1 place de la Mairie", siret="000 000 000 00000")


class Counting:
    def __init__(self) -> None:
        self.copies: list[int] = []
        self._lock = threading.Lock()

    def send(self, data: bytes) -> None:
        copy = int(data.split(b"DUPLICATA n\xf8 ")[1].split(b"\n")[0])
        with self._lock:
            self.copies.append(copy)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--spoolers", type=int, default=4)
    parser.add_argument("--url", default=None, help="a database URL (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{folder}/bench.db"
        upgrade(url)
        sessions = sessionmaker(make_engine(url), expire_on_commit=False)
        with sessions() as db:
            seed(db)
            visit = open_visit(db, pepper="bench", category="walk-in", actor="bench").visit
            add_item(db, visit.id, "plywood-3mm", Decimal("1"), actor="bench")
            db.commit()
            document = close_with_receipt(db, visit.id, "card", actor="bench", organisation=ORG)
            for _ in range(args.jobs):
                reprint(db, document.id, actor="bench")
            db.commit()
        printers = [Counting() for _ in range(args.spoolers)]
        spoolers = [PrintSpooler(sessions, p, tz=ZoneInfo("Europe/Paris")) for p in printers]
        started = time.perf_counter()
        for spooler in spoolers:
            spooler.start()
        for spooler in spoolers:
            spooler.wait_idle(600)
        elapsed = time.perf_counter() - started
        for spooler in spoolers:
            spooler.stop()
    counts = Counter(copy for p in printers for copy in p.copies)
    print(f"spoolers: {args.spoolers}")
    print(f"jobs: {args.jobs}")
    print(f"printed_per_spooler: {[len(p.copies) for p in printers]}")
    print(f"printed_twice: {sum(1 for n in counts.values() if n > 1)}")
    print(f"never_printed: {args.jobs - len(counts)}")
    print(f"jobs_per_s: {args.jobs / elapsed:.0f}")


if __name__ == "__main__":
    main()
