"""How long a valid first login takes while 60 wrong-password requests arrive at once.

One real SERVER-mode server (uvicorn subprocess, SQLite). Each round a fresh valid user logs in
(so bcrypt runs: nothing is remembered yet) from 127.0.0.2 while 60 parallel requests from
127.0.0.1 guess passwords. The server limits each client address on its own: a user sharing
the attacker's address would be told 429, retry in 1 s. The baseline is the same request with
no flood, measured in the same run. It runs twice: the 60 guesses aimed at one user, then
spread over 60 user names (password spraying).

    python benchmarks/login_flood.py [--rounds 3] [--flood 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import Server, add_user  # noqa: E402

WHOAMI = "/vapi/other/whoami"


async def _login(url: str, user: str) -> float:
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=300) as http:
        started = time.perf_counter()
        answer = await http.get(WHOAMI, auth=(user, f"{user}-pw"))
        assert answer.status_code == 200, answer.text
        return time.perf_counter() - started


async def _round(url: str, user: str, flood: int, spray: bool) -> tuple[float, Counter[int]]:
    limits = httpx.Limits(max_connections=flood + 5, max_keepalive_connections=flood + 5)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as http:
        guesses = [
            asyncio.ensure_future(http.get(WHOAMI, auth=(f"target{i}" if spray else "target", f"guess-{i}")))
            for i in range(flood)
        ]
        await asyncio.sleep(0.05 if flood else 0)  # the flood is in the server when the user arrives
        latency = await _login(url, user)
        answers = await asyncio.gather(*guesses)
    return latency, Counter(a.status_code for a in answers)


def _measure(folder: Path, rounds: int, flood: int, spray: bool) -> tuple[float, float, Counter[int]]:
    db = f"sqlite:///{folder / 'bench.db'}"
    server = Server(folder, db, mode="SERVER", VIX_ADMIN_PASSWORD="bench")
    server.start()
    try:
        names = [f"user{i}" for i in range(2 * rounds)]
        for name in ["target", *names]:
            add_user(db, name, f"{name}-pw")
        quiet = [asyncio.run(_round(server.url, name, 0, spray))[0] for name in names[:rounds]]
        statuses: Counter[int] = Counter()
        flooded = []
        for name in names[rounds:]:
            latency, answers = asyncio.run(_round(server.url, name, flood, spray))
            flooded.append(latency)
            statuses += answers
    finally:
        server.stop()
    return statistics.median(quiet), statistics.median(flooded), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flood", type=int, default=60)
    args = parser.parse_args()
    for label, spray in (("guesses at one user", False), ("guesses spread over as many users", True)):
        with tempfile.TemporaryDirectory() as tmp:
            quiet, flooded, statuses = _measure(Path(tmp), args.rounds, args.flood, spray)
        print(f"{label}:")
        print(f"  valid first login, no flood        : median {quiet * 1000:8.1f} ms")
        print(f"  valid first login, {args.flood} wrong at once : median {flooded * 1000:8.1f} ms")
        print(f"  ratio flood/no flood               : {flooded / quiet:8.2f}x")
        print(f"  the flood's answers                : {dict(sorted(statuses.items()))}")


if __name__ == "__main__":
    main()
