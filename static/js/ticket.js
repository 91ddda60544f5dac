// Order ticket: strategy parameter fields generated from the schemas rendered into the page,
// and the pre-trade estimate fetched as the ticket changes.
(function () {
  "use strict";

  const form = document.getElementById("ticket");
  const schemas = JSON.parse(document.getElementById("strategy-schemas").textContent);
  const instruments = JSON.parse(document.getElementById("instruments").textContent);
  const estimateUrl = JSON.parse(document.getElementById("estimate-url").textContent);
  const box = document.getElementById("param-fields");
  const strategy = form.elements.strategy;
  // What the trader typed per parameter name, kept when switching strategies.
  const typed = {};

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function field(p) {
    const key = "param_" + p.name;
    const wrap = el("div", { class: "field" });
    const label = el("label", { for: "id_" + key, title: p.name }, p.label || p.name);
    if (p.unit) label.append(" ", el("span", { class: "muted" }, `(${p.unit})`));
    const value = typed[p.name] !== undefined ? typed[p.name] : String(p.default);
    let input;
    if (p.type === "bool" || p.type === "choice") {
      input = el("select", { id: "id_" + key, name: key });
      const opts = p.type === "bool" ? [["true", "yes"], ["false", "no"]] : p.choices.map((c) => [c, c]);
      // No default (no model designated): the trader chooses; nothing is preselected.
      if (p.type === "choice" && p.default === "") opts.unshift(["", "— choose one —"]);
      opts.forEach(([v, t]) => {
        const o = el("option", { value: v }, t);
        if (value === v) o.selected = true;
        input.append(o);
      });
    } else {
      input = el("input", { id: "id_" + key, name: key, value, inputmode: "decimal" });
    }
    const range = [p.minimum !== null ? `min ${p.minimum}` : "", p.maximum !== null ? `max ${p.maximum}` : ""].filter(Boolean).join(", ");
    const help = el("small", { id: "help_" + key, class: "help" }, p.help + (range ? ` (${range})` : ""));
    input.setAttribute("aria-describedby", "help_" + key);
    wrap.append(label, input, help);
    return wrap;
  }

  // Only what the trader changed carries over; untouched fields take the new strategy's
  // defaults (POV's `complete` differs from the others').
  const remember = (e) => {
    if (e.target.name && e.target.name.startsWith("param_")) typed[e.target.name.slice(6)] = e.target.value;
  };
  box.addEventListener("input", remember);
  box.addEventListener("change", remember);
  // Values the server sent back with errors count as typed.
  if (form.querySelector(".has-error, [role=alert]")) {
    box.querySelectorAll("[name^=param_]").forEach((i) => { typed[i.name.slice(6)] = i.value; });
  }

  strategy.addEventListener("change", () => {
    box.replaceChildren(...(schemas[strategy.value] || []).map(field));
    scheduleEstimate(); // each strategy has its own schedule, and so its own cost
  });

  // --- the window in the session's clock
  const clockOut = document.getElementById("window-clock");
  const marketOut = document.getElementById("market-clock");
  // A ticket sent back with errors holds what the trader typed: never move it.
  let windowTouched = Boolean(form.querySelector(".has-error, [role=alert]"));
  const hhmm = (minute) => {
    const m = Math.round(570 + Number(minute));
    return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
  };
  // An untouched window follows the market's clock: it starts at the clock's next
  // minute, keeping its length, and back at 09:30 once the day has rolled; within two
  // minutes of the close it stays (a trial's ticket, left open through the close, set a
  // window of 16:00 to 16:00 and then could not be sent).
  const startLen = Number(form.elements.end_minute.value) - Number(form.elements.start_minute.value);
  function fitWindow(minute) {
    if (windowTouched || minute === undefined || !(startLen > 0)) return false;
    const start = form.elements.start_minute, end = form.elements.end_minute;
    const want = Math.ceil(minute);
    if (want === Number(start.value) || want + 2 > 390) return false;
    start.value = want;
    end.value = Math.min(390, want + startLen);
    showWindow();
    return true;
  }
  function showMarket(market) {
    const sym = instruments[form.elements.instrument.value].symbol;
    marketOut.textContent = `${sym} market: day ${market.day}, ${market.at}${market.running ? " (running)" : " (resumes here with the next order)"}`;
    return fitWindow(market.minute);
  }
  function showWindow() {
    const a = form.elements.start_minute.value, b = form.elements.end_minute.value;
    if (a === "" || b === "" || Number(b) <= Number(a)) {
      clockOut.textContent = "";
      return;
    }
    const len = Number(b) - Number(a);
    clockOut.textContent = `${hhmm(a)} → ${hhmm(b)} in the simulated session (${Math.floor(len / 60)}h${String(Math.round(len % 60)).padStart(2, "0")})`;
  }

  // --- limit price step from the instrument's tick
  function showTick() {
    const inst = instruments[form.elements.instrument.value];
    if (!inst) return;
    const lp = form.elements.limit_price;
    lp.step = inst.tick;
    lp.placeholder = `none (ref ${inst.px}, tick ${inst.tick})`;
  }

  // --- pre-trade estimate
  const out = (k) => document.querySelector(`[data-est="${k}"]`);
  const warnings = document.getElementById("est-warnings");
  const errorOut = document.getElementById("est-error");
  const modelOut = document.getElementById("est-model");
  const modelTerm = document.getElementById("est-model-term");
  let timer = null;
  let generation = 0;
  function scheduleEstimate() {
    clearTimeout(timer);
    timer = setTimeout(estimate, 250);
  }
  // The kill switches that would refuse the order, as of the last answer.
  const killBox = document.getElementById("ticket-kills");
  function showKills(texts) {
    if (!Array.isArray(texts)) return;
    const list = killBox.querySelector("ul");
    // Only a change is written: the banner is an alert, re-read aloud when it changes.
    if ([...list.children].map((li) => li.textContent).join("\n") === texts.map((t) => "⚠ " + t).join("\n")) return;
    list.replaceChildren(...texts.map((t) => el("li", {}, "⚠ " + t)));
    killBox.hidden = texts.length === 0;
  }
  async function estimate() {
    const q = new URLSearchParams({
      instrument: form.elements.instrument.value,
      quantity: form.elements.quantity.value,
      start_minute: form.elements.start_minute.value,
      end_minute: form.elements.end_minute.value,
      side: (form.querySelector("input[name=side]:checked") || {}).value || "buy",
      strategy: strategy.value,
    });
    if (form.elements.limit_price.value.trim() !== "") q.append("limit_price", form.elements.limit_price.value.trim());
    box.querySelectorAll("[name^=param_]").forEach((i) => { if (i.value.trim() !== "") q.append(i.name, i.value); });
    const mine = ++generation;
    let data;
    try {
      const resp = await fetch(`${estimateUrl}?${q}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      data = await resp.json();
    } catch (e) {
      data = { error: "estimate unavailable" };
    }
    if (mine !== generation) return; // a newer request is on its way
    showKills(data.kills);
    warnings.replaceChildren();
    document.querySelectorAll("[data-est]").forEach((e) => { e.textContent = "—"; });
    // Which model version (and which expert of a gated one) would trade the order.
    modelOut.textContent = data.model || "";
    modelOut.hidden = modelTerm.hidden = !data.model;
    const moved = data.market ? showMarket(data.market) : false;
    if (data.error) {
      errorOut.textContent = data.error;
      if (moved) scheduleEstimate(); // the window it moved may be the fix
      return;
    }
    errorOut.textContent = "";
    const fmt = {
      cost_bps: (v) => v.toFixed(1), uncertainty_bps: (v) => v.toFixed(1), spread_cost_bps: (v) => v.toFixed(1),
      impact_bps: (v) => v.toFixed(1), participation_pct: (v) => v.toFixed(2), adv_pct: (v) => v.toFixed(1),
      // Two decimals, as the participation limit's own refusal says it.
      window_share_pct: (v) => v.toFixed(2),
      cost_usd: (v) => v.toLocaleString("en-US", { maximumFractionDigits: 0 }),
      notional_usd: (v) => v.toLocaleString("en-US", { maximumFractionDigits: 0 }),
      window_volume: (v) => v.toLocaleString("en-US"),
      fill_pct: (v) => v.toFixed(0),
    };
    for (const [k, f] of Object.entries(fmt)) if (out(k) && data[k] !== undefined) out(k).textContent = f(data[k]);
    if (moved) scheduleEstimate();
    data.warnings.forEach((w) => warnings.append(el("li", { role: "alert" }, "⚠ " + w)));
  }

  ["instrument", "quantity", "start_minute", "end_minute", "limit_price"].forEach((name) => {
    const e = form.elements[name];
    e.addEventListener("input", scheduleEstimate);
    e.addEventListener("change", scheduleEstimate);
  });
  // The side decides what a limit leaves unfilled and which restrictions refuse the order.
  form.querySelectorAll("input[name=side]").forEach((e) => e.addEventListener("change", scheduleEstimate));
  // A parameter that shapes the schedule (a POV rate, an IS risk aversion) moves the cost.
  box.addEventListener("input", scheduleEstimate);
  box.addEventListener("change", scheduleEstimate);
  ["start_minute", "end_minute"].forEach((n) => form.elements[n].addEventListener("input", () => {
    windowTouched = true;
    showWindow();
  }));
  form.elements.instrument.addEventListener("change", showTick);
  const clockOf = () => (instruments[form.elements.instrument.value] || {}).minute;
  form.elements.instrument.addEventListener("change", () => fitWindow(clockOf()));

  // Focus the first field with an error, else the quantity.
  const bad = form.querySelector(".has-error input, .has-error select");
  (bad || form.elements.quantity).focus();

  showWindow();
  fitWindow(clockOf());
  showTick();
  estimate();
  // Asked again while the page is in view: a kill switch engaged or reset, a limit
  // changed or the market's clock moving change what the ticket should say.
  setInterval(() => { if (!document.hidden) scheduleEstimate(); }, 10000);
})();
