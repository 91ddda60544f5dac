"""A market worker: one instrument's simulated market, every working order on it, persisted.

It owns the instrument's MarketSession (at most one RUNNING per instrument, enforced by a
unique constraint), paces simulated time at `speed` times wall time, picks up new orders
and control requests at each step, and writes each step's events and their projections in
one transaction, broadcasting them only after it commits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from execution.algos.adaptive import Adaptive
from execution.algos.base import Replan
from execution.algos.params import ParamError
from execution.engine.engine import ExecutionEngine, ParentOrderSpec
from execution.engine.events import (
    ChildDenied,
    ChildEvent,
    ChildFilled,
    ChildSubmitted,
    DomainEvent,
    ParentAmended,
    ParentReplanned,
    ParentStatusChanged,
    ParentStrategyFallback,
)
from execution.engine.orders import InvalidTransition, ParentStatus, ticks_to_px
from execution.engine.risk import RiskGate
from execution.events_codec import event_to_json
from execution.learning.decision_log import DecisionRecorder, EpisodeInfo, EpisodeLog
from execution.model_registry import model_path
from execution.models import (
    SUSPENDED,
    ChildOrder,
    ControlRequest,
    Fill,
    Instrument,
    MarketSession,
    OrderEvent,
    ParentOrder,
)
from execution.selectors import market_day_next, order_market_day
from execution.services import (
    blocked_expire,
    broadcast_events,
    held_cancel,
    held_end,
    order_status_set,
)
from execution.sim.calibration import SESSION_SECONDS
from execution.sim.market import Market
from execution.sim.scenario import parse_scenario
from execution.worker_risk import WorkerRisk
from oversight.audit import audit_record, audit_records
from oversight.risk.models import Override, RiskException
from oversight.risk.notify import control_channel
from oversight.risk.selectors import ORDER_ENDED
from oversight.risk.services import (
    exception_raise,
    exceptions_escalate,
    exceptions_resend,
    halts_apply_to_unheld,
    limit_requests_expire,
)

logger = logging.getLogger(__name__)
# A worker whose heartbeat is older than this is declared dead and its orders suspended.
# Heartbeats go every 0.25 s; the reaper runs every second in every live worker, and every
# 5 s from the oversight worker's beat (oversight.workers_watch_scheduled, for when every
# market worker is hung), so a lost worker is flagged within about 5 to 9 s of its last
# heartbeat.
HEARTBEAT_STALE_S = 4.0
# One step covers at most this much wall time's worth of the market (speed x this, in
# simulated seconds). A worker that fell behind (a slow step, a machine that stalled or
# slept) catches up over several short steps, each polling and writing its heartbeat,
# instead of in one long step that outlasts HEARTBEAT_STALE_S and has a peer declare it
# dead and suspend its orders.
MAX_STEP_WALL_S = 1.0


class SessionTaken(Exception):
    """Another worker runs this instrument's market."""


class SessionLost(Exception):
    """This worker's session was declared dead (its heartbeat went stale): another worker
    may own the market now, so this one must stop without writing anything more."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class MarketWorker:
    def __init__(
        self,
        instrument: Instrument,
        *,
        speed: float,
        seed: int | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        poll_interval_s: float = 0.25,
    ) -> None:
        self.instrument = instrument
        # New orders, controls and the heartbeat are database round trips: at most this
        # often (real time), which at 60x is well inside one 30-second decision step.
        self.poll_interval_s = poll_interval_s
        self._next_poll = 0.0
        self.speed = speed
        self.wall_clock = wall_clock
        data = dict(instrument.scenario)
        # The scenario's own order is not traded; a placeholder keeps the format valid.
        data["order"] = {
            "side": "buy",
            "quantity": 1,
            "start_minute": 0,
            "end_minute": 390,
            "limit_price": None,
        }
        self.scenario = parse_scenario(data)
        self.base_seed = self.scenario.seed if seed is None else seed
        self.day, self.seed = 1, self.base_seed
        self.market = Market(self.scenario, self.seed)
        self.engine = self._engine()
        self.risk = WorkerRisk(self)
        self._wake = threading.Event()
        self._listener: threading.Thread | None = None
        self._closing = False
        # Set (from a SIGTERM handler, see execution/tasks.py) to end the loop after its
        # step: the session is then released in order, its open orders suspended.
        self.stop_requested = False
        self._orders_added = False
        self.session: MarketSession | None = None
        self._published = 0
        self._orders: dict[str, ParentOrder] = {}
        # Controls applied to the engine, marked applied (and audited) in the commit of the
        # step that carries their effect, only while this session runs: a worker declared
        # dead marked a cancel "applied" that its successor then never applied (a review).
        self._controls_done: list[tuple[ControlRequest, str]] = []
        self._undo: list[tuple[Any, str, Any]] = []  # cached fields a failed commit restores
        self._child_rows: dict[str, ChildOrder] = {}
        self._wall_start = 0.0
        # The adaptive orders' decision log (settings.DECISION_LOG_DIR; None: off). Files
        # are written by one background thread, so a write never holds up a step.
        log_dir = getattr(settings, "DECISION_LOG_DIR", None)
        self._decision_dir: Path | None = Path(log_dir) if log_dir else None
        self._decisions: DecisionRecorder | None = None
        self._decision_writer: ThreadPoolExecutor | None = None

    # -- ownership ----------------------------------------------------------------------

    def claim(self) -> MarketSession:
        sessions_reap(instrument=self.instrument)  # a dead owner must not block the market
        day, start_ts = market_day_next(self.instrument)
        try:
            with transaction.atomic():
                self.session = MarketSession.objects.create(
                    instrument=self.instrument,
                    worker=worker_name(),
                    seed=self._seed_of(day),
                    speed=self.speed,
                    day=day,
                    start_ts=start_ts,
                    sim_ts=start_ts,
                    heartbeat_at=timezone.now(),
                )
        except IntegrityError:
            raise SessionTaken(self.instrument.symbol) from None
        self._open_day(day, start_ts)
        audit_record(
            actor=None,
            action="session.start",
            obj=self.session,
            after={
                "instrument": self.instrument.symbol,
                "day": day,
                "start_ts": start_ts,
                "seed": self.seed,
                "speed": self.speed,
            },
        )
        return self.session

    def _engine(self) -> ExecutionEngine:
        # Every child this worker sends passes the firm's risk gate (limits, kill switches).
        return ExecutionEngine(self.market, risk=RiskGate(self.market.cal.tick_size))

    def _seed_of(self, day: int) -> int:
        return self.base_seed + day - 1  # each day its own, reproducible, market

    def _open_day(self, day: int, start_ts: float) -> None:
        """The market as it stood at start_ts of that day. The day's background flow is
        drawn up front from its seed, so replaying it to start_ts rebuilds the books the
        last session saw; only the lasting impact of earlier sessions' own trading is not
        carried over (a known limit, documented in docs/SIMULATOR.md)."""
        self.day, self.seed = day, self._seed_of(day)
        if start_ts > 0 or self.market.seed != self.seed:
            self.market = Market(self.scenario, self.seed)
            self.engine = self._engine()
            if start_ts > 0:
                self.market.advance(start_ts)
        # Wall time is anchored so that sim_target starts at start_ts.
        self._wall_start = self.wall_clock() - start_ts / self.speed

    def release(self, status: str = MarketSession.STOPPED) -> None:
        """Give the market up. Orders still open are suspended (their venues go with the
        market, so their working children are cancelled) for a trader to resume."""
        self._closing = True
        self._decision_log_close()
        if getattr(self, "_pubsub", None) is not None:
            with contextlib.suppress(redis.RedisError):
                self._pubsub.close()
        if self.session is not None:
            self._persist()
            self.risk.reconcile()
            open_ids = [
                self._orders[eid].pk
                for eid, w in self.engine.orders.items()
                if not w.parent.is_done
            ]
            # And any this session took and never set working (a step that failed between
            # taking a new order and adding it): they would wait for it for ever.
            open_ids += ParentOrder.objects.filter(
                session=self.session, status__in=OPEN_STATUSES
            ).values_list("pk", flat=True)
            # One commit: a control that waited on an order's lock then finds it
            # suspended by a stopped session, so nobody holds it and the service acts.
            with transaction.atomic():
                MarketSession.objects.filter(pk=self.session.pk).update(
                    status=status, sim_ts=self.market.now
                )
                if open_ids:
                    suspend_orders(
                        ParentOrder.objects.filter(pk__in=open_ids),
                        reason="market session stopped",
                    )
            audit_record(
                actor=None, action="session.stop", obj=self.session, after={"status": status}
            )

    # -- the loop -----------------------------------------------------------------------

    @property
    def sim_target(self) -> float:
        elapsed = self.wall_clock() - self._wall_start
        return min(elapsed * self.speed, SESSION_SECONDS)

    def step(self, sim_until: float | None = None) -> int:
        """Advance to `sim_until` (default: where wall time says), persist, broadcast.

        Returns the number of events written.
        """
        assert self.session is not None, "claim() first"
        polled = time.monotonic() >= self._next_poll or self._wake.is_set()
        cause_at = timezone.now()  # what this step shows happened by now (wall clock)
        if polled:
            self._wake.clear()
            self._next_poll = time.monotonic() + self.poll_interval_s
            # Nothing polled is acted on by a session declared dead (a worker that stalled
            # past the heartbeat limit), not even a kill's acknowledgement.
            self._assert_alive()
            # Kill switches and limits first: a kill must not wait behind new orders.
            with transaction.atomic():  # one commit for the kill's acks, not one per order
                self.risk.refresh()
            self._pick_up_orders()
            self._apply_controls()
            if self._orders_added:
                with transaction.atomic():  # new orders get their limits before trading
                    self.risk.refresh()
        if sim_until is None:
            target = min(self.sim_target, self.market.now + self.speed * MAX_STEP_WALL_S)
        else:
            target = sim_until
        if target > self.market.now:
            self.engine.run_until(target)
        if self.market.now >= SESSION_SECONDS:
            self.engine.close_session()  # in this step's commit and broadcast
        return self._persist(heartbeat=polled, cause_at=cause_at)

    @property
    def behind(self) -> bool:
        """More than a step's worth of the market is still to run to reach the wall clock."""
        return self.sim_target - self.market.now > self.speed * MAX_STEP_WALL_S

    @property
    def has_open_orders(self) -> bool:
        return any(not w.parent.is_done for w in self.engine.orders.values())

    def run(
        self, *, idle_exit_s: float = 5.0, tick_s: float = 0.2, max_wall_s: float | None = None
    ) -> None:
        """Step until the session ends, or nothing has been open for idle_exit_s of wall time."""
        started = self.wall_clock()
        idle_since: float | None = None
        next_reap = next_recon = 0.0
        self._listen()
        try:
            while self.market.now < SESSION_SECONDS and not self.stop_requested:
                self.step()
                now = self.wall_clock()
                if now >= next_reap:  # live workers watch over the dead ones' orders
                    sessions_reap(stale_after_s=HEARTBEAT_STALE_S)
                    exceptions_escalate()
                    limit_requests_expire()
                    blocked_expire()
                    next_reap = now + 1.0
                if now >= next_recon:
                    self.risk.reconcile()
                    next_recon = now + 30.0
                if self.has_open_orders or self.orders_waiting():
                    idle_since = None
                else:
                    idle_since = idle_since or now
                    if now - idle_since >= idle_exit_s:
                        break
                if max_wall_s is not None and now - started >= max_wall_s:
                    break
                # Sleep, unless a kill switch, a limit or a control wakes us (notify.py). While
                # a kill's cancels are in flight, step again at once: its ack waits on them.
                # Nor while the market is behind the wall clock: it catches up step by step.
                hurry = self.risk.kills_pending() or self.behind
                self._wake.wait(0.002 if hurry else tick_s)
        except SessionLost:
            logger.error("session %s was declared dead; stopping", self.session)
            self.session = None  # nothing more may be written in its name
        finally:
            self.release()

    def _listen(self) -> None:
        """A thread that sets the wake event when the web process publishes a control
        message; the loop then polls at once instead of at its next interval."""
        try:
            client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(control_channel())
        except redis.RedisError:
            logger.warning("no wake-up channel; polling only", exc_info=True)
            return

        def loop() -> None:
            try:
                for _ in pubsub.listen():
                    self._wake.set()
            except (redis.RedisError, ValueError) as e:
                if not self._closing:  # else: closed at release, as it should be
                    logger.warning("wake-up channel lost (%s); polling only", e)

        # Keep the client: when it is garbage-collected it closes its connection pool, and
        # the subscription with it.
        self._redis_client, self._pubsub = client, pubsub
        self._listener = threading.Thread(target=loop, name="wake", daemon=True)
        self._listener.start()

    # -- orders in ----------------------------------------------------------------------

    def _assert_alive(self, *, lock: bool = False) -> None:
        """Raise SessionLost unless this session still runs. With `lock`, in the caller's
        transaction, the session's row stays locked to its end: the reaper, which marks a
        session DEAD and suspends its orders in one transaction, waits for it."""
        assert self.session is not None
        rows = MarketSession.objects.filter(pk=self.session.pk, status=MarketSession.RUNNING)
        if lock:
            rows = rows.select_for_update(no_key=True)
        if not rows.exists():
            raise SessionLost(str(self.session.pk))

    def orders_waiting(self) -> bool:
        """New orders on this market that no worker has taken."""
        return ParentOrder.objects.filter(
            instrument=self.instrument, status=ParentStatus.NEW.value, session=None
        ).exists()

    def _pick_up_orders(self) -> None:
        assert self.session is not None
        self._orders_added = False
        new = ParentOrder.objects.filter(
            instrument=self.instrument, status=ParentStatus.NEW.value, session=None
        )
        resumed = (
            ParentOrder.objects.filter(
                instrument=self.instrument,
                status=SUSPENDED,
                controls__action=ControlRequest.RESUME,
                controls__applied_at=None,
            )
            .select_related("session")  # its day, read below (order_market_day)
            .distinct()
        )
        for order in [*new, *resumed]:
            # Compare-and-set: only one worker takes an order, and only a running session:
            # one declared dead took a new order that no worker then ever held (a review).
            with transaction.atomic():
                self._assert_alive(lock=True)
                if not ParentOrder.objects.filter(
                    pk=order.pk, session=order.session_id, status=order.status
                ).update(session=self.session):
                    continue
            now = self.market.now
            tick = float(self.instrument.tick_size)
            spec = ParentOrderSpec(
                order_id=order.engine_id,
                side=order.side,
                qty=order.quantity,
                start_s=max(order.start_minute * 60.0, now),
                end_s=order.end_minute * 60.0,
                # An order whose strategy fell back resumes on the fallback, with the
                # parameters it knows (not on the failed one, to fail and alert again).
                strategy=order.running_strategy,
                params=order.running_params(),
                limit_px=order.limit_price,
                prior_filled_qty=order.filled_qty,
                prior_notional_ticks=float(order.avg_price or 0) / tick * order.filled_qty,
                prior_seq=order.last_seq,
                prior_children=ChildOrder.objects.filter(parent=order).count(),
                prior_arrival_px=order.arrival_price,
                prior_market_volume=order.market_volume,
                prior_market_notional_ticks=order.market_notional / tick,
                # A resumed order keeps its schedule, from its window's start: planned from
                # the resume with the whole quantity, it sat idle until that plan caught up
                # with its earlier fills and then traded at twice the pace (a review).
                schedule_start_s=order.start_minute * 60.0 if order.status == SUSPENDED else None,
                # And the re-plan it had, if a resume re-planned it under that worker.
                replan=Replan(**order.replan) if order.replan else None,
            )
            replan_now = None
            if order.status == SUSPENDED:
                asks = ControlRequest.objects.filter(
                    parent=order, action=ControlRequest.RESUME, applied_at=None
                )
                if any(r.changes.get("replan") for r in asks):
                    replan_now = Replan(
                        at_s=now,
                        done=order.filled_qty,
                        others_volume=max(order.market_volume - order.filled_qty, 0.0),
                    )
                asks.update(applied_at=timezone.now(), outcome=f"resumed on {worker_name()}")
                audit_record(
                    actor=None,
                    action="order.resume.applied",
                    obj=order,
                    reason=f"resumed on {worker_name()}",
                )
            # A suspended order of a session on an earlier day, or one entered for an
            # earlier day and never worked (blocked, then released by an override on a
            # later day: a trial): its window is over. The day is read as the services'
            # blocked_expire reads it.
            day = order_market_day(order)
            day_over = (
                (order.session_id is None or order.status == SUSPENDED)
                and day is not None
                and day < self.session.day
            )
            if spec.end_s <= now + 1.0 or day_over:
                why = (
                    f"the window ended at minute {order.end_minute:g}"
                    + (" of an earlier day" if day_over else "")
                    + f"; the market is at {now / 60:.1f}"
                )
                if order.status == SUSPENDED:
                    # It traded: it expires with its fills, as it would have (a review:
                    # REJECTED, its fills dropped out of the day's notional).
                    self._expire_held(order, why)
                else:
                    self._reject(order, why)
                continue
            problem = _override_use(order)
            if problem:
                self._reject(order, problem)
                continue
            try:
                self.engine.add_order(spec)
            except (ParamError, ValueError) as e:
                self._reject(order, str(e))
                continue
            self._bind_model_version(order)
            self._log_decisions(order)
            self._orders[order.engine_id] = order
            if replan_now is not None:
                self.engine.replan(order.engine_id, replan_now)
            self.risk.track(order)
            self._orders_added = True

    def _bind_model_version(self, order: ParentOrder) -> None:
        """An adaptive order trades the exact registered file: the strategy loads it and
        checks its hash at the first decision, falling back to TWAP (and raising an
        exception for the console) if the bytes on disk are not the approved ones."""
        mv = order.model_version
        strategy = self.engine.orders[order.engine_id].strategy
        if mv is None or not isinstance(strategy, Adaptive):
            return
        strategy.model_file = str(model_path(mv))
        strategy.expected_sha256 = mv.sha256

    # -- the decision log -----------------------------------------------------------------

    def _log_decisions(self, order: ParentOrder) -> None:
        """Log an adaptive order's decisions when the decision log is on. Never fails the
        order: a problem is a warning, and the order trades unlogged."""
        if self._decision_dir is None or self.session is None:
            return
        try:
            if self._decisions is None or self._decisions.engine is not self.engine:
                if self._decisions is not None:
                    self._decisions.close()
                self._decisions = DecisionRecorder(self.engine, self._decision_write_later)
            mv = order.model_version
            self._decisions.track(
                order.engine_id,
                EpisodeInfo(
                    episode_id=f"S{self.session.pk}-{order.engine_id}",
                    source="live",
                    instrument=self.instrument.symbol,
                    scenario=self.scenario.name,
                    seed=self.seed,
                    model_version=mv.name if mv is not None else "",
                ),
            )
        except Exception:
            logger.warning("order %s: decision log not started", order.pk, exc_info=True)

    def _decision_write_later(self, episode: EpisodeLog) -> None:
        if self._decision_writer is None:
            self._decision_writer = ThreadPoolExecutor(1, thread_name_prefix="decision-log")
        self._decision_writer.submit(self._decision_write, episode)

    def _decision_write(self, episode: EpisodeLog) -> None:
        assert self._decision_dir is not None
        try:
            path = episode.write(self._decision_dir, date=timezone.now().date().isoformat())
        except Exception:  # a full disk must not stop trading
            logger.warning("decision log of %s not written", episode.info.episode_id, exc_info=True)
        else:
            if path is None:  # stopped before its first decision: there is nothing to log
                logger.info("decision log of %s: no decision to write", episode.info.episode_id)
            else:
                logger.info("decision log of %s written to %s", episode.info.episode_id, path)

    def _decision_log_close(self) -> None:
        """Hand over the episodes still open (their outcome unknown), and wait for the
        files still being written."""
        if self._decisions is not None:
            self._decisions.close(status=SUSPENDED)
        if self._decision_writer is not None:
            self._decision_writer.shutdown(wait=True)
            self._decision_writer = None

    def _expire_held(self, order: ParentOrder, reason: str) -> None:
        with transaction.atomic():
            locked = ParentOrder.objects.select_for_update(no_key=True).get(pk=order.pk)
            held_end(locked, ParentStatus.EXPIRED.value, reason)
            audit_record(actor=None, action="order.expire", obj=order, reason=reason)

    def _reject(self, order: ParentOrder, reason: str) -> None:
        with transaction.atomic():  # an event too, so open blotters show it
            locked = ParentOrder.objects.select_for_update(no_key=True).get(pk=order.pk)
            order_status_set(locked, ParentStatus.REJECTED.value, reason)
            audit_record(actor=None, action="order.reject", obj=order, reason=reason)

    def _apply_controls(self) -> None:
        ids = [o.pk for o in self._orders.values()]
        done = {req.pk for req, _ in self._controls_done}  # a step that failed, written again
        for req in ControlRequest.objects.filter(parent_id__in=ids, applied_at=None).select_related(
            "parent"
        ):
            if req.pk in done:
                continue
            eid = f"P{req.parent_id}"
            outcome = "applied"
            try:
                if req.action == ControlRequest.PAUSE:
                    self.engine.pause(eid, f"paused by {req.requested_by}")
                elif req.action == ControlRequest.RESUME:
                    replan = bool(req.changes.get("replan"))
                    self.engine.resume(
                        eid,
                        f"resumed by {req.requested_by}" + (", re-planned" if replan else ""),
                        replan=replan,
                    )
                elif req.action == ControlRequest.CANCEL:
                    self.engine.cancel(eid, f"canceled by {req.requested_by}")
                else:
                    changes = dict(req.changes)
                    if changes.get("limit_price") is not None:
                        changes["limit_price"] = Decimal(changes["limit_price"])
                    self.engine.amend(eid, changes)
            except (
                InvalidTransition,
                ParamError,
                KeyError,
                ValueError,
                TypeError,
                ArithmeticError,
            ) as e:
                # A value the service should have refused refuses this request only: an
                # exception here would stop the step, and every worker that took the order
                # up after would meet the same unapplied request.
                # The engine names the order by its own id ("P52: ..."): said as the
                # people's, order 52 (a trial read "P52" as something else).
                why = str(e).removeprefix(f"{eid}: ")
                outcome = f"refused: {why}"[:255]
            self._controls_done.append((req, outcome))

    def _controls_record(self) -> list[dict[str, Any]]:
        """Mark the controls applied since the last commit; their audit records."""
        records = []
        for req, outcome in self._controls_done:
            ControlRequest.objects.filter(pk=req.pk).update(
                applied_at=timezone.now(), outcome=outcome
            )
            records.append(
                dict(
                    actor=None,
                    action=f"order.{req.action}.{'applied' if outcome == 'applied' else 'refused'}",
                    obj=req.parent,
                    after={"changes": req.changes} if req.changes else None,
                    reason=outcome,
                )
            )
        return records

    # -- events out ---------------------------------------------------------------------

    def _persist(self, *, heartbeat: bool = True, cause_at: Any = None) -> int:
        """Write what the engine did since the last commit. A step whose commit fails is
        written again whole (at release, run()'s finally): the cached rows and the risk
        bookkeeping it changed go back to what was committed, or the second write found
        nothing changed and skipped it (a review: an amended quantity in its event and not
        on the order's row, children left working, a kill never acknowledged)."""
        snapshot = self.risk.snapshot()
        try:
            written = self._persist_once(heartbeat=heartbeat, cause_at=cause_at)
        except BaseException:
            for obj, name, old in reversed(self._undo):
                setattr(obj, name, old)
            self.risk.restore(snapshot)
            raise
        finally:
            self._undo.clear()
        return written

    def _cached_set(self, obj: Any, **fields: Any) -> None:
        """Set a cached row's fields, to be undone if this step's commit fails."""
        for name, value in fields.items():
            self._undo.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)

    def _persist_once(self, *, heartbeat: bool, cause_at: Any) -> int:
        assert self.session is not None
        events = self.engine.events[self._published :]
        if not events and not heartbeat and not self._controls_done:
            return 0
        with transaction.atomic():
            # Whatever is written, only while this session runs, heartbeat or not: the
            # reaper marks it DEAD in the transaction that suspends its orders, and this
            # update waits on that row. (A step that did not poll wrote on for a session
            # declared dead, over its suspended orders: a review.)
            alive = MarketSession.objects.filter(pk=self.session.pk, status=MarketSession.RUNNING)
            beat = {"heartbeat_at": timezone.now()} if heartbeat else {}
            mid = self.market.mid_ticks() * float(self.instrument.tick_size)
            mid_px = Decimal(repr(mid)).quantize(Decimal("0.000001")) if mid > 0 else None
            if not alive.update(sim_ts=self.market.now, mid_px=mid_px, **beat):
                raise SessionLost(str(self.session.pk))
            ends: list[dict[str, Any]] = []
            ended: list[int] = []
            if events:
                messages, ends, ended = self._write(events)
                transaction.on_commit(lambda: broadcast_events(messages))
            controls = self._controls_record()
            self.risk.after_step(events, cause_at or timezone.now())
            self.risk.kills_settle()
            # Bookkeeping a kill's acknowledgement need not wait on, in the same transaction:
            # the orders that ended by themselves, in one write of the chain (last, so its
            # lock is held the least), and their open exceptions, re-sent in one query. Kept
            # to this step: a step that fails is written again whole, once.
            audit_records(controls + self.risk.step_audits + ends)
            if ended:
                exceptions_resend(*ended)
        self._published += len(events)
        self._controls_done.clear()
        self.risk.step_audits.clear()
        return len(events)

    def _write(
        self, events: list[DomainEvent]
    ) -> tuple[list[tuple[int, dict[str, Any]]], list[dict[str, Any]], list[int]]:
        """Write the step's events and projections; the messages to broadcast after commit,
        the audit records of the orders that ended by themselves, and the ids of every
        order that ended."""
        tick = Decimal(repr(self.market.cal.tick_size))
        session_prefix = f"S{self.session.pk}:" if self.session else ""
        rows, messages, touched = [], [], set()
        # This worker owns its orders' children, so their rows are cached, not re-read.
        children = self._child_rows
        touched_children: set[str] = set()
        new_children: list[ChildOrder] = []
        new_fills: list[Fill] = []
        for ev in events:
            order = self._orders[ev.order_id]
            payload = event_to_json(ev)
            if isinstance(ev, ChildFilled):
                # Venue trade ids restart with each simulated market: the session prefix
                # makes them unique, and the stream says exactly what the fills table says.
                payload["trade_id"] = session_prefix + ev.trade_id
            rows.append(
                OrderEvent(parent=order, seq=ev.seq, kind=ev.kind, sim_ts=ev.ts, payload=payload)
            )
            messages.append((order.owner_id, {**payload, "order_id": order.pk}))
            touched.add(ev.order_id)
            if isinstance(ev, ChildEvent):
                touched_children.add(ev.client_order_id)
            if isinstance(ev, ChildSubmitted | ChildDenied):
                child = ChildOrder(
                    parent=order,
                    client_order_id=ev.client_order_id,
                    venue=ev.venue,
                    side=ev.side,
                    quantity=ev.qty,
                    price=ev.px,
                    order_type=getattr(ev, "order_type", "limit"),
                    tif=getattr(ev, "tif", ""),
                    intent=getattr(ev, "intent", ""),
                    status="SUBMITTED" if isinstance(ev, ChildSubmitted) else "DENIED",
                    reason=getattr(ev, "reason", ""),
                    sim_ts=ev.ts,
                )
                children[child.client_order_id] = child
                new_children.append(child)
            elif isinstance(ev, ChildFilled):
                new_fill = Fill(
                    parent=order,
                    child=children[ev.client_order_id],
                    instrument=self.instrument,
                    venue=ev.venue,
                    trade_id=session_prefix + ev.trade_id,
                    price=ev.px,
                    quantity=ev.qty,
                    liquidity=ev.liquidity,
                    sim_ts=ev.ts,
                )
                new_fills.append(new_fill)
        # Three bulk inserts a step, children first: the fills point at them.
        ChildOrder.objects.bulk_create(new_children)
        Fill.objects.bulk_create(new_fills)
        OrderEvent.objects.bulk_create(rows)
        # Projections: the engine's current state of every order and child touched.
        changed_children: list[ChildOrder] = []
        common: list[tuple[Any, ...]] = []
        # A status's reason alone, the one rare field a kill sets on every order it ends:
        # one statement for them all, not an ORM UPDATE each (100 a step, bench_kill).
        reasons: list[tuple[str, int]] = []
        for eid in touched:
            w = self.engine.orders[eid]
            p = w.parent
            order = self._orders[eid]
            for cid in touched_children.intersection(w.children):
                c = w.children[cid]
                row = children.get(cid)
                if row is not None and (
                    row.status != c.status.value or row.filled_qty != c.filled_qty
                ):
                    self._cached_set(row, status=c.status.value, filled_qty=c.filled_qty)
                    changed_children.append(row)
            avg = ticks_to_px(p.avg_px_ticks, tick) if p.avg_px_ticks is not None else None
            arrival = (
                ticks_to_px(w.arrival_mid_ticks, tick) if w.arrival_mid_ticks is not None else None
            )
            last_status = next(
                (
                    e
                    for e in reversed(events)
                    if e.order_id == eid and e.kind == "ParentStatusChanged"
                ),
                None,
            )
            volume, notional_ticks = self.engine.market_in_window(eid)
            # The fields every step may change go in one executemany below; the rare ones
            # (a status reason, a fallback, amended parameters) in their own UPDATE.
            common.append(
                (
                    p.status.value,
                    p.filled_qty,
                    w.working_qty,
                    avg,
                    arrival,
                    w.seq,
                    round(p.qty * w.strategy.planned_fraction(self.market.now)),
                    ticks_to_px(w.policy.limit_px_ticks, tick)
                    if w.policy.limit_px_ticks is not None
                    else None,
                    volume,
                    notional_ticks * float(tick),
                    order.pk,
                )
            )
            rare: dict[str, Any] = {}
            amended = [e for e in events if e.order_id == eid and isinstance(e, ParentAmended)]
            if amended:
                # What the order was entered with, as amended: not the running strategy's
                # own (after a fallback, TWAP's, which lost the model and its parameters).
                params = dict(order.params)
                for e in amended:
                    params.update(
                        {k: v for k, v in e.after.items() if k not in ("limit_price", "quantity")}
                    )
                rare["params"] = params
                self._cached_set(order, params=params)
                if w.parent.qty != order.quantity:  # a reduce amend: the entered size kept
                    rare["quantity"] = w.parent.qty
                    if order.entered_quantity is None:
                        rare["entered_quantity"] = order.quantity
                        self._cached_set(order, entered_quantity=order.quantity)
                    self._cached_set(order, quantity=w.parent.qty)
            if last_status is not None:
                rare["status_reason"] = getattr(last_status, "reason", "")[:255]
            fallback = next(
                (e for e in events if e.order_id == eid and isinstance(e, ParentStrategyFallback)),
                None,
            )
            replanned = [e for e in events if e.order_id == eid and isinstance(e, ParentReplanned)]
            if replanned:
                r = replanned[-1]
                rare["replan"] = {"at_s": r.at_s, "done": r.done, "others_volume": r.others_volume}
            if fallback is not None:
                rare["fallback_strategy"] = fallback.to_strategy
                rare["status_reason"] = (
                    f"{fallback.from_strategy} failed, {fallback.to_strategy} took over: "
                    f"{fallback.reason}"
                )[:255]
            if set(rare) == {"status_reason"}:
                reasons.append((rare["status_reason"], order.pk))  # below, with the rest
            elif rare:
                ParentOrder.objects.filter(pk=order.pk).update(**rare)
        # One round of statements for all the step's projections, not an ORM UPDATE per row
        # (a kill cancels hundreds of children at once, and every step touches every order).
        with connection.cursor() as cur:
            if common:
                cur.executemany(
                    f"UPDATE {ParentOrder._meta.db_table} SET status = %s, filled_qty = %s, "
                    "working_qty = %s, avg_price = %s, arrival_price = %s, last_seq = %s, "
                    "target_qty = %s, limit_price = %s, market_volume = %s, "
                    "market_notional = %s WHERE id = %s",
                    common,
                )
            if reasons:
                cur.executemany(
                    f"UPDATE {ParentOrder._meta.db_table} SET status_reason = %s WHERE id = %s",
                    reasons,
                )
            if changed_children:
                cur.executemany(
                    f"UPDATE {ChildOrder._meta.db_table} SET status = %s, filled_qty = %s "
                    "WHERE id = %s",
                    [(c.status, c.filled_qty, c.pk) for c in changed_children],
                )
        # An order's end in its worker is in the audit trail, as an end outside one is (a
        # blocked order's expiry); after the order rows, as every writer takes the chain.
        # Two trials found a paused order's expiry at its window's end missing.
        ends, ended_ids = [], []
        for e in events:
            if isinstance(e, ParentStatusChanged) and e.status in AUDITED_ENDS:
                ended = self._orders.get(e.order_id)
                if ended is not None:
                    ends.append(
                        dict(actor=None, action=AUDITED_ENDS[e.status], obj=ended, reason=e.reason)
                    )
            if isinstance(e, ParentStatusChanged) and e.status in ORDER_ENDED:
                ended = self._orders.get(e.order_id)
                if ended is not None:
                    ended_ids.append(ended.pk)
        return messages, ends, ended_ids


# The ends an order reaches in its worker by itself; a cancel or a kill is audited where
# it is asked and applied.
AUDITED_ENDS = {ParentStatus.EXPIRED.value: "order.expire", ParentStatus.FILLED.value: "order.fill"}


def sessions_reap(
    *, stale_after_s: float = 10.0, instrument: Instrument | None = None
) -> list[int]:
    """Mark sessions whose worker stopped heartbeating as DEAD and suspend their orders.

    Their working children are cancelled, as a venue does on disconnect (the simulated
    venues died with the worker); fills already committed stay.
    """
    cutoff = timezone.now() - timezone.timedelta(seconds=stale_after_s)
    dead = []
    stale = MarketSession.objects.filter(status=MarketSession.RUNNING, heartbeat_at__lt=cutoff)
    if instrument is not None:
        stale = stale.filter(instrument=instrument)
    for s in stale:
        with transaction.atomic():
            # Still stale: a heartbeat committed since the list was read keeps it alive.
            if not MarketSession.objects.filter(
                pk=s.pk, status=MarketSession.RUNNING, heartbeat_at__lt=cutoff
            ).update(status=MarketSession.DEAD):
                continue
            orders = list(
                ParentOrder.objects.filter(session=s, status__in=OPEN_STATUSES).values_list(
                    "pk", flat=True
                )
            )
            suspend_orders(ParentOrder.objects.filter(session=s), reason="worker heartbeat lost")
            exception_raise(
                kind="WORKER_LOST",
                # Critical when orders were caught in it; with none, nothing is at risk
                # and a critical pinned to the console's top was noise (a trial).
                severity=RiskException.CRITICAL if orders else RiskException.WARNING,
                scope_type="instrument",
                scope_key=s.instrument.symbol,
                title=f"Market worker {s.worker} stopped sending heartbeats",
                detail=f"session {s.pk} on {s.instrument.symbol}, last heartbeat "
                f"{s.heartbeat_at:%H:%M:%S.%f}"[:-3]
                + f"; orders suspended, their child orders cancelled: {orders or 'none'}",
                suggested_action=(
                    "the traders can resume their orders on another worker, unless a kill "
                    "switch halts them (then they are cancelled)"
                    if orders
                    else "none: the next order on it starts a new worker"
                ),
                dedupe_key=f"worker-lost:{s.pk}",
                cause_at=s.heartbeat_at,
            )
            dead.append(s.pk)
    if dead:
        # A halt engaged while a worker hung was left to it: applied now, to what it
        # suspended. In a transaction of its own, after the reap's: it locks orders and
        # overrides before it writes to the audit chain, as every writer does; inside the
        # reap, whose suspensions had written to the chain first, it deadlocked with a
        # trader's cancel (a review, on PostgreSQL).
        with transaction.atomic():
            halts_apply_to_unheld()
    return dead


# What building an instrument's simulated market can raise on a scenario that passed
# once but cannot be simulated (ScenarioError is a ValueError).
MARKET_BUILD_ERRORS = (ValueError, ArithmeticError, MemoryError)


def market_unusable(instrument: Instrument, error: BaseException) -> list[int]:
    """The instrument's market cannot be built: refuse the orders waiting for it, with
    the reason, and raise an exception for the risk console. Returns the orders' ids."""
    why = f"the simulated market for {instrument.symbol} cannot be built: {error}"
    refused = []
    with transaction.atomic():
        waiting = ParentOrder.objects.select_for_update(no_key=True).filter(
            instrument=instrument, status=ParentStatus.NEW.value, session=None
        )
        for order in waiting:
            order_status_set(order, ParentStatus.REJECTED.value, why)
            audit_record(actor=None, action="order.reject", obj=order, reason=why)
            refused.append(order.pk)
        # A suspended order asked to resume waits for the same market: its request is
        # refused (the order stays suspended, and may be cancelled).
        resumes = ControlRequest.objects.select_for_update(no_key=True).filter(
            parent__instrument=instrument,
            parent__status=SUSPENDED,
            action=ControlRequest.RESUME,
            applied_at=None,
        )
        for req in resumes:
            outcome = f"refused: {why}"[:255]
            ControlRequest.objects.filter(pk=req.pk).update(
                applied_at=timezone.now(), outcome=outcome
            )
            audit_record(actor=None, action="order.resume.refused", obj=req.parent, reason=why)
            refused.append(req.parent_id)
        exception_raise(
            kind="MARKET_UNUSABLE",
            severity=RiskException.CRITICAL,
            scope_type="instrument",
            scope_key=instrument.symbol,
            title=f"{instrument.symbol}: the simulated market cannot be built",
            detail=f"{error}; orders refused: {refused or 'none'}",
            suggested_action="restrict the instrument and correct its scenario (seed_demo "
            "checks a file before it is stored)",
            dedupe_key=f"market-unusable:{instrument.pk}",
        )
    return refused


def _override_use(order: ParentOrder) -> str:
    """A released order's override is used now, once; an expired one cannot be."""
    ov = Override.objects.filter(order=order, status=Override.GRANTED).first()
    if ov is None:
        return ""
    if ov.expires_at is not None and ov.expires_at <= timezone.now():
        Override.objects.filter(pk=ov.pk).update(status=Override.EXPIRED)
        return f"override {ov.pk} expired before the order reached the market"
    Override.objects.filter(pk=ov.pk, status=Override.GRANTED).update(
        status=Override.USED, used_at=timezone.now()
    )
    audit_record(actor=None, action="override.used", obj=ov, reason=f"order {order.pk} started")
    return ""


OPEN_STATUSES = [
    ParentStatus.WORKING.value,
    ParentStatus.PAUSED.value,
    ParentStatus.PENDING_CANCEL.value,
    ParentStatus.NEW.value,
]


def suspend_orders(orders: Any, *, reason: str) -> None:
    """Open orders whose market is gone: children cancelled (the venues went with it),
    fills kept, status SUSPENDED with the reason, resumable on another worker. One whose
    trader asked to cancel it before its worker applied that is canceled now: it had
    waited for a later resume to end it (a review). A pause or an amend its worker had
    not applied is void, and the order's status says so: applied at a resume perhaps
    hours later, an amend cut the order with nobody told, its price checked against the
    market of when it was asked (a review). A suspended order the lost worker had taken
    up to resume, and not yet set working, keeps its status; a cancel asked meanwhile
    is applied."""
    with transaction.atomic():
        for order in orders.filter(status__in=[*OPEN_STATUSES, SUSPENDED]).select_for_update(
            no_key=True, of=("self",)
        ):
            if order.status != SUSPENDED:
                ChildOrder.objects.filter(
                    parent=order,
                    status__in=["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"],
                ).update(status="CANCELED", reason="WORKER_LOST")
                # A resume asked of a paused order too: the next worker would have set it
                # working unasked, perhaps hours later (a review).
                voided = ControlRequest.objects.filter(
                    parent=order,
                    action__in=[ControlRequest.PAUSE, ControlRequest.AMEND, ControlRequest.RESUME],
                    applied_at=None,
                ).update(
                    applied_at=timezone.now(),
                    outcome="void: the order was suspended before its worker applied it",
                )
                was, was_why = order.status, order.status_reason
                ParentOrder.objects.filter(pk=order.pk).update(working_qty=0)
                # The order's next event, broadcast after commit: open blotters showed it
                # working until a reload, and a catch-up never saw it suspended (a review).
                order_status_set(
                    order,
                    SUSPENDED,
                    f"{reason}; working child orders cancelled"
                    # A paused order read as any other suspended one (a trial).
                    + ("; it was paused" if was == ParentStatus.PAUSED.value else "")
                    + ("; a pause, resume or amend not yet applied is void" if voided else ""),
                    working_qty=0,
                )
                # What it was decides what follows (a cancel under way ends as asked).
                order.status, order.status_reason = was, was_why
                audit_record(actor=None, action="order.suspend", obj=order, reason=reason)
            if order.status == ParentStatus.PENDING_CANCEL.value:
                # Its worker had applied a cancel (or a kill) and waited on the venues'
                # acks: the children are cancelled now, so it ends as asked, not resumable
                # (a review).
                asked = order.status_reason or reason
                order.refresh_from_db()
                held_end(order, ParentStatus.CANCELED.value, asked)
            elif cancel := (
                ControlRequest.objects.filter(
                    parent=order, action=ControlRequest.CANCEL, applied_at=None
                )
                .select_related("requested_by")
                .first()
            ):
                order.refresh_from_db()
                held_cancel(order, cancel)
                audit_record(
                    actor=None,
                    action="order.cancel.applied",
                    obj=order,
                    reason=f"applied as the order was suspended ({reason})",
                )
