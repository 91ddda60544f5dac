// The TCA page: a sortable orders table, and two plotly charts drawn from the page's
// json_script data (plotly is served by the app itself, like on the order page).
(function () {
  "use strict";

  // ------------------------------------------------------------------ sorting
  const table = document.getElementById("tca-orders");
  if (table) {
    table.querySelectorAll("th button.sort").forEach((b) => {
      b.addEventListener("click", () => {
        const th = b.closest("th");
        const col = th.cellIndex; // the header's own column: columns may be left out
        const numeric = b.hasAttribute("data-numeric");
        const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
        table.querySelectorAll("th[aria-sort]").forEach((t) => t.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        const key = (tr) => {
          const cell = tr.cells[col];
          const v = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
          return numeric && v !== "" ? Number(v) : v;
        };
        const body = table.tBodies[0];
        const rows = [...body.rows];
        rows.sort((a, c) => {
          const x = key(a), y = key(c);
          // An unknown figure (a dash) sorts last whichever way: it is not a zero.
          if (x === "" || y === "") return x === y ? 0 : x === "" ? 1 : -1;
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
        body.append(...rows);
      });
    });
  }

  // ------------------------------------------------------------------ charts
  const dataEl = document.getElementById("tca-chart-data");
  if (!dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const COLOURS = ["#4da3ff", "#f0b429", "#c38bff", "#2fd0c4", "#ff8a5c", "#9ccc65"];
  const strategies = [...new Set(data.points.map((p) => p.strategy))].sort();
  const colour = (s) => COLOURS[strategies.indexOf(s) % COLOURS.length];
  const label = (p) => `order ${p.id} · ${p.side} ${p.symbol} · ${p.strategy.toUpperCase()}`;
  const base = {
    paper_bgcolor: "#161c23", plot_bgcolor: "#161c23", font: { color: "#d8dee6", size: 11 },
    margin: { l: 56, r: 16, t: 28, b: 40 }, legend: { orientation: "h", x: 0, y: 1.12 },
  };
  const zeroLine = { gridcolor: "#2a3440", zeroline: true, zerolinecolor: "#8a96a3", tickformat: ".1f" };

  function boxTraces() {
    // One box per strategy and measure, with every order as a point beside it.
    const measures = [
      { key: "filled_bps", name: "filled part", fill: "rgba(77, 163, 255, 0.25)", line: "#4da3ff" },
      { key: "total_bps", name: "total", fill: "rgba(240, 180, 41, 0.25)", line: "#f0b429" },
    ];
    return measures.map((m) => {
      const pts = data.points.filter((p) => p[m.key] !== null);
      return {
        type: "box", name: m.name, boxpoints: "all", jitter: 0.4, pointpos: 0,
        x: pts.map((p) => p.strategy.toUpperCase()), y: pts.map((p) => p[m.key]),
        text: pts.map(label), customdata: pts.map((p) => p.id),
        hovertemplate: "%{text}<br>%{y:.2f} bps<extra>" + m.name + "</extra>",
        fillcolor: m.fill, line: { color: m.line, width: 1 }, marker: { size: 5, color: m.line },
      };
    });
  }

  function scatterTraces() {
    return strategies.map((s) => {
      const pts = data.points.filter((p) => p.strategy === s && p.total_bps !== null && p.participation_pct !== null);
      return {
        type: "scatter", mode: "markers", name: s.toUpperCase(),
        x: pts.map((p) => p.participation_pct), y: pts.map((p) => p.total_bps),
        text: pts.map(label), customdata: pts.map((p) => p.id),
        hovertemplate: "%{text}<br>%{y:.2f} bps at %{x:.2f}% participation<extra></extra>",
        marker: { size: 7, color: colour(s), opacity: 0.85 },
      };
    });
  }

  function openOrder(ev) {
    const id = ev.points && ev.points[0] && ev.points[0].customdata;
    if (id) window.location.href = data.order_url.replace("{id}", id);
  }

  function draw() {
    const config = { displaylogo: false, responsive: true };
    const box = document.getElementById("tca-box");
    window.Plotly.newPlot(box, boxTraces(), {
      ...base, boxmode: "group",
      xaxis: { gridcolor: "#2a3440", categoryorder: "category ascending" },
      yaxis: { ...zeroLine, title: { text: "shortfall (bps, + = cost)" } },
    }, config);
    box.on("plotly_click", openOrder);
    const scatter = document.getElementById("tca-scatter");
    window.Plotly.newPlot(scatter, scatterTraces(), {
      ...base,
      // Plotly's own tick format: a fixed ".1f" printed 0.0 0.0 0.0 0.1 0.1 for a range
      // under a tenth of a percent (a trial).
      xaxis: { gridcolor: "#2a3440", title: { text: "realised participation (%)" }, rangemode: "tozero" },
      yaxis: { ...zeroLine, title: { text: "total shortfall (bps, + = cost)" } },
    }, config);
    scatter.on("plotly_click", openOrder);
  }
  const start = () => (window.Plotly ? draw() : setTimeout(start, 50));
  start();
})();
