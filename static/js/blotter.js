// Live blotter and order page: websocket with reconnect and resume by sequence number,
// cell flash on change, expandable rows, sortable columns, confirmed controls, live chart.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const table = document.getElementById("blotter");
  const detailOrderId = config.order_id ? String(config.order_id) : null; // order page
  const WORKING = new Set(["SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL"]);
  const TERMINAL = new Set(["FILLED", "CANCELED", "EXPIRED", "REJECTED"]);
  const ENDED_PAUSED = "window ended while paused"; // execution/engine/engine.py
  // The statuses that answer a control request: any end answers every one, and so does
  // a lost worker's suspension (it voids what was asked: a review).
  const ANSWERS = {
    cancel: new Set(["SUSPENDED"]),
    pause: new Set(["PAUSED", "SUSPENDED"]),
    resume: new Set(["WORKING", "SUSPENDED"]),
  };
  const PENDING_MAX_MS = 120000; // a request no status answers (refused) goes after this
  const SESSION_OPEN_S = 9 * 3600 + 30 * 60;

  // Highest sequence number applied per order: what a reconnect resumes from.
  const lastSeq = new Map();
  // Events that arrived ahead of a gap, per order, until the gap is filled.
  const pending = new Map();
  // Orders whose row is being fetched, with the events that arrived meanwhile.
  const fetching = new Map();

  for (const [id, seq] of Object.entries(config.last_seq || {})) lastSeq.set(id, seq);
  document.querySelectorAll("tbody.order").forEach((tb) => {
    lastSeq.set(tb.dataset.orderId, Number(tb.dataset.lastSeq) || 0);
  });

  // ------------------------------------------------------------------ formatting
  const qtyFmt = (n) => Number(n).toLocaleString("en-US");
  const fixed = (x, d) => (x === null || x === undefined || x === "" ? "—" : Number(x).toFixed(d));
  // A price to its last digit and at least to the cent, as the server writes it (a fill at
  // the midpoint of a one-cent spread is 8.375, not 8.38).
  const pxText = (x) => {
    if (x === null || x === undefined || x === "") return "—";
    const s = String(x);
    const places = s.includes(".") ? s.split(".")[1].replace(/0+$/, "").length : 0;
    return Number(x).toFixed(Math.min(Math.max(places, 2), 6));
  };
  function clock(ts) {
    const total = Math.round((SESSION_OPEN_S + Number(ts)) * 1000);
    const ms = total % 1000, s = Math.floor(total / 1000);
    const p = (n, w) => String(n).padStart(w || 2, "0");
    return `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}.${p(ms, 3)}`;
  }
  function duration(sec) {
    const s = Math.max(0, Math.round(sec));
    return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  }
  const orderIdOf = (ev) => String(ev.order_id).replace(/^P/, "");

  // Flashes are batched into one animation frame: restarting a CSS animation needs a
  // reflow, and one per event made a busy blotter fall seconds behind its socket.
  const toFlash = new Map();
  function flash(el, cls) {
    if (!el) return;
    if (!toFlash.size) requestAnimationFrame(runFlashes);
    toFlash.set(el, cls || "flash");
  }
  function runFlashes() {
    const items = [...toFlash];
    toFlash.clear();
    items.forEach(([e]) => e.classList.remove("flash", "flash-new"));
    void document.body.offsetWidth; // one reflow restarts them all
    items.forEach(([e, c]) => e.classList.add(c));
  }
  // Cells, child rows and trade ids of an order, indexed once: a busy order has thousands
  // of rows, and attribute selectors scan them all.
  function cellOf(tb, field) {
    if (!tb._cells) tb._cells = new Map();
    let c = tb._cells.get(field);
    if (c === undefined) {
      c = tb.querySelector(`[data-field="${field}"]`);
      tb._cells.set(field, c);
    }
    return c;
  }
  // An order's children as state (status and filled quantity per child, trade ids seen),
  // read once from the server-rendered rows. Counts and the controls' descriptions come from
  // here; the rows themselves are drawn only while the panel is open (see applyChild).
  function index(tb) {
    if (tb._kids) return;
    tb._kids = new Map();
    tb._rows = new Map();
    tb._working = 0;
    tb.querySelectorAll("tbody[data-children] tr[data-coid]").forEach((r) => {
      const status = r.dataset.status || r.querySelector('[data-field="cstatus"]').textContent.trim();
      const filled = Number(r.querySelector('[data-field="cfilled"]').textContent) || 0;
      tb._kids.set(r.dataset.coid, { status, filled });
      tb._rows.set(r.dataset.coid, r);
      if (WORKING.has(status)) tb._working += 1;
    });
    tb._trades = new Set();
    tb.querySelectorAll("tbody[data-fills] tr[data-trade]").forEach((r) => tb._trades.add(r.dataset.trade));
    // The server draws the working children and the newest of the rest; older finished
    // ones (and older fills) count, but are on the order page only.
    tb._hiddenKids = Number(tb.querySelector("tbody[data-children]")?.dataset.hidden || 0);
    tb._hiddenFills = Number(tb.querySelector("tbody[data-fills]")?.dataset.hidden || 0);
    tb._deferred = [];
  }
  const isOpen = (tb) => tb.querySelector("button.toggle").getAttribute("aria-expanded") === "true";
  function setCell(tb, field, text, sortValue) {
    const el = cellOf(tb, field);
    if (!el) return;
    if (sortValue !== undefined) el.dataset.sort = sortValue;
    if (el.textContent !== text) {
      el.textContent = text;
      // The main row's cell; a count in the expanded panel flashes itself, not the panel.
      flash(el.closest("tr.main > td") || el);
    }
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function td(text, cls, field) {
    const e = el("td", cls ? { class: cls } : {}, text);
    if (field) e.dataset.field = field;
    return e;
  }

  // ------------------------------------------------------------------ applying events
  // The share done, of the order's quantity as it is now (an amend cuts it).
  function showDone(tb) {
    const qty = Number(tb.dataset.qty);
    const filled = Number(tb.dataset.filled || 0);
    const pct = qty ? Math.round((1000 * filled) / qty) / 10 : 0;
    setCell(tb, "pct", pct.toFixed(1)); // as the server renders it: one decimal
    const prog = tb.querySelector('[data-field="progress"]');
    if (prog) {
      prog.dataset.sort = pct;
      prog.querySelector(".bar span").style.width = pct + "%";
      prog.querySelector(".bar").setAttribute("aria-valuenow", filled);
    }
  }

  function showRealised(tb, filled, volume) {
    if (!(Number(volume) > 0 && Number(filled) > 0)) return;
    // Realised, as the server renders it once the order has traded: one decimal.
    const part = Math.round((1000 * filled) / volume) / 10;
    setCell(tb, "participation", part.toFixed(1) + "%", part);
    const cell = cellOf(tb, "participation");
    if (cell) cell.title = "realised: filled ÷ the market's volume since the order started";
  }

  function applyProgress(tb, ev) {
    tb.dataset.filled = ev.filled_qty;
    setCell(tb, "filled", qtyFmt(ev.filled_qty));
    showDone(tb);
    setCell(tb, "working", qtyFmt(ev.working_qty), ev.working_qty);
    setCell(tb, "avg_px", fixed(ev.avg_px, 4), ev.avg_px || "");
    const arrival = Number(tb.dataset.arrival);
    if (ev.avg_px && arrival) {
      const sign = tb.dataset.side === "buy" ? 1 : -1;
      const raw = ((sign * (Number(ev.avg_px) - arrival)) / arrival) * 1e4;
      const bps = Math.abs(raw) < 0.05 ? 0 : raw; // never "-0.0"
      setCell(tb, "is_bps", bps.toFixed(1), bps);
    } else if (ev.avg_px && !tb.dataset.arrival) {
      refreshRow(tb.dataset.orderId); // the arrival price is on the order row, not in events
    }
    showRealised(tb, ev.filled_qty, ev.market_volume);
    updateClock(tb, ev.ts);
    chartProgress(tb.dataset.orderId, ev);
  }

  // The market's time as this page last heard it, by instrument: an order no worker holds
  // (blocked, or waiting for its window) sends no events, and its "Left" stood still for
  // minutes while its market ran on (a trial); its neighbours' events move it.
  const marketTs = new Map();
  const WAITING = new Set(["BLOCKED", "NEW"]);

  function updateClock(tb, ts) {
    if (TERMINAL.has(tb.dataset.status)) {
      setCell(tb, "time_left", "—", "");
      return;
    }
    // Never back in time: a replayed event is older than the row the server drew.
    const now = Math.max(Number(ts), Number(tb.dataset.clock || 0));
    tb.dataset.clock = now;
    const left = Math.max(0, Number(tb.dataset.endS) - Math.max(Number(tb.dataset.startS), now));
    // Before its window: when it starts, not the window's length (as the server shows it).
    const waits = Number(tb.dataset.startS) - now;
    setCell(tb, "time_left", waits >= 1 ? `starts in ${duration(waits)}` : duration(left), left);
  }

  function marketMoved(symbol, day, ts) {
    // By market day: each day's clock starts again from the open, and a page left open
    // over days stopped at the first day's last time (a review). A second of market time
    // at a time: every event of a busy blotter is not a walk over every row.
    const key = `${symbol}/${day}`;
    if (!symbol || !(Number(ts) >= (marketTs.get(key) || 0) + 1)) return;
    marketTs.set(key, Number(ts));
    document.querySelectorAll("tbody.order").forEach((row) => {
      if (row.dataset.symbol === symbol && row.dataset.day === String(day) && WAITING.has(row.dataset.status)) {
        updateClock(row, ts);
      }
    });
  }

  function applyStatus(tb, ev) {
    tb.dataset.status = ev.status;
    if (TERMINAL.has(ev.status)) {
      setCell(tb, "time_left", "—", "");
      // An order that ended with nothing filled has no participation (as the server
      // renders it); it showed its expected one until a reload (a trial).
      // Nor one left paused until its window ended: the market's volume over its window
      // counts the time it stood still (as the server and the TCA page say).
      if (!Number(tb.dataset.filled || 0) || ev.reason === ENDED_PAUSED) {
        setCell(tb, "participation", "—", "");
      } else {
        // The final status carries the market's volume over the whole window; the last
        // progress event may be a minute of market time older, and the row read 1.0%
        // where a reload read 0.8% (CI).
        showRealised(tb, tb.dataset.filled, ev.market_volume);
      }
    }
    const cell = tb.querySelector('[data-field="status"]');
    if (cell) {
      const label = ev.status.replace(/_/g, " ").toLowerCase().replace(/\b\w/g, (c) => c.toUpperCase());
      cell.dataset.sort = ev.status;
      const denied = cell.querySelector('[data-field="denied"]'); // kept: it counts children
      cell.replaceChildren(el("span", { class: `badge st-${ev.status}`, title: ev.reason || "" }, label));
      if (denied) cell.append(denied);
      flash(cell);
    }
    answerPending(tb, ev.status, ev.status.replace(/_/g, " "));
    const reason = document.querySelector('[data-field="reason"]');
    if (reason && detailOrderId === tb.dataset.orderId) reason.textContent = ev.reason || "";
    updateButtons(tb);
    updateClock(tb, ev.ts);
  }

  function updateButtons(tb) {
    tb.querySelectorAll("[data-control-form] button[name=action]").forEach((b) => {
      const allowed = (config.controls[b.value] || []).includes(tb.dataset.status);
      b.disabled = !allowed;
    });
    // A risk manager's "Halt…" goes with the order's end.
    tb.querySelectorAll("a.halt").forEach((a) => { a.hidden = TERMINAL.has(tb.dataset.status); });
    // Only a blocked order can be let through; once released or rejected the button goes.
    tb.querySelectorAll("[data-override-form]").forEach((f) => { f.hidden = tb.dataset.status !== "BLOCKED"; });
  }

  function setKidStatus(tb, kid, status) {
    tb._working += (WORKING.has(status) ? 1 : 0) - (WORKING.has(kid.status) ? 1 : 0);
    kid.status = status;
  }
  const CHILD_STATUS = {
    ChildAccepted: "ACCEPTED",
    ChildRejected: "REJECTED",
    ChildCancelRequested: "PENDING_CANCEL",
    ChildCanceled: "CANCELED",
  };

  // A child event updates the order's state at once; its rows are drawn now if the panel is
  // open, else when it is opened. A busy blotter has thousands of child and fill rows in
  // collapsed orders, and drawing them all kept it seconds behind its socket.
  function applyChild(tb, ev) {
    index(tb);
    const coid = ev.client_order_id;
    let kid = tb._kids.get(coid);
    let render = null; // the status to draw, once the row change is decided
    switch (ev.kind) {
      case "ChildSubmitted":
      case "ChildDenied":
        if (kid) return;
        kid = { status: "", filled: 0 };
        tb._kids.set(coid, kid);
        setKidStatus(tb, kid, ev.kind === "ChildDenied" ? "DENIED" : "SUBMITTED");
        if (ev.kind === "ChildDenied") countDenial(tb, ev);
        break;
      case "ChildCancelRejected":
        if (kid) setKidStatus(tb, kid, kid.filled > 0 ? "PARTIALLY_FILLED" : "ACCEPTED");
        break;
      case "ChildFilled": {
        const key = `${ev.venue}/${ev.trade_id}`;
        if (tb._trades.has(key)) return; // a duplicate: already shown
        tb._trades.add(key);
        if (kid) {
          kid.filled += Number(ev.qty);
          setKidStatus(tb, kid, Number(ev.leaves_qty) === 0 ? "FILLED" : "PARTIALLY_FILLED");
        }
        setCell(tb, "fills-count", `(${tb._trades.size + tb._hiddenFills})`);
        // The caption under a trimmed list counts what the page now shows, live.
        setCell(tb, "fills-shown", String(tb._trades.size));
        setCell(tb, "fills-total", String(tb._trades.size + tb._hiddenFills));
        chartFill(tb.dataset.orderId, ev);
        break;
      }
      default:
        if (!CHILD_STATUS[ev.kind]) return;
        if (kid) setKidStatus(tb, kid, CHILD_STATUS[ev.kind]);
    }
    render = kid ? kid.status : null;
    tb.dataset.workingChildren = tb._working;
    // Progress events (which carry the working quantity) come with fills only: once no
    // child works (a pause, a cancel, the window's end), nothing does, whatever the last said.
    if (tb._working === 0) setCell(tb, "working", qtyFmt(0), 0);
    setCell(tb, "children-count", `(${tb._kids.size + tb._hiddenKids})`);
    setCell(tb, "children-shown", String(tb._kids.size));
    setCell(tb, "children-total", String(tb._kids.size + tb._hiddenKids));
    if (isOpen(tb)) drawChild(tb, ev, render, true);
    else tb._deferred.push([ev, render]);
  }

  // The row's "N denied" badge: the trader sees children refused by the firm's controls as
  // the risk console does, with the last reason on hover. Routine denials (a share still
  // resting, outside the window) are not counted: the order page lists those (a trial read
  // "0 denied" beside three on the order page).
  const DENIED_TITLE =
    "child orders refused by the firm's controls (risk limits, collar, participation, " +
    "limit price); the order page lists every denial, routine ones too";
  function countDenial(tb, ev) {
    const badge = tb.querySelector('[data-field="denied"]');
    if (!badge || !(config.counted_denials || []).includes(ev.reason)) return;
    const n = Number(badge.dataset.count || 0) + 1;
    badge.dataset.count = n;
    badge.textContent = `${n} denied`;
    const last = ev.detail ? `${ev.reason}: ${ev.detail}` : ev.reason || "";
    badge.title = `${DENIED_TITLE}; the last: ${last}`;
    badge.hidden = false;
    flash(badge);
  }

  function drawChild(tb, ev, status, live) {
    const coid = ev.client_order_id;
    let tr = tb._rows.get(coid) || null;
    if (ev.kind === "ChildSubmitted" || ev.kind === "ChildDenied") {
      if (tr) return;
      tr = el("tr", { "data-coid": coid });
      tr.append(
        td(clock(ev.ts), "num"),
        td(coid, "mono"),
        td(ev.venue),
        td(String(ev.qty), "num"),
        td(ev.px === null || ev.px === undefined ? "mid" : pxText(ev.px), "num"),
        td(ev.kind === "ChildDenied" ? "denied" : `${ev.order_type} ${ev.tif}`),
        ev.kind === "ChildDenied" ? Object.assign(td(ev.reason), { title: ev.detail || "" }) : td(ev.intent),
        td("", "", "cstatus"),
        td("0", "num", "cfilled"),
      );
      tb.querySelector("tbody[data-children]").prepend(tr);
      tb._rows.set(coid, tr);
      if (live) flash(tr, "flash-new");
    }
    if (ev.kind === "ChildFilled") {
      const f = el("tr", { "data-trade": `${ev.venue}/${ev.trade_id}` });
      f.append(td(clock(ev.ts), "num"), td(ev.venue), td(ev.trade_id, "mono"), td(pxText(ev.px), "num"), td(String(ev.qty), "num"), td(ev.liquidity));
      tb.querySelector("tbody[data-fills]").prepend(f);
      if (live) flash(f, "flash-new");
      if (tr) {
        const cf = tr.querySelector('[data-field="cfilled"]');
        cf.textContent = String(Number(cf.textContent) + Number(ev.qty));
      }
    }
    if (tr && status && tr.dataset.status !== status) {
      const cell = tr.querySelector('[data-field="cstatus"]');
      cell.replaceChildren(el("span", { class: `badge cst-${status}` }, status));
      tr.dataset.status = status;
      if (live) flash(cell);
    }
  }

  function drawDeferred(tb) {
    if (!tb._deferred || !tb._deferred.length) return;
    const todo = tb._deferred;
    tb._deferred = [];
    todo.forEach(([ev, status]) => drawChild(tb, ev, status, false));
  }

  function applyEvent(tb, ev) {
    if (ev.kind === "ParentStrategyFallback") {
      tb.dataset.running = ev.to_strategy; // the amend dialog now offers its parameters
      const cell = cellOf(tb, "strategy");
      if (cell) {
        cell.replaceChildren(
          document.createTextNode(ev.from_strategy.toUpperCase() + " "),
          el("span", { class: "badge st-fallback", title: `${ev.from_strategy} failed, ${ev.to_strategy} took over: ${ev.reason}` }, "→ " + ev.to_strategy.toUpperCase()),
        );
        flash(cell);
      }
    } else if (ev.kind === "ParentProgress") applyProgress(tb, ev);
    else if (ev.kind === "ParentStatusChanged") applyStatus(tb, ev);
    else if (ev.kind === "ParentAmended") {
      const after = { ...(ev.after || {}) };
      if ("quantity" in after) {
        // A reduce amend: the row's quantity, and the progress measured against it.
        tb.dataset.qty = after.quantity;
        setCell(tb, "qty", qtyFmt(after.quantity), after.quantity);
        const qcell = cellOf(tb, "qty");
        const was = (ev.before || {}).quantity;
        if (qcell && was !== undefined && !qcell.title) qcell.title = `cut from ${qtyFmt(was)} by an amend`;
        const bar = tb.querySelector('[data-field="progress"] .bar');
        if (bar) bar.setAttribute("aria-valuemax", after.quantity);
        showDone(tb); // 5,200 of 40,000 is 13.0%, not the 10.4% of 50,000 (a trial)
        if (chart && tb.dataset.orderId === detailOrderId) {
          chart.quantity = Number(after.quantity); // the chart's share axis, too
          queueDraw();
        }
        // The order page's heading names the size too (it kept the old one: a trial).
        const heading = document.querySelector('[data-field="heading-qty"]');
        if (heading && tb.dataset.orderId === detailOrderId) heading.textContent = qtyFmt(after.quantity);
        delete after.quantity;
      }
      if ("limit_price" in after) {
        // The limit lives apart from the strategy's parameters: the amend dialog reads it
        // from data-limit (a trial's page kept offering the old limit after an amend).
        tb.dataset.limit = after.limit_price === null ? "" : String(after.limit_price);
        const limitCell = document.querySelector(`[data-limit-of="${tb.dataset.orderId || ""}"]`);
        if (limitCell) limitCell.textContent = after.limit_price === null ? "none" : String(after.limit_price);
        if (chart && tb.dataset.orderId === detailOrderId) {
          // The chart's limit line follows the amend (it kept the old one, a trial).
          chart.limit = after.limit_price === null ? null : Number(after.limit_price);
          queueDraw();
        }
        delete after.limit_price;
      }
      try {
        tb.dataset.params = JSON.stringify({ ...JSON.parse(tb.dataset.params || "{}"), ...after });
      } catch (e) { /* keep the old parameters */ }
      // The order page's Parameters list too (it kept the old urgency until a reload).
      Object.entries(after).forEach(([k, v]) => {
        const shown = document.querySelector(`[data-param-of="${tb.dataset.orderId || ""}"][data-param="${CSS.escape(k)}"]`);
        if (shown) {
          shown.textContent = typeof v === "boolean" ? (v ? "yes" : "no") : String(v);
          flash(shown);
        }
      });
    } else if (ev.kind && ev.kind.startsWith("Child")) applyChild(tb, ev);
  }

  // Apply in sequence order, exactly once; hold back anything after a gap.
  function offer(ev) {
    const id = orderIdOf(ev);
    if (fetching.has(id)) {
      fetching.get(id).push(ev);
      return;
    }
    const tb = document.getElementById(`order-${id}`);
    if (!tb) {
      if (table && !detailOrderId) {
        fetching.set(id, [ev]);
        fetchRow(id);
      } else {
        // The order page ignores other orders but remembers where they are.
        lastSeq.set(id, Math.max(lastSeq.get(id) || 0, Number(ev.seq)));
      }
      return;
    }
    const q = pending.get(id) || [];
    q.push(ev);
    q.sort((a, b) => a.seq - b.seq);
    let last = lastSeq.get(id) || 0;
    while (q.length && q[0].seq <= last + 1) {
      const next = q.shift();
      if (next.seq <= last) continue; // a duplicate: already shown
      applyEvent(tb, next);
      applied += 1;
      last = next.seq;
      if (next.ts !== undefined) marketMoved(tb.dataset.symbol, tb.dataset.day, next.ts);
    }
    lastSeq.set(id, last);
    tb.dataset.lastSeq = last;
    if (q.length) {
      pending.set(id, q);
      // A push was lost or overtook the replay: ask for what is missing.
      if (!gapTimer) gapTimer = setTimeout(() => {
        gapTimer = null;
        if (gaps() && socket && socket.readyState === 1) resume();
      }, 1000);
    } else pending.delete(id);
  }
  let gapTimer = null;
  let applied = 0; // events applied to the page so far
  window.oversightLatencyMs = [];
  window.oversightApplyMs = []; // script time to apply each message

  function gaps() {
    return [...pending.values()].some((q) => q.length);
  }

  // ------------------------------------------------------------------ rows from the server
  async function loadRow(id) {
    const resp = await fetch(config.row_url.replace("{id}", id), { headers: { Accept: "text/html" }, credentials: "same-origin" });
    if (!resp.ok) return null;
    const holder = document.createElement("table");
    holder.innerHTML = await resp.text();
    return holder.querySelector("tbody.order");
  }

  async function fetchRow(id) {
    let tb = null;
    try {
      tb = await loadRow(id);
    } catch (e) {
      tb = null;
    }
    const queued = fetching.get(id) || [];
    fetching.delete(id);
    if (!tb) return;
    document.querySelectorAll("tbody.empty-state").forEach((e) => e.remove());
    table.tHead.after(tb);
    wireRow(tb);
    lastSeq.set(id, Math.max(lastSeq.get(id) || 0, Number(tb.dataset.lastSeq) || 0));
    flash(tb.querySelector("tr.main"), "flash-new");
    queued.forEach(offer);
  }

  const refreshing = new Set();
  async function refreshRow(id) {
    if (refreshing.has(id)) return;
    refreshing.add(id);
    try {
      const old = document.getElementById(`order-${id}`);
      const tb = await loadRow(id);
      if (!old || !tb) return;
      const seq = Number(tb.dataset.lastSeq) || 0;
      if (seq < (lastSeq.get(id) || 0)) return; // ours is newer; keep it
      const expanded = old.querySelector("button.toggle").getAttribute("aria-expanded") === "true";
      old.replaceWith(tb);
      wireRow(tb);
      if (expanded) toggle(tb, true);
      lastSeq.set(id, seq);
      // An order page opened before its order started has no arrival line: it comes
      // with the row (a trial's chart lacked it until a reload).
      if (chart && String(id) === String(detailOrderId) && !chart.arrival && tb.dataset.arrival) {
        chart.arrival = Number(tb.dataset.arrival);
        queueDraw();
      }
    } catch (e) {
      /* the live row stays */
    } finally {
      // One refresh is enough to pick up the arrival price.
      setTimeout(() => refreshing.delete(id), 5000);
    }
  }

  // ------------------------------------------------------------------ websocket
  let socket = null;
  let attempt = 0;
  const conn = document.getElementById("conn");
  function showConn(text, ok) {
    if (!conn) return;
    conn.hidden = false;
    conn.textContent = text;
    conn.className = "conn " + (ok ? "ok" : "down");
  }

  function resume() {
    const last = {};
    lastSeq.forEach((seq, id) => { last[id] = seq; });
    socket.send(JSON.stringify({ type: "resume", last_seq: last }));
  }

  const { ENDED: SESSION_ENDED, over: sessionOver } = window.oversightSession;

  // The browser's word that the network is gone: a socket may take a minute to close, and
  // the badge said "● live" over 15 s in which nothing came (a trial). Back online, the
  // socket is closed and opened again, which catches up on what was missed: one that
  // still says it is open may be a dead connection after a change of network (a review).
  window.addEventListener("offline", () => showConn("offline: not live", false));
  window.addEventListener("online", () => {
    if (socket && socket.readyState <= 1) socket.close();
  });

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.ws_path;
    socket = new WebSocket(url);
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      attempt = 0;
      showConn("● live", true);
      resume();
    });
    socket.addEventListener("message", (msg) => {
      let data;
      try {
        data = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      if (data.type === "alert") {
        riskAlert(data.kind, data.payload || {});
        return;
      }
      if (data.type !== "events") return;
      const before = applied;
      const t0 = performance.now();
      data.events.forEach(offer);
      window.oversightApplyMs.push(performance.now() - t0);
      if (window.oversightApplyMs.length > 20000) window.oversightApplyMs.splice(0, 10000);
      // Commit-to-DOM latency of pushed updates now in the page (for bench/bench_blotter_dom.py;
      // the server and the browser share a clock there). Bounded, so a day-long page stays small.
      if (data.sent_at && !data.replay && applied > before) {
        const lat = window.oversightLatencyMs;
        lat.push(Date.now() - data.sent_at * 1000);
        if (lat.length > 20000) lat.splice(0, 10000);
      }
      // A replay fills every gap it can; one left means more to fetch (or a lost push).
      // (A long catch-up comes in several messages: the last one says so.)
      if (data.replay && !data.more && (data.incomplete || gaps())) {
        setTimeout(() => socket.readyState === 1 && resume(), 250);
      }
    });
    socket.addEventListener("close", async (e) => {
      if (e.code === 4403 || (!opened && await sessionOver("watch"))) {
        showConn(SESSION_ENDED, false);
        return;
      }
      if (e.code === 4401) {
        // What this login may see changed: connect again now, to be let in or refused.
        showConn("checking your login", false);
        setTimeout(connect, 100);
        return;
      }
      attempt += 1;
      const wait = Math.min(10000, 500 * 2 ** Math.min(attempt, 5));
      showConn(`reconnecting in ${Math.round(wait / 1000)}s`, false);
      setTimeout(connect, wait);
    });
  }

  // ------------------------------------------------------------------ rows: expand, sort
  function toggle(tb, open) {
    const btn = tb.querySelector("button.toggle");
    const row = tb.querySelector("tr.detail");
    const show = open === undefined ? row.hidden : open;
    if (show) {
      index(tb);
      drawDeferred(tb);
    }
    row.hidden = !show;
    btn.setAttribute("aria-expanded", String(show));
  }

  function wireRow(tb) {
    tb.querySelector("button.toggle").addEventListener("click", () => toggle(tb));
    const form = tb.querySelector("[data-control-form]");
    if (form) form.addEventListener("submit", (e) => askControl(e, tb));
    updateButtons(tb);
    // A request the page was redirected with may be answered already.
    answerPending(tb, tb.dataset.status || "", (tb.dataset.status || "").replace(/_/g, " "));
  }
  document.querySelectorAll("tbody.order").forEach(wireRow);

  if (table) {
    table.querySelectorAll("th button.sort").forEach((b) => {
      b.addEventListener("click", () => {
        const th = b.closest("th");
        const col = Number(b.dataset.col);
        const numeric = b.hasAttribute("data-numeric") || col === 1;
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        table.querySelectorAll("th[aria-sort]").forEach((t) => t.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        const key = (tb) => {
          const cell = tb.querySelector("tr.main").cells[col];
          const v = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
          return numeric ? (v === "" ? -Infinity : Number(v)) : v;
        };
        const bodies = [...table.tBodies].filter((t) => t.classList.contains("order"));
        bodies.sort((a, c) => {
          const x = key(a), y = key(c);
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
        bodies.forEach((t) => table.append(t));
      });
    });
  }

  // ------------------------------------------------------------------ controls with confirmation
  const dialog = document.getElementById("control-dialog");
  let pendingControl = null;

  function describe(action, tb) {
    const id = tb.dataset.orderId, sym = tb.dataset.symbol;
    const n = Number(tb.dataset.workingChildren) || 0;
    const kids = `${n} working child order${n === 1 ? "" : "s"} in ${sym}`;
    const filled = qtyFmt(tb.dataset.filled || 0);
    switch (action) {
      case "pause":
        return `Pause order ${id}: cancel ${kids} and send no new ones until resumed.`;
      case "resume": {
        // The schedule kept moving while the order stood still: say what catching up means.
        const behind = " Its schedule moved on meanwhile. Re-plan (ticked) spreads what is left over what is left of the window. Untick it to keep the old schedule: if the order is then more than its catch-up tolerance behind, it takes the difference from the book at once, which costs more, and may meet the participation limits.";
        return (tb.dataset.status === "SUSPENDED"
          ? `Resume order ${id} on another market worker: the strategy starts sending child orders in ${sym} again.`
          : `Resume order ${id}: the strategy starts sending child orders in ${sym} again.`) + behind;
      }
      case "cancel":
        return `Cancel order ${id}: cancel ${kids}. The order ends CANCELED with its ${filled} filled shares kept. This cannot be undone.`;
      case "amend":
        return `Amend order ${id} (${(tb.dataset.running || tb.dataset.strategy).toUpperCase()}): changed parameters take effect at the worker's next decision. A higher urgency or rate moves the schedule forward from the window's start: an order then far behind it takes the difference from the book at once.`;
      default:
        return `${action} order ${id}`;
    }
  }

  function amendFields(tb) {
    const box = document.getElementById("control-params");
    box.replaceChildren();
    // The strategy working it: after a model's fallback, TWAP's parameters, not the model's.
    const schema = (config.schemas || {})[tb.dataset.running || tb.dataset.strategy] || [];
    let params = {};
    try {
      params = JSON.parse(tb.dataset.params || "{}");
    } catch (e) { /* defaults */ }
    schema.filter((p) => p.amendable).forEach((p) => {
      const wrap = el("div", { class: "field" });
      const key = "param_" + p.name;
      const label = el("label", { for: "amend_" + key, title: p.name }, (p.label || p.name) + (p.unit ? ` (${p.unit})` : ""));
      const current = params[p.name] !== undefined ? params[p.name] : p.default;
      let input;
      if (p.type === "bool" || p.type === "choice") {
        input = el("select", { id: "amend_" + key, name: key });
        const opts = p.type === "bool" ? [["true", "yes"], ["false", "no"]] : p.choices.map((c) => [c, c]);
        opts.forEach(([v, t]) => {
          const o = el("option", { value: v }, t);
          if (String(current) === v) o.selected = true;
          input.append(o);
        });
      } else {
        input = el("input", { id: "amend_" + key, name: key, value: String(current), inputmode: "decimal" });
      }
      input.dataset.original = input.value;
      // The same range the ticket states beside the field.
      const range = [p.minimum !== null && p.minimum !== undefined ? `min ${p.minimum}` : "", p.maximum !== null && p.maximum !== undefined ? `max ${p.maximum}` : ""].filter(Boolean).join(", ");
      wrap.append(label, input, el("small", { class: "help" }, range ? `${p.help} (${range})` : p.help));
      box.append(wrap);
    });
    // The quantity may be cut (not below what is filled or working: pause first).
    const qwrap = el("div", { class: "field" });
    const qty = el("input", { id: "amend_param_quantity", name: "param_quantity", value: tb.dataset.qty || "", inputmode: "numeric" });
    qty.dataset.original = qty.value;
    qwrap.append(el("label", { for: "amend_param_quantity" }, "Quantity (shares, reduce only)"), qty,
      el("small", { class: "help" }, "Not below what is filled or working; pause first to cut into working child orders."));
    box.append(qwrap);
    // The limit price is the order's, not the strategy's, and may change mid-flight too.
    const wrap = el("div", { class: "field" });
    const limit = el("input", { id: "amend_param_limit_price", name: "param_limit_price", value: tb.dataset.limit || "", inputmode: "decimal" });
    limit.dataset.original = limit.value;
    wrap.append(el("label", { for: "amend_param_limit_price" }, "Limit price"), limit,
      el("small", { class: "help" }, "No fill worse than this; working child orders through it are cancelled."));
    box.append(wrap);
  }

  function replanField() {
    const box = document.getElementById("control-params");
    // Ticked unless the trader chooses the catch-up: after a pause the schedule has moved
    // on, and taking the difference at once burst through a 50% participation limit and
    // raised "behind schedule" for a pause the trader chose (a trial).
    const check = el("input", { type: "checkbox", id: "control-replan", name: "replan", value: "1", checked: "" });
    const wrap = el("div", { class: "field check" });
    wrap.append(check, el("label", { for: "control-replan" }, "Re-plan: spread what is left over what is left of the window (no catch-up; an adaptive order's model may still run up to three slices ahead of the new plan)"));
    box.replaceChildren(wrap);
  }

  function askControl(e, tb) {
    e.preventDefault();
    if (!dialog || typeof dialog.showModal !== "function") {
      e.target.submit();
      return;
    }
    const action = e.submitter ? e.submitter.value : "";
    pendingControl = { action, tb, form: e.target, opener: e.submitter };
    dialog.classList.toggle("danger", action === "cancel");
    document.getElementById("control-title").textContent = `${action[0].toUpperCase()}${action.slice(1)} order ${tb.dataset.orderId}?`;
    document.getElementById("control-what").textContent = describe(action, tb);
    document.getElementById("control-go").textContent = action === "cancel" ? "Cancel the order" : `Confirm ${action}`;
    document.getElementById("control-reason").value = "";
    const err = document.getElementById("control-error");
    err.hidden = true;
    err.textContent = "";
    if (action === "amend") amendFields(tb);
    else if (action === "resume") replanField();
    else document.getElementById("control-params").replaceChildren();
    dialog.showModal();
    // A destructive action starts on "Back", so a stray Enter does not confirm it.
    const first = action === "cancel"
      ? document.getElementById("control-back")
      : dialog.querySelector("#control-params input, #control-params select") || document.getElementById("control-go");
    first.focus();
  }

  // `pending` ("<order id>:<action>") marks a request the worker has yet to apply: the
  // line is rewritten with the outcome when the order's status arrives, so it never says
  // "cancel requested" beside a row that is already Canceled (a trial).
  function say(text, kind, pending) {
    let list = document.querySelector("ul.messages");
    if (!list) {
      list = el("ul", { class: "messages", role: "status", "aria-live": "polite" });
      document.querySelector("header.topbar").after(list);
    }
    const li = el("li", { class: `msg msg-${kind}` }, text);
    list.prepend(li);
    // A waiting request stays until its outcome replaces it (then goes like the rest), or
    // for two minutes when nothing answers it (a refusal leaves the status as it was).
    if (pending) {
      li.dataset.pending = pending;
      setTimeout(() => li.remove(), PENDING_MAX_MS);
    } else setTimeout(() => li.remove(), 8000);
  }

  function answerPending(tb, status, label) {
    document.querySelectorAll("ul.messages li[data-pending]").forEach((li) => {
      // (The status it was asked in answers nothing: a suspended order asked to resume.)
      const [id, action, asked] = li.dataset.pending.split(":");
      if (id !== tb.dataset.orderId || !ANSWERS[action] || status === asked) return;
      if (!TERMINAL.has(status) && !ANSWERS[action].has(status)) return;
      li.textContent = `Order ${id}: ${label.toLowerCase()}`;
      delete li.dataset.pending;
      setTimeout(() => li.remove(), 8000);
    });
  }

  if (dialog) {
    document.getElementById("control-back").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      if (pendingControl && pendingControl.opener) pendingControl.opener.focus();
    });
    document.getElementById("control-dialog-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!pendingControl) return;
      const { action, tb, form } = pendingControl;
      const body = new FormData();
      body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      body.append("action", action);
      body.append("reason", document.getElementById("control-reason").value);
      if (action === "amend") {
        dialog.querySelectorAll("#control-params [name]").forEach((i) => {
          if (i.value !== i.dataset.original) body.append(i.name, i.value);
        });
      }
      const replan = document.getElementById("control-replan");
      // Said either way: the server re-plans unless told "0" (as the dialog's default).
      if (action === "resume" && replan) body.append("replan", replan.checked ? "1" : "0");
      const err = document.getElementById("control-error");
      err.hidden = true; // an earlier refusal is not this answer
      dialog.querySelectorAll("#control-params [aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
      let data = null;
      try {
        const resp = await fetch(config.control_url.replace("{id}", tb.dataset.orderId), {
          method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" },
        });
        data = await resp.json();
      } catch (x) {
        data = { ok: false, errors: { __all__: ["the server did not answer; try again"] } };
      }
      if (data.ok) {
        dialog.close();
        // Applied at once (a blocked order canceled here) says so; otherwise it waits.
        const waits = ANSWERS[action] && /requested/.test(data.message)
          ? `${tb.dataset.orderId}:${action}:${tb.dataset.status}` : "";
        say(data.message, "success", waits);
        return;
      }
      // A refusal before any view ran (logged out, a NUL character) says `error`.
      const lines = data.error ? [data.error] : [];
      lines.push(...Object.entries(data.errors || {}).flatMap(([k, msgs]) =>
        msgs.map((m) => {
          if (k === "__all__" || k === "action" || k === "changes") return m;
          // The dialog's fields are amend_param_<name>; the server names a parameter
          // param_<name>, and the order's own quantity and limit_price plainly.
          const id = "amend_" + (k.startsWith("param_") ? k : "param_" + k);
          const label = dialog.querySelector(`label[for="${CSS.escape(id)}"]`);
          const field = dialog.querySelector(`#${CSS.escape(id)}`);
          if (field) field.setAttribute("aria-invalid", "true"); // marked where it is, too
          return `${label ? label.textContent : k.replace(/^param_/, "")}: ${m}`;
        })));
      err.textContent = lines.join(" ");
      err.hidden = false;
    });
  }

  // ------------------------------------------------------------------ risk: alerts, kill, override
  // The alert banner: kill switches over the viewer's orders (shown while active) and
  // critical exceptions about their orders that nobody acknowledged in time.
  const risk = config.risk || null;
  const banner = document.getElementById("risk-alerts");
  const alertKills = new Map();
  const alertExceptions = new Map();

  function mineMatching(attr, value) {
    return [...document.querySelectorAll('tbody.order[data-mine="1"]')].some((tb) => tb.dataset[attr] === value);
  }
  function killCovers(k) {
    switch (k.scope_type) {
      case "firm": return true;
      case "trader": return k.scope_key === risk.me;
      case "desk": return !!risk.desk && k.scope_key === risk.desk;
      case "order": return mineMatching("orderId", String(k.scope_key));
      case "strategy": return mineMatching("strategy", k.scope_key);
      case "instrument": return mineMatching("symbol", k.scope_key);
      case "model": return mineMatching("model", k.scope_key);
      default: return false;
    }
  }
  function drawAlerts() {
    if (!banner) return;
    const list = banner.querySelector("ul");
    list.replaceChildren();
    [...alertKills.values()].sort((a, b) => b.id - a.id).forEach((k) => {
      const where = `${k.scope_type} ${k.scope_key || ""}`.trim();
      const what = k.state === "REDUCING" ? `Reduce-only for ${where}` : `Trading halted for ${where}`;
      const li = el("li", { class: "alert-kill", "data-kill": String(k.id) });
      li.append(el("strong", {}, what), document.createTextNode(
        ` by kill switch ${k.id} (${k.engaged_by}): ${k.reason}. ` +
        (k.state === "REDUCING" ? "Only orders that reduce a position may trade." : "Working orders in scope are cancelled; new ones are refused until two risk managers reset it.")));
      list.append(li);
    });
    [...alertExceptions.values()].sort((a, b) => b.id - a.id).forEach((x) => {
      const li = el("li", { class: "alert-exception", "data-exception": String(x.id) });
      li.append(el("strong", {}, `▲ Critical, escalated: ${x.title}`));
      if (x.suggested_action) li.append(document.createTextNode(` — ${x.suggested_action}.`));
      if (x.order && config.detail_url) {
        li.append(document.createTextNode(" "));
        li.append(el("a", { href: config.detail_url.replace("{id}", x.order) }, `Order ${x.order}`));
      }
      list.append(li);
    });
    banner.hidden = !list.children.length;
  }
  function riskAlert(kind, p) {
    if (!risk) return;
    if (kind === "kill") {
      if (p.active && killCovers(p)) alertKills.set(p.id, p);
      else alertKills.delete(p.id);
    } else if (kind === "exception") {
      if (p.escalated && p.status !== "RESOLVED") alertExceptions.set(p.id, p);
      else alertExceptions.delete(p.id);
    }
    drawAlerts();
  }
  if (risk) {
    (risk.kills || []).forEach((k) => alertKills.set(k.id, k));
    (risk.exceptions || []).forEach((x) => alertExceptions.set(x.id, x));
    drawAlerts();
  }

  // "Kill my trading" and "Request override": both ask for a reason in one dialog, say
  // what will happen, and post with the page's CSRF token.
  const riskDialog = document.getElementById("risk-dialog");
  let riskPending = null;
  function askRisk(opts) {
    riskPending = opts;
    riskDialog.classList.toggle("danger", !!opts.danger);
    document.getElementById("risk-dialog-title").textContent = opts.title;
    document.getElementById("risk-dialog-what").textContent = opts.what;
    document.getElementById("risk-dialog-go").textContent = opts.go;
    document.getElementById("risk-dialog-go").className = opts.danger ? "kill-button" : "primary";
    const reason = document.getElementById("risk-dialog-reason");
    reason.value = opts.reason || "";
    const err = document.getElementById("risk-dialog-error");
    err.hidden = true;
    err.textContent = "";
    riskDialog.showModal();
    // A destructive action starts on "Back", so a stray Enter does not confirm it.
    (opts.danger ? document.getElementById("risk-dialog-back") : reason).focus();
  }
  if (riskDialog && risk) {
    document.getElementById("risk-dialog-back").addEventListener("click", () => riskDialog.close());
    riskDialog.addEventListener("close", () => {
      if (riskPending && riskPending.opener) riskPending.opener.focus();
    });
    document.getElementById("risk-dialog-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!riskPending) return;
      const { form, url, done } = riskPending;
      const err = document.getElementById("risk-dialog-error");
      const reason = document.getElementById("risk-dialog-reason").value.trim();
      if (!reason) {
        err.textContent = "Say why: the reason goes to the audit trail.";
        err.hidden = false;
        document.getElementById("risk-dialog-reason").focus();
        return;
      }
      const body = new FormData(form);
      body.set("reason", reason);
      let data;
      try {
        const resp = await fetch(url, { method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json" } });
        data = await resp.json();
      } catch (x) {
        data = { ok: false, error: "the server did not answer; try again" };
      }
      if (!data.ok) {
        err.textContent = data.error || "not done";
        err.hidden = false;
        return;
      }
      riskDialog.close();
      say(data.message, "success");
      if (done) done();
    });

    const killForm = document.getElementById("kill-mine");
    if (killForm) killForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      // Already halted (a switch over the trader, their desk or the firm): say so now, not
      // after a dialog offering to stop "0 working orders" (a trial).
      const halting = [...alertKills.values()].find((k) => k.active && String(k.state).toUpperCase() === "HALTED"
        && ["firm", "desk", "trader"].includes(k.scope_type)); // all of it, not some orders
      if (halting) {
        const where = `${halting.scope_type} ${halting.scope_key || ""}`.trim();
        say(`Your trading is already halted: kill switch ${halting.id} (${where}). A reset takes two risk managers.`, "info");
        return;
      }
      let what = `Stop all of ${risk.me}'s trading: every working order is cancelled and new orders are refused until two risk managers reset it.`;
      try {
        const q = new URLSearchParams({ scope_type: "trader", scope_key: risk.me, state: "HALTED" });
        const resp = await fetch(`${risk.preview_url}?${q}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
        const p = await resp.json();
        if (p.ok) {
          const n = p.orders, c = p.children;
          const b = p.blocked ? ` (${p.blocked} blocked)` : "";
          what = `Stop all your trading: ${n} open order${n === 1 ? "" : "s"}${b} will be stopped and ${c} working child order${c === 1 ? "" : "s"} cancelled. New orders are refused until two risk managers reset it. This cannot be undone by you.`;
        }
      } catch (x) { /* the general wording stands */ }
      askRisk({
        title: "Kill my trading?", what, go: "Kill my trading", danger: true,
        form: killForm, url: risk.kill_url, opener: e.submitter,
      });
    });

    document.addEventListener("submit", (e) => {
      const form = e.target.closest && e.target.closest("[data-override-form]");
      if (!form) return;
      e.preventDefault();
      const tb = form.closest("tbody.order");
      const id = tb ? tb.dataset.orderId : form.querySelector("[name=order]").value;
      const why = tb ? (tb.querySelector('[data-field="status"] .badge:not(.denied)') || {}).title || "" : "";
      askRisk({
        title: `Request an override for order ${id}?`,
        what: `Order ${id} is blocked${why ? ` (${why})` : ""}. A risk manager may let it go to the market, once and for these breaches only.`,
        go: "Request override", danger: false, form, url: risk.override_url, opener: e.submitter,
        done: () => {
          const b = form.querySelector("button");
          b.disabled = true;
          b.textContent = "Override requested";
        },
      });
    });
  }

  // ------------------------------------------------------------------ order page chart
  const chartEl = document.getElementById("chart");
  const chartDataEl = document.getElementById("chart-data");
  let chart = null;
  let drawQueued = false;
  let chartRevision = 0;
  const at = (ts) => "1970-01-01 " + clock(ts);
  const VENUE_COLOURS = ["#4da3ff", "#f0b429", "#c38bff", "#2fd0c4", "#ff8a5c", "#9ccc65"];
  // A round step for about five share ticks (auto ticks beside the price axis read
  // 3,542 / 7,960 / 12,378: a trial).
  const roundStep = (x) => {
    const p = 10 ** Math.floor(Math.log10(Math.max(x, 1)));
    return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= x);
  };

  function chartTraces() {
    const venues = Object.keys(chart.fills).sort();
    // The national mid when each progress report was made, under the fills.
    const traces = [{ type: "scatter", mode: "lines", name: "mid", x: chart.mid.x, y: chart.mid.y, line: { color: "#5b8def", width: 1 } }];
    traces.push(...venues.map((v, i) => ({
      type: "scatter", mode: "markers", name: v, x: chart.fills[v].x, y: chart.fills[v].y,
      marker: { size: 7, color: VENUE_COLOURS[i % VENUE_COLOURS.length], opacity: 0.85 },
      customdata: chart.fills[v].qty, hovertemplate: `${v} %{y:.2f} × %{customdata}<br>%{x|%H:%M:%S.%L}<extra></extra>`,
    })));
    const across = [at(chart.start_s), at(chart.end_s)];
    if (chart.arrival) traces.push({ type: "scatter", mode: "lines", name: "arrival", x: across, y: [chart.arrival, chart.arrival], line: { dash: "dash", color: "#8a96a3", width: 1 }, hoverinfo: "y+name" });
    if (chart.limit) traces.push({ type: "scatter", mode: "lines", name: "limit", x: across, y: [chart.limit, chart.limit], line: { dash: "dashdot", color: "#e5484d", width: 1 }, hoverinfo: "y+name" });
    traces.push({ type: "scatter", mode: "lines", name: "filled", x: chart.cum.x, y: chart.cum.y, yaxis: "y2", line: { shape: "hv", color: "#2fbf71", width: 2 } });
    traces.push({ type: "scatter", mode: "lines", name: "schedule", x: chart.target.x, y: chart.target.y, yaxis: "y2", line: { dash: "dot", color: "#8a96a3", width: 1.5 } });
    return traces;
  }
  function draw() {
    drawQueued = false;
    const layout = {
      // The traces' arrays grow in place: a new revision makes Plotly.react redraw and re-range.
      datarevision: ++chartRevision,
      paper_bgcolor: "#161c23", plot_bgcolor: "#161c23", font: { color: "#d8dee6", size: 11 },
      margin: { l: 56, r: 60, t: 28, b: 30 }, legend: { orientation: "h", x: 0, y: 1.1 },
      // The whole window, so the schedule still to come has its room.
      xaxis: { type: "date", tickformat: "%H:%M", gridcolor: "#2a3440", range: [at(chart.start_s), at(chart.end_s)] },
      yaxis: { title: { text: "price" }, gridcolor: "#2a3440", tickformat: ".2f" },
      // Whole shares with thousands separators (plotly's default SI ticks read "20k", "1.5M").
      yaxis2: { title: { text: "shares" }, overlaying: "y", side: "right", range: [0, chart.quantity * 1.05], showgrid: false, tickformat: ",d", tickmode: "linear", tick0: 0, dtick: roundStep(chart.quantity / 5) },
    };
    // Nothing priced yet (an order that never started): no axis of -1 to 4 (a trial).
    const priced = chart.mid.y.length || Object.keys(chart.fills).length || chart.arrival || chart.limit;
    if (!priced) {
      layout.yaxis.visible = false;
      layout.annotations = [{ text: "no market data: the order has not traded", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { color: "#8a96a3" } }];
    }
    window.Plotly.react(chartEl, chartTraces(), layout, { displaylogo: false, responsive: true });
  }
  function queueDraw() {
    if (!chart || drawQueued || !window.Plotly) return;
    drawQueued = true;
    requestAnimationFrame(draw);
  }
  function chartFill(id, ev) {
    if (!chart || id !== detailOrderId) return;
    const v = (chart.fills[ev.venue] = chart.fills[ev.venue] || { x: [], y: [], qty: [] });
    v.x.push(at(ev.ts));
    v.y.push(Number(ev.px));
    v.qty.push(ev.qty);
    const prev = chart.cum.y.length ? chart.cum.y[chart.cum.y.length - 1] : 0;
    chart.cum.x.push(at(ev.ts));
    chart.cum.y.push(prev + Number(ev.qty));
    queueDraw();
  }
  function chartProgress(id, ev) {
    if (!chart || id !== detailOrderId) return;
    chart.target.x.push(at(ev.ts));
    chart.target.y.push(ev.target_qty);
    if (ev.mid_px !== undefined && ev.mid_px !== null) {
      chart.mid.x.push(at(ev.ts));
      chart.mid.y.push(Number(ev.mid_px));
    }
    queueDraw();
  }
  if (chartEl && chartDataEl) {
    chart = JSON.parse(chartDataEl.textContent);
    const start = () => (window.Plotly ? draw() : setTimeout(start, 50));
    start();
  }

  connect();
})();
