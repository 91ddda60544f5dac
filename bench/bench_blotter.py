"""Commit-to-blotter latency and how many working orders one worker sustains.

    python bench/bench_blotter.py [--orders 50] [--instruments 5] [--blotters 20] [--speed 60]

In one process, against a fresh SQLite file (or DATABASE_URL) and the real Redis channel
layer (REDIS_URL, or the embedded server): 5 market workers (one per instrument) step in
real time at --speed, each step committing its events and broadcasting them after commit;
--blotters websocket consumers (risk managers: they see every order) are connected through
the real ASGI application. For every broadcast we record the wall time from just after the
commit to its arrival at each blotter socket. Then one worker alone works all the orders at
60x and we record how far behind wall time its simulated clock falls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from execution.cli_args import number, whole  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=whole(1, 1_000_000), default=50)
    ap.add_argument("--instruments", type=whole(1, 1_000_000), default=5)
    ap.add_argument("--blotters", type=whole(1, 1_000_000), default=20)
    ap.add_argument("--speed", type=number(0.0, 1e6, lo_open=True), default=60.0)
    ap.add_argument(
        "--seconds",
        type=number(0.0, 1e6, lo_open=True),
        default=20.0,
        help="wall seconds to measure",
    )
    ap.add_argument("--run-workers", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_workers:
        return run_workers_process(args)

    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "oversight.settings_test"
    # The workers' process must broadcast in this process's channel-layer namespace.
    os.environ["OVERSIGHT_TEST_CHANNEL_PREFIX"] = f"bench{os.getpid()}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from oversight.asgi import application

    trader = User.objects.create_user("bench-trader", password="x")
    trader.groups.add(Group.objects.get(name="trader"))
    trader = User.objects.get(pk=trader.pk)
    risk = User.objects.create_user("bench-risk", password="x")
    risk.groups.add(Group.objects.get(name="risk_manager"))
    client = Client()
    client.force_login(risk)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    instruments = make_instruments(args.instruments)
    submit_orders(trader, instruments, args.orders)

    latencies: list[float] = []
    # The workers run in their own process, as Celery workers do beside Daphne.
    proc: list[subprocess.Popen[str]] = []

    def run_workers() -> None:
        proc.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--run-workers",
                    "--seconds",
                    str(args.seconds),
                    "--speed",
                    str(args.speed),
                ],
                stdout=subprocess.PIPE,
                text=True,
                env=os.environ.copy(),
            )
        )

    async def blotters() -> None:
        comms = [
            WebsocketCommunicator(
                application,
                "/ws/blotter/",
                headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)],
            )
            for _ in range(args.blotters)
        ]
        for c in comms:
            ok, _ = await c.connect(timeout=10)
            assert ok
        run_workers()
        deadline = time.monotonic() + args.seconds

        async def listen(c: WebsocketCommunicator) -> None:
            while time.monotonic() < deadline:
                if await c.receive_nothing(timeout=0.2):
                    continue
                msg = await c.receive_json_from(timeout=5)
                if msg.get("sent_at"):
                    latencies.append(time.time() - msg["sent_at"])

        await asyncio.gather(*(listen(c) for c in comms))
        for c in comms:
            await c.disconnect()

    async_to_sync(blotters)()
    lat = sorted(latencies)
    worker_report = proc[0].communicate(timeout=60)[0].strip()
    print(
        f"orders {args.orders} on {args.instruments} instruments, {args.blotters} blotters, speed {args.speed:g}x, {args.seconds:g} s"
    )
    if lat:
        print(
            f"commit-to-blotter latency over {len(lat):,} deliveries: p50 {1e3 * statistics.median(lat):.1f} ms, "
            f"p95 {1e3 * lat[int(0.95 * (len(lat) - 1))]:.1f} ms, max {1e3 * lat[-1]:.1f} ms"
        )
    print(worker_report)
    return 0


def make_instruments(n: int) -> list[Any]:
    """n instruments BN0.. from the repo's demo scenarios."""
    from execution.models import Instrument

    files = sorted((ROOT / "execution" / "scenarios").glob("*.json"))
    out = []
    for i in range(n):
        data = json.loads(files[i % len(files)].read_text())
        data["instrument"]["symbol"] = f"BN{i}"
        inst = data["instrument"]
        out.append(
            Instrument.objects.create(
                symbol=inst["symbol"],
                scenario=data,
                tick_size=Decimal(str(inst["tick_size"])),
                reference_price=Decimal(str(inst["reference_price"])),
                adv_shares=inst["adv_shares"],
            )
        )
    return out


def submit_orders(trader: Any, instruments: list[Any], n: int) -> None:
    """n full-day orders of 0.2% ADV, round-robin over instruments and strategies. They
    are not dispatched to Celery: the bench runs the workers itself."""
    import execution.services as services
    from execution.services import parent_order_submit

    services.dispatch_order = lambda _id: None  # type: ignore[assignment]
    blocked = 0
    for k in range(n):
        inst = instruments[k % len(instruments)]
        order = parent_order_submit(
            user=trader,
            instrument=inst,
            # One side per instrument: a buy against the same trader's open sell is blocked
            # as a possible wash trade, and alternating sides left 32 of the 50 blocked.
            side="buy" if (k % len(instruments)) % 2 else "sell",
            # Distinct sizes: the same order twice within a minute is a duplicate (blocked).
            quantity=int(inst.adv_shares * 0.002) + k,
            start_minute=0,
            end_minute=390,
            strategy=["twap", "vwap", "pov", "is"][k % 4],
            params={},
        )
        blocked += order.status == "BLOCKED"
    if blocked:
        print(f"{blocked} of {n} orders blocked by pre-trade risk", file=sys.stderr)


def run_workers_process(args: argparse.Namespace) -> int:
    import django

    django.setup()
    from execution.models import Instrument
    from execution.worker import MarketWorker

    workers = [
        MarketWorker(i, speed=args.speed)
        for i in Instrument.objects.filter(symbol__startswith="BN")
    ]
    for w in workers:
        w.claim()
    deadline = time.monotonic() + args.seconds
    worst_lag = 0.0
    while time.monotonic() < deadline:
        for w in workers:
            w.step()
            worst_lag = max(worst_lag, w.sim_target - w.market.now)
        time.sleep(0.05)
    working = sum(1 for w in workers for o in w.engine.orders.values() if not o.parent.is_done)
    print(
        f"{len(workers)} workers in one process: {working} orders still working after {args.seconds:g} s; "
        f"simulated clock at most {worst_lag:.1f} sim-s behind wall time x speed"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
