/* metrics-ingest console: draws each chart from the JSON data block its element names (data-chart), with uPlot.
   No inline script anywhere; this file and the vendored libraries are the only scripts a page runs. */
(function () {
  "use strict";

  var HEIGHT = 260;

  function width(el) {
    return Math.max(320, Math.floor(el.clientWidth || 640));
  }

  function timeChart(spec) {
    var series = {
      label: spec.label,
      stroke: "#1d4ed8",
      width: 1.5,
      points: { show: true, size: 5, fill: "#1d4ed8" },
    };
    var scales = { x: { time: true } };
    if (spec.bars) {
      // One bar per bucket, drawn from the bucket's start to the next one; the value axis starts at zero.
      series.fill = "rgba(29, 78, 216, 0.35)";
      series.paths = uPlot.paths.bars({ size: [0.9, 80], align: 1 });
      series.points = { show: false };
      var step = spec.x.length > 1 ? spec.x[1] - spec.x[0] : 86400;
      scales.x.range = function (u, min, max) { return [min, max + step]; };
      scales.y = { range: function (u, min, max) { return [Math.min(0, min), Math.max(0, max) * 1.05 || 1]; } };
    }
    return {
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), spec.tz); },
      scales: scales,
      series: [{ label: "time" }, series],
    };
  }

  function barChart(spec) {
    var labels = spec.labels;
    return {
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] } },
      axes: [
        {
          splits: function () { return labels.map(function (_, i) { return i; }); },
          values: function (u, splits) { return splits.map(function (i) { return labels[i]; }); },
          rotate: labels.length > 6 ? -30 : 0,
          size: labels.length > 6 ? 90 : 40,
        },
        {},
      ],
      series: [
        { label: "metric", value: function (u, i) { return i == null ? "" : labels[i]; } },
        {
          label: spec.label,
          stroke: "#1d4ed8",
          fill: "rgba(29, 78, 216, 0.35)",
          paths: uPlot.paths.bars({ size: [0.6, 80] }),
          points: { show: false },
        },
      ],
    };
  }

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    var spec = JSON.parse(source.textContent);
    var opts = spec.kind === "bars" ? barChart(spec) : timeChart(spec);
    opts.width = width(el);
    opts.height = HEIGHT;
    var plot = new uPlot(opts, [spec.x, spec.y], el);
    el.setAttribute("data-drawn", String(spec.x.length));
    window.addEventListener("resize", function () {
      plot.setSize({ width: width(el), height: HEIGHT });
    });
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
})();
