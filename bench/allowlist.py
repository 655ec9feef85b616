"""Allow-list benchmark: what one offline PIN check costs an agent, and what reversing a list costs.

    python bench/allowlist.py                       # the default cost (2 passes over 8 MiB)
    python bench/allowlist.py --time-cost 3 --memory-kib 32768 --checks 20

Run it on the agent's own Pi to choose ``allowlist_time_cost`` / ``allowlist_memory_kib``: a Pi
Zero 2 W must check a PIN in at most 0.3 s. Prints ``name: value`` lines: the time per check
(median of ``--checks``), then the cost of reversing one list by trying all 10^6 six-digit PINs
against its salt, on this machine with every core busy. Each list has a fresh salt, so that cost
is paid again for every list.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broker.messages import credential_digest  # noqa: E402

PINS = 10**6


def _check_s(time_cost: int, memory_kib: int) -> float:
    started = time.perf_counter()
    credential_digest("pin", "482913", os.urandom(16).hex(), time_cost=time_cost, memory_kib=memory_kib)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-cost", type=int, default=2)
    parser.add_argument("--memory-kib", type=int, default=8_192)
    parser.add_argument("--checks", type=int, default=10)
    args = parser.parse_args()
    single = statistics.median(_check_s(args.time_cost, args.memory_kib) for _ in range(args.checks))
    cores = os.cpu_count() or 1
    batch = cores * max(args.checks, 4)
    with ProcessPoolExecutor(cores) as pool:  # all cores at once, as an attacker would
        list(pool.map(_check_s, [1] * cores, [8] * cores))  # start the workers outside the timing
        started = time.perf_counter()
        list(pool.map(_check_s, [args.time_cost] * batch, [args.memory_kib] * batch))
        per_hash_all_cores = (time.perf_counter() - started) / batch
    reverse_h = PINS * per_hash_all_cores / 3600
    print(f"argon2id: time_cost={args.time_cost} memory_kib={args.memory_kib} parallelism=1")
    print(f"check_s: {single:.3f}  (one PIN typed offline; must be <= 0.3 on a Pi Zero 2 W)")
    print(f"cores: {cores}")
    print(f"reverse_one_list_h: {reverse_h:.1f}  (all {PINS:,} PINs against one list's salt, all cores)")
    print(f"reverse_one_list_core_h: {PINS * single / 3600:.1f}  (the same on one core)")


if __name__ == "__main__":
    main()
