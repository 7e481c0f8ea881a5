// A milestone's burn-up chart, drawn with uPlot from the page's JSON (#burn-up-data). Without
// JavaScript, or without uPlot, the table under it says the same.
(function () {
  "use strict";

  function draw() {
    var holder = document.querySelector("[data-burn-up-chart]");
    var source = document.getElementById("burn-up-data");
    if (!holder || !source || typeof window.uPlot !== "function") return;
    var data = JSON.parse(source.textContent);
    if (!data.days.length) return;
    // uPlot's x axis is Unix time in seconds; each day is drawn at its UTC midnight.
    var days = data.days.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
    var style = getComputedStyle(document.documentElement);
    var ink = style.getPropertyValue("--text").trim() || "#374151";
    var options = {
      width: Math.max(holder.clientWidth, 280),
      height: 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
      axes: [{ stroke: ink }, { stroke: ink }],
      series: [
        {},
        { label: "Issues in the milestone", stroke: "#6b7280", width: 2 },
        { label: "Done", stroke: "#16a34a", width: 2, fill: "rgba(22, 163, 74, 0.12)" },
      ],
    };
    var chart = new uPlot(options, [days, data.scope, data.done], holder);
    holder.burnUpChart = chart; // for the browser test, and anyone curious in the console
    holder.removeAttribute("aria-hidden");
    holder.setAttribute("role", "img");
    holder.setAttribute("aria-label", "Burn-up chart: the table below gives its numbers");
    var table = document.querySelector("[data-burn-up-table]");
    if (table) table.removeAttribute("open");
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(holder.clientWidth, 280), height: 260 });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
