// The risk screens: scope-key suggestions that follow the scope type (console and limits),
// and the live console: exceptions inserted and updated in place (escalated criticals
// pinned on top), kill switches, exposure every second, the kill switch's confirmation.
// Everything arrives over one websocket; nothing is polled.
(function () {
  "use strict";

  // ------------------------------------------------------------------ scope keys
  document.querySelectorAll("select[data-keys-for]").forEach((sel) => {
    const input = document.getElementById(sel.dataset.keysFor);
    if (!input) return;
    const sync = () => {
      input.setAttribute("list", "keys-" + sel.value);
      const firm = sel.value === "firm";
      input.disabled = firm; // the firm has no key
      if (firm) input.value = "";
      input.placeholder = firm ? "the whole firm" : sel.value === "order" ? "parent order id" : sel.value + " name";
    };
    sel.addEventListener("change", sync);
    sync();
  });

  const configEl = document.getElementById("risk-config");
  if (!configEl) return; // the limits page needs nothing more
  const config = JSON.parse(configEl.textContent);

  // ------------------------------------------------------------------ helpers
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const p2 = (n, w) => String(n).padStart(w || 2, "0");
  function clock(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    return `${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${p2(d.getUTCMilliseconds(), 3)}`;
  }
  const money = (s) => Number(s).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const shares = (n) => (n > 0 ? "+" : "") + Number(n).toLocaleString("en-US");

  const toFlash = new Set();
  function flash(e) {
    if (!e) return;
    if (!toFlash.size) requestAnimationFrame(() => {
      const items = [...toFlash];
      toFlash.clear();
      items.forEach((x) => x.classList.remove("flash"));
      void document.body.offsetWidth; // one reflow restarts them all
      items.forEach((x) => x.classList.add("flash"));
    });
    toFlash.add(e);
  }
  function setText(root, field, text) {
    const e = root.querySelector(`[data-field="${field}"]`);
    if (!e || e.textContent === text) return e;
    e.textContent = text;
    flash(e);
    return e;
  }
  // A template row: every "__ID__" in its attributes and text becomes the id.
  function instantiate(templateId, id) {
    const node = document.getElementById(templateId).content.firstElementChild.cloneNode(true);
    [node, ...node.querySelectorAll("*")].forEach((n) => {
      for (const a of [...n.attributes]) if (a.value.includes("__ID__")) n.setAttribute(a.name, a.value.replaceAll("__ID__", id));
    });
    const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const t = walker.currentNode;
      if (t.nodeValue.includes("__ID__")) t.nodeValue = t.nodeValue.replaceAll("__ID__", id);
    }
    return node;
  }
  function say(text, kind, href) {
    let list = document.querySelector("ul.messages");
    if (!list) {
      list = el("ul", { class: "messages", role: "status", "aria-live": "polite" });
      document.querySelector("header.topbar").after(list);
    }
    const li = el("li", { class: `msg msg-${kind || "info"}` }, text);
    if (href) {
      li.append(" ");
      li.append(el("a", { href }, "Open"));
    }
    list.prepend(li);
    setTimeout(() => li.remove(), 10000);
  }

  // ------------------------------------------------------------------ exceptions
  const excTable = document.getElementById("exceptions");
  const excEmpty = document.getElementById("exc-empty");
  const excCount = document.getElementById("exc-count");
  const resolvedRows = document.getElementById("resolved-rows");
  const SEVERITY = { CRITICAL: 0, WARNING: 1, INFO: 2 };
  let openCount = Number(excCount ? excCount.textContent : 0) || 0;

  const excRows = () => [...excTable.tBodies].filter((t) => t.classList.contains("exc"));
  // As the server pins them: escalated and critical, or escalated and still unacknowledged
  // (its cause over, a warning now: nobody has looked yet).
  const pinned = (tb) =>
    tb.dataset.escalated === "1" && (tb.dataset.severity === "CRITICAL" || tb.dataset.status === "OPEN");
  // Escalated criticals first, then by severity, then the newest.
  function sortKey(tb) {
    return [pinned(tb) ? 0 : 1, SEVERITY[tb.dataset.severity] ?? 3, -Date.parse(tb.dataset.raised || 0) || 0, -Number(tb.dataset.id)];
  }
  function before(a, b) {
    const x = sortKey(a), y = sortKey(b);
    for (let i = 0; i < x.length; i += 1) if (x[i] !== y[i]) return x[i] < y[i];
    return false;
  }
  function place(tb) {
    const next = excRows().find((o) => o !== tb && before(tb, o));
    if (next) {
      if (tb.nextSibling !== next) excTable.insertBefore(tb, next);
    } else if (excEmpty) {
      if (tb.nextSibling !== excEmpty) excTable.insertBefore(tb, excEmpty);
    } else excTable.append(tb);
  }
  // How many unresolved exceptions are about ended orders: those the table shows, by id,
  // plus those the server counted beyond its page; the "resolve them all" form follows.
  const endedForm = document.getElementById("resolve-ended");
  const endedIds = new Set(excRows()
    .filter((tb) => {
      const who = (tb.querySelector('[data-field="assigned_to"]') || {}).textContent || "—";
      return tb.dataset.severity !== "CRITICAL" && (who === "—" || who === config.me)
        && !(tb.querySelector('[data-field="order_ended"]') || { hidden: true }).hidden;
    })
    .map((tb) => tb.dataset.id));
  let endedBeyond = Math.max(0, Number(endedForm ? endedForm.dataset.count : 0) - endedIds.size);
  function showEnded(p) {
    if (!endedForm) return;
    const others = p.assigned_to && p.assigned_to !== config.me; // their case, not swept
    if (p.order_ended && p.status !== "RESOLVED" && p.severity !== "CRITICAL" && !others) endedIds.add(String(p.id));
    else endedIds.delete(String(p.id));
    const n = endedIds.size + endedBeyond;
    setText(endedForm, "ended_count", String(n));
    // What the page shows is what a press resolves: the server refuses another count.
    document.getElementById("resolve-ended-seen").value = String(n);
    document.getElementById("ended-noun").textContent = n === 1 ? "warning or notice" : "warnings and notices";
    endedForm.hidden = n === 0;
  }

  function showCount() {
    if (excCount) excCount.textContent = String(Math.max(0, openCount));
    if (excEmpty) excEmpty.hidden = excRows().length > 0;
  }

  function fillException(tb, p) {
    tb.dataset.severity = p.severity;
    tb.dataset.status = p.status;
    tb.dataset.escalated = p.escalated ? "1" : "0";
    tb.dataset.raised = p.raised_at;
    tb.className = `exc sev-${p.severity}${pinned(tb) ? " pinned" : ""}`;
    const sev = tb.querySelector('[data-field="severity"] .sev');
    if (sev.textContent !== p.severity) {
      sev.textContent = p.severity;
      sev.className = `badge sev sev-${p.severity}`;
    }
    const esc = tb.querySelector('[data-field="escalated"]');
    if (esc.hidden === pinned(tb)) {
      esc.hidden = !pinned(tb);
      flash(esc.parentElement);
    }
    const raised = setText(tb, "raised_at", clock(p.raised_at));
    if (raised) raised.title = p.raised_at;
    const kind = setText(tb, "kind", p.kind);
    if (kind) kind.title = p.code ? `${p.kind}: ${p.code}` : p.kind;
    const scope = tb.querySelector('[data-field="scope"]');
    if (scope.textContent.trim() !== p.scope) {
      // An order's scope links to the order's page.
      scope.replaceChildren(p.order ? el("a", { href: config.order_url.replace("{id}", p.order) }, p.scope) : document.createTextNode(p.scope));
    }
    const title = setText(tb, "title", p.title);
    if (title) title.title = p.title;
    setText(tb, "count", p.count > 1 ? `×${p.count}` : "");
    const st = tb.querySelector('[data-field="status"] .badge:not(.denied)');
    if (st.textContent !== p.status.toLowerCase()) {
      st.textContent = p.status.toLowerCase();
      st.className = `badge exc-st-${p.status}`;
      flash(st.parentElement);
    }
    const ended = tb.querySelector('[data-field="order_ended"]');
    if (ended) {
      ended.hidden = !p.order_ended;
      ended.textContent = p.order_ended ? `order ${p.order_ended}` : "";
    }
    setText(tb, "assigned_to", p.assigned_to || "—");
    tb.querySelector(".btn-ack").disabled = p.status !== "OPEN";
    setText(tb, "detail", p.detail || "");
    setText(tb, "suggested_action", p.suggested_action || "—");
    setText(tb, "last_at", clock(p.last_at));
    if (p.comment) {
      const list = tb.querySelector('[data-field="comments"]');
      list.querySelectorAll("li.none").forEach((n) => n.remove());
      const li = el("li");
      li.append(el("strong", {}, p.comment.by), " ", el("span", { class: "muted small num" }, clock(new Date().toISOString())), ` ${p.comment.text}`);
      list.append(li);
      flash(li);
    }
  }

  function resolvedRow(p) {
    if (!resolvedRows) return;
    const tr = el("tr");
    const sev = el("td");
    sev.append(el("span", { class: `badge sev sev-${p.severity}` }, p.severity));
    tr.append(
      el("td", { class: "num" }, clock(p.resolved_at || new Date().toISOString())),
      sev,
      el("td", { class: "mono small" }, p.kind),
      el("td", {}, p.scope),
      el("td", { class: "exc-title", title: p.title }, p.title),
      el("td", { class: "exc-title", title: p.resolution || "" }, p.resolution || "—"),
      el("td", {}, p.resolved_by || "—"),
    );
    resolvedRows.prepend(tr);
    flash(tr);
    // The count in the summary follows (it kept the page's first figure: a trial).
    const n = document.getElementById("resolved-count");
    if (n) n.textContent = String(resolvedRows.rows.length);
  }

  function upsertException(p) {
    showEnded(p);
    let tb = document.getElementById(`exc-${p.id}`);
    if (p.status === "RESOLVED") {
      if (tb) {
        tb.remove();
        openCount -= 1;
        resolvedRow(p);
      }
      showCount();
      return;
    }
    const fresh = !tb;
    if (fresh) {
      tb = instantiate("exc-template", p.id);
      openCount += 1;
    }
    // Placed again when anything it sorts by changed, as the server would sort it: an
    // escalated critical dropping to a warning stays pinned but moves below the criticals.
    const keyBefore = fresh ? "" : sortKey(tb).join(",");
    fillException(tb, p);
    if (fresh || keyBefore !== sortKey(tb).join(",")) place(tb);
    else if (!tb.isConnected) place(tb);
    if (fresh) flash(tb.querySelector("tr.main"));
    // A table that grew past the server's page keeps its size: the oldest least urgent go.
    const rows = excRows();
    if (rows.length > config.rows) rows.slice(config.rows).forEach((r) => r.remove());
    showCount();
  }

  excTable.addEventListener("click", (e) => {
    const btn = e.target.closest("button.toggle");
    if (!btn) return;
    const detail = document.getElementById(btn.getAttribute("aria-controls"));
    const open = detail.hidden;
    detail.hidden = !open;
    btn.setAttribute("aria-expanded", String(open));
  });

  // ------------------------------------------------------------------ kill switches
  const killList = document.getElementById("kills");
  const killNone = document.getElementById("kills-none");
  const killCount = document.getElementById("kill-count");

  function fillKill(li, k) {
    li.dataset.requestedBy = k.reset_requested_by || "";
    li.className = `kill-card state-${k.state}`;
    setText(li, "state", k.state);
    setText(li, "scope", `${k.scope_type} ${k.scope_key || ""}`.trim());
    setText(li, "reason", k.reason);
    setText(li, "engaged_by", k.engaged_by);
    setText(li, "engaged_at", clock(k.engaged_at));
    // The workers' acknowledgement, when an event carries it (they send it as they settle).
    if (k.applied_text !== undefined) setText(li, "applied", k.applied_text);
    const asked = !!k.reset_requested_by;
    li.querySelector('[data-part="request"]').hidden = asked;
    li.querySelector('[data-part="approve"]').hidden = !asked;
    setText(li, "reset_requested_by", k.reset_requested_by || "");
    const lapsedNote = li.querySelector('[data-field="reset_lapsed"]');
    if (lapsedNote) {
      lapsedNote.hidden = !k.reset_lapsed_by;
      lapsedNote.textContent = k.reset_lapsed_by ? `${k.reset_lapsed_by}'s request lapsed (their role changed after they asked): ask again.` : "";
    }
    setText(li, "reset_reason", k.reset_reason || "");
    // An approval or a decline names the request it was read for.
    li.querySelectorAll('input[name="asked_at"]').forEach((i) => { i.value = k.reset_requested_at || ""; });
    const mine = asked && k.reset_requested_by === config.me;
    li.querySelector('[data-field="approve"]').disabled = mine;
    li.querySelector('[data-part="own-note"]').hidden = !mine;
    // Its author withdraws a request; another risk manager declines it, saying why.
    const why = li.querySelector('[data-field="decline_reason"]');
    why.hidden = why.disabled = mine;
    why.required = !mine;
    li.querySelector('[data-field="decline"]').textContent = mine ? "Withdraw" : "Decline";
    const note = li.querySelector('[data-field="approve_note"]');
    if (note) note.disabled = mine;
  }
  function showKills() {
    const n = killList.querySelectorAll("li.kill-card").length;
    if (killCount) killCount.textContent = `(${n})`;
    if (killNone) killNone.hidden = n > 0;
  }
  // A reset joins "Recent resets" as the page would list it, and its count follows.
  function resetRow(k) {
    const list = document.getElementById("kills-reset");
    if (!list) return;
    document.getElementById("resets-none")?.remove();
    const li = el("li", { class: "small" });
    li.append(
      el("strong", {}, `${k.scope_type} ${k.scope_key}`),
      ` #${k.id} ${k.state.toLowerCase()} · reset by ${k.reset_by} at ${new Date(k.reset_at).toISOString().slice(0, 10)} ${clock(k.reset_at).slice(0, 8)} UTC: ${k.reset_reason || ""}`,
    );
    list.prepend(li);
    flash(li);
    const n = document.getElementById("resets-count");
    if (n) n.textContent = String(list.querySelectorAll("li:not(.muted)").length);
  }
  function upsertKill(k) {
    let li = document.getElementById(`kill-${k.id}`);
    if (!k.active) {
      if (li) {
        li.remove();
        if (k.reset_by) resetRow(k);
      }
      showKills();
      return;
    }
    if (!li) {
      li = instantiate("kill-template", k.id);
      killList.prepend(li);
      flash(li);
    }
    fillKill(li, k);
    showKills();
  }

  // ------------------------------------------------------------------ exposure
  const exposureRows = document.getElementById("exposure-rows");
  function exposureRow(key, level, label, instrument, net, filled, working, total) {
    const tr = el("tr", { "data-key": key, class: `lvl-${level}${total ? " total" : ""}` });
    const who = el("td");
    if (level === "firm") who.textContent = "Firm";
    else who.append(el("span", { class: "muted" }, level), ` ${label}`);
    const inst = el("td", total ? { class: "muted" } : {});
    if (total) inst.textContent = "all";
    else inst.append(el("strong", {}, instrument));
    const netCell = el("td", { class: `num${total ? " muted" : net > 0 ? " side-buy" : net < 0 ? " side-sell" : ""}`, "data-field": "net_qty" }, total ? "—" : shares(net));
    tr.append(who, inst, netCell,
      el("td", { class: "num", "data-field": "filled_notional" }, money(filled)),
      el("td", { class: "num", "data-field": "working_notional" }, money(working)));
    return tr;
  }
  function drawExposure(groups) {
    if (!exposureRows) return;
    const old = new Map([...exposureRows.querySelectorAll("tr[data-key]")].map((tr) => [tr.dataset.key, tr]));
    const rows = [];
    groups.forEach((g) => {
      g.positions.forEach((p) => rows.push(exposureRow(`${g.level}:${g.key}:${p.instrument}`, g.level, g.key, p.instrument, p.net_qty, p.filled_notional, p.working_notional, false)));
      if (g.positions.length > 1) rows.push(exposureRow(`${g.level}:${g.key}:`, g.level, g.key, "", 0, g.filled_notional, g.working_notional, true));
    });
    rows.forEach((tr) => {
      const was = old.get(tr.dataset.key);
      if (!was) return;
      tr.querySelectorAll("[data-field]").forEach((c) => {
        const prev = was.querySelector(`[data-field="${c.dataset.field}"]`);
        if (prev && prev.textContent !== c.textContent) flash(c);
      });
    });
    if (!rows.length) rows.push(el("tr", { class: "empty" }));
    if (rows.length === 1 && !rows[0].dataset.key) rows[0].append(el("td", { colspan: "5", class: "muted" }, "No positions or working orders today."));
    exposureRows.replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ engaging a kill switch
  const killForm = document.getElementById("kill-form");
  const killDialog = document.getElementById("kill-dialog");
  if (killForm && killDialog && typeof killDialog.showModal === "function") {
    const go = document.getElementById("kill-dialog-go");
    const err = document.getElementById("kill-dialog-error");
    let opener = null;
    killForm.addEventListener("submit", async (e) => {
      e.preventDefault();
      opener = e.submitter;
      if (!killForm.reportValidity()) return;
      const data = new FormData(killForm);
      const q = new URLSearchParams({
        scope_type: data.get("scope_type") || "",
        scope_key: data.get("scope_key") || "",
        state: data.get("state") || "HALTED",
      });
      let p;
      try {
        const resp = await fetch(`${config.preview_url}?${q}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
        p = await answerOf(resp);
      } catch (x) {
        p = { ok: false, error: "the server did not answer; try again" };
      }
      const where = `${q.get("scope_type")} ${p.scope_key || ""}`.trim();
      document.getElementById("kill-dialog-title").textContent = p.ok ? `Engage the kill switch on ${where}?` : "Cannot engage";
      document.getElementById("kill-dialog-what").textContent = p.ok ? `${p.text}.` : "";
      document.getElementById("kill-dialog-reason").textContent = data.get("reason") || "";
      err.textContent = p.ok ? "" : p.error;
      err.hidden = !!p.ok;
      go.disabled = !p.ok;
      go.textContent = q.get("state") === "REDUCING" ? `Reduce-only ${where}` : `Halt ${where}`;
      killDialog.showModal();
      // Starts on "Back": a stray Enter must not halt trading.
      document.getElementById("kill-dialog-back").focus();
    });
    document.getElementById("kill-dialog-back").addEventListener("click", () => killDialog.close());
    killDialog.addEventListener("close", () => opener && opener.focus());
    go.addEventListener("click", async () => {
      go.disabled = true;
      if (!live) {
        HTMLFormElement.prototype.submit.call(killForm); // no second submit event
        return;
      }
      // In place, as the console's other actions: its card arrives by the server's event.
      const data = await postForm(killForm);
      if (data.ok) {
        killDialog.close();
        say(data.message, "success");
        killForm.querySelectorAll("input:not([type]), input[type=text]").forEach((i) => { i.value = ""; });
      } else {
        err.textContent = data.error || "refused";
        err.hidden = false;
        go.disabled = false;
      }
    });
  }

  // ------------------------------------------------------------------ websocket
  window.oversightRiskLatencyMs = [];
  const conn = document.getElementById("conn");
  function showConn(text, ok) {
    if (!conn) return;
    conn.hidden = false;
    conn.textContent = text;
    conn.className = "conn " + (ok ? "ok" : "down");
  }
  function reconcile(msg) {
    const seen = new Set(msg.exceptions.map((p) => String(p.id)));
    msg.exceptions.forEach(upsertException);
    if (msg.complete) {
      // Anything else in the queue was resolved while the socket was down.
      excRows().forEach((tb) => { if (!seen.has(tb.dataset.id)) tb.remove(); });
      openCount = msg.exceptions.length;
      showCount();
    }
    const active = new Set(msg.kills.map((k) => String(k.id)));
    killList.querySelectorAll("li.kill-card").forEach((li) => { if (!active.has(li.dataset.id)) li.remove(); });
    msg.kills.forEach(upsertKill);
  }
  function onMessage(msg) {
    switch (msg.type) {
      case "exception": {
        upsertException(msg.payload);
        if (msg.sent_at) {
          const lat = window.oversightRiskLatencyMs;
          lat.push(Date.now() - msg.sent_at * 1000);
          if (lat.length > 20000) lat.splice(0, 10000);
        }
        break;
      }
      case "kill":
        upsertKill(msg.payload);
        break;
      case "exposure":
        drawExposure(msg.groups || []);
        break;
      case "sync":
        reconcile(msg);
        break;
      case "override":
        if (msg.payload.by) say(`Override ${msg.payload.id} requested for order ${msg.payload.order} by ${msg.payload.by} (${(msg.payload.codes || []).join(", ")})`, "info", "/risk/overrides/");
        break;
      case "restriction": {
        const r = msg.payload.restriction || {};
        const text = {
          added: `${r.symbol} put on the restricted list by ${r.added_by}: new orders on it are refused`,
          lift_requested: `${r.lift_requested_by} asks to lift the restriction on ${r.symbol}: a second risk manager approves it`,
          lifted: `${r.symbol} taken off the restricted list by ${r.lift_requested_by} and ${r.lifted_by}`,
          lift_withdrawn: `${msg.payload.by} withdrew the request to lift the restriction on ${r.symbol}`,
          lift_declined: `${msg.payload.by} declined the request to lift the restriction on ${r.symbol}`,
        }[msg.payload.event];
        if (text) say(text, "info", "/risk/restricted/");
        break;
      }
      case "limit":
        say(`Limit ${msg.payload.scope} ${msg.payload.metric}: ${msg.payload.old_value ?? "none"} → ${msg.payload.new_value ?? "none"} (${msg.payload.status.toLowerCase()})`, "info");
        break;
      default:
    }
  }
  // Console actions (an exception's ack, assign, comment and resolve; a kill switch's
  // reset request and approval) answer in place: open details, typed text elsewhere and
  // the scroll stay; the reply comes back as a message; the row changes when the server's
  // event arrives, as it does on every risk manager's console. Without a live socket the
  // form posts and the page reloads, as it would without this script.
  let live = false;
  // A reply that is not the endpoint's JSON (a login page after the session ended, a
  // CSRF refusal, a server error) says its status instead of pretending nobody answered.
  async function answerOf(resp) {
    if ((resp.headers.get("Content-Type") || "").includes("application/json")) return resp.json();
    return { ok: false, error: `the server answered ${resp.status}${resp.redirected ? " (a redirect: is the session over?)" : ""}; reload the page and try again` };
  }
  // A form's POST as the endpoint's JSON answer: {ok, message} or {ok: false, error}.
  async function postForm(form) {
    try {
      const resp = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin", headers: { Accept: "application/json" },
      });
      return await answerOf(resp);
    } catch (x) {
      return { ok: false, error: "the server did not answer; try again" };
    }
  }
  async function actInPlace(e) {
    const form = e.target.closest("form");
    if (!form || form.method.toLowerCase() !== "post" || !live) return;
    e.preventDefault();
    if (form.dataset.busy) return; // a double click sends once
    form.dataset.busy = "1";
    const data = await postForm(form);
    delete form.dataset.busy;
    if (data.ok) {
      say(data.message, "success");
      form.querySelectorAll("input:not([type]), input[type=text]").forEach((i) => { i.value = ""; });
    } else {
      say(data.error || "refused", "error");
    }
    return data;
  }
  excTable.addEventListener("submit", actInPlace);
  killList.addEventListener("submit", actInPlace);
  if (endedForm) {
    endedForm.addEventListener("submit", async (e) => {
      const data = await actInPlace(e);
      // Those beyond the table's page were resolved too (the ones shown go as their
      // events arrive); a refusal leaves the count as it was.
      if (data && data.ok) {
        endedBeyond = 0;
        showEnded({ id: -1, status: "RESOLVED" });
      }
    });
  }

  let attempt = 0;
  let current = null;
  const { ENDED: SESSION_ENDED, over: sessionOver } = window.oversightSession;
  // As on the blotter: offline is said at once, not left as "● live" (a trial); back
  // online, the socket is opened again and the console syncs (one that says it is open
  // may be dead after a change of network: a review).
  window.addEventListener("offline", () => showConn("offline: not live", false));
  window.addEventListener("online", () => {
    if (current && current.readyState <= 1) current.close();
  });
  function connect() {
    const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.ws_path);
    current = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      attempt = 0;
      live = true;
      showConn("● live", true);
      socket.send(JSON.stringify({ type: "sync" }));
    });
    socket.addEventListener("message", (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch (x) {
        return;
      }
      onMessage(msg);
    });
    socket.addEventListener("close", async (e) => {
      live = false;
      if (e.code === 4403 || (!opened && await sessionOver("risk"))) {
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
  connect();
})();
