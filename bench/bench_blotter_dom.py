"""Commit-to-screen latency: from a fill's commit to its row being in a browser blotter's DOM.

    python bench/bench_blotter_dom.py [--orders 50] [--instruments 5] [--blotters 20]
                                      [--speed 60] [--seconds 30]

The whole stack, as a user runs it, on one machine: Daphne serving the real pages and
websockets (a subprocess), the market workers stepping in real time at --speed (a second
process, as Celery workers run beside Daphne), Redis (REDIS_URL or the embedded server) and
a fresh SQLite file (or DATABASE_URL). --blotters headless Chromium pages (Debian's
chromium, driven by Playwright) are logged in as a risk manager, who sees every order.

Each broadcast carries `sent_at`, the server's wall clock just after the commit; the page's
blotter.js records, for every pushed message whose events it applied to the DOM, the wall
time then minus sent_at (same machine, same clock). This script collects those from every
page and prints p50/p95/max, with the same run's websocket-only latency for comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from execution.cli_args import number, whole  # noqa: E402

PASSWORD = "bench-pw"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=whole(1, 1_000_000), default=50)
    ap.add_argument("--instruments", type=whole(1, 1_000_000), default=5)
    ap.add_argument("--blotters", type=whole(1, 1_000_000), default=20)
    ap.add_argument("--speed", type=number(0.0, 1e6, lo_open=True), default=60.0)
    ap.add_argument(
        "--seconds",
        type=number(0.0, 1e6, lo_open=True),
        default=30.0,
        help="wall seconds to measure",
    )
    ap.add_argument(
        "--reduced-motion",
        action="store_true",
        help="pages prefer reduced motion (no flash animations), as a user can choose",
    )
    args = ap.parse_args()
    chromium = (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    )
    if chromium is None:
        print("no Chromium (apt-get install chromium)", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="bench-dom-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ["DJANGO_SETTINGS_MODULE"] = "oversight.settings_test"
    # Daphne, the workers and this process must share one channel-layer namespace.
    os.environ["OVERSIGHT_TEST_CHANNEL_PREFIX"] = f"benchdom{os.getpid()}"
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM calls beside Playwright's loop
    import django

    django.setup()  # settings_test starts the embedded Redis and exports REDIS_URL
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from bench.bench_blotter import make_instruments, submit_orders

    call_command("migrate", verbosity=0)
    trader = User.objects.create_user("bench-trader", password=PASSWORD)
    trader.groups.add(Group.objects.get(name="trader"))
    trader = User.objects.get(pk=trader.pk)
    risk = User.objects.create_user("bench-risk", password=PASSWORD)
    risk.groups.add(Group.objects.get(name="risk_manager"))
    instruments = make_instruments(args.instruments)
    submit_orders(trader, instruments, args.orders)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    logs = (tmp / "daphne.log").open("wb")
    daphne = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "oversight.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=logs,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if daphne.poll() is not None or time.monotonic() > deadline:
                print((tmp / "daphne.log").read_text()[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.2)

        from playwright.sync_api import sync_playwright

        motion = "reduce" if args.reduced_motion else "no-preference"
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                headless=True,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            )
            first = browser.new_context(
                base_url=url, viewport={"width": 1366, "height": 768}, reduced_motion=motion
            )
            page = first.new_page()
            page.goto("/login/")
            page.fill("#id_username", "bench-risk")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(url + "/")
            state = first.storage_state()
            pages = [page]
            for _ in range(args.blotters - 1):
                ctx = browser.new_context(
                    base_url=url,
                    viewport={"width": 1366, "height": 768},
                    storage_state=state,
                    reduced_motion=motion,
                )
                pg = ctx.new_page()
                pg.goto("/")
                pages.append(pg)
            for pg in pages:
                pg.wait_for_selector("#conn.ok", timeout=30_000)
                rows = pg.locator("tbody.order").count()
                assert rows == args.orders, f"a blotter shows {rows} orders, not {args.orders}"

            workers = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "bench" / "bench_blotter.py"),
                    "--run-workers",
                    "--seconds",
                    str(args.seconds),
                    "--speed",
                    str(args.speed),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            worker_report = workers.communicate(timeout=args.seconds + 120)[0].strip()
            time.sleep(1.0)  # the last broadcasts land
            lat: list[float] = []
            apply_ms: list[float] = []
            for pg in pages:
                lat.extend(pg.evaluate("window.oversightLatencyMs"))
                apply_ms.extend(pg.evaluate("window.oversightApplyMs"))
            fills_in_dom = pages[0].locator("tbody[data-fills] tr").count()
            browser.close()
    finally:
        for proc in (workers, daphne):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, 15) if proc is daphne else proc.terminate()
                    proc.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    proc.kill()
        logs.close()

    lat.sort()
    print(
        f"{args.orders} orders on {args.instruments} instruments, {args.blotters} Chromium blotters, "
        f"speed {args.speed:g}x, {args.seconds:g} s; {fills_in_dom:,} fill rows in the first page"
    )
    if not lat:
        print("no pushed update reached a page", file=sys.stderr)
        return 1
    print(
        f"commit-to-DOM latency over {len(lat):,} applied messages: p50 {statistics.median(lat):.1f} ms, "
        f"p95 {_pct(lat, 0.95):.1f} ms, p99 {_pct(lat, 0.99):.1f} ms, max {lat[-1]:.1f} ms"
    )
    apply_ms.sort()
    print(
        f"script time to apply a message: p50 {statistics.median(apply_ms):.2f} ms, "
        f"p95 {_pct(apply_ms, 0.95):.2f} ms, max {apply_ms[-1]:.1f} ms"
    )
    print(worker_report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
