// Draws the report's interactive charts with uPlot from the JSON block #chart-data (built by
// charts.rs): one chart per div of class "chart" whose data-chart attribute is N. Hover shows values in the
// legend, dragging across a chart zooms its x axis, double-click or "Reset zoom" undoes it.
// Any error is written into #chart-errors so a headless browser's DOM dump shows it; the body's
// data-charts-drawn attribute says how many charts were drawn, and a chart whose steady-state
// window was painted gets a data-shaded attribute.
(function () {
  "use strict";
  var errors = document.getElementById("chart-errors");
  function report(message) {
    errors.textContent += message + "\n";
    errors.hidden = false;
  }
  window.addEventListener("error", function (e) {
    report("error: " + e.message);
  });

  var palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function fmt(v) {
    if (v == null) return "--";
    var a = Math.abs(v);
    if (a >= 100) return v.toFixed(0);
    if (a >= 1) return v.toFixed(2);
    return v.toPrecision(3);
  }

  // Fills the x range [from, to] behind the series (the steady-state window).
  function shade(range) {
    return {
      hooks: {
        drawClear: function (u) {
          var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
          var x0 = Math.max(left, u.valToPos(range[0], "x", true));
          var x1 = Math.min(right, u.valToPos(range[1], "x", true));
          if (!(x1 > x0)) return;
          u.ctx.save();
          u.ctx.fillStyle = "rgba(44, 160, 44, 0.18)";
          u.ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
          u.ctx.restore();
          u.root.setAttribute("data-shaded", "true");
        }
      }
    };
  }

  function series(spec, s, k) {
    var color = palette[k % palette.length];
    var out = { label: s.label, stroke: color, width: 2, spanGaps: true,
                scale: s.right_axis ? "y2" : "y", value: function (u, v) { return fmt(v); } };
    if (s.draw === "points") {
      out.paths = function () { return null; };
      out.points = { show: true, size: 8, fill: color, stroke: color };
    } else if (s.draw === "step") {
      out.paths = uPlot.paths.stepped({ align: 1 });
      out.points = { show: false };
    } else {
      // Filled, so a Pareto frontier's points stand out over the plain run points.
      out.points = { show: true, size: 7, fill: color, stroke: color };
    }
    if (spec.point_labels) {
      out.value = function (u, v, si, i) {
        return v == null || i == null ? "--" : fmt(v) + " (" + spec.point_labels[i] + ")";
      };
    }
    return out;
  }

  function options(spec, width) {
    var xScale = { time: false };
    if (spec.x_log2) {
      xScale.distr = 3;
      xScale.log = 2;
    }
    var opts = {
      title: spec.title,
      width: width,
      height: 300,
      scales: { x: xScale },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: spec.x_label, value: function (u, v) { return fmt(v); } }],
      axes: [{ label: spec.x_label }, { label: spec.y_label }],
      plugins: spec.shade ? [shade(spec.shade)] : []
    };
    spec.series.forEach(function (s, k) {
      opts.series.push(series(spec, s, k));
    });
    if (spec.y2_label) {
      opts.scales.y2 = { auto: true };
      opts.axes.push({ label: spec.y2_label, scale: "y2", side: 1, grid: { show: false } });
    }
    return opts;
  }

  function draw(el, spec) {
    var width = Math.max(320, Math.min(960, el.clientWidth || 800));
    var plot = new uPlot(options(spec, width), spec.data, el);
    var reset = document.createElement("button");
    reset.className = "reset";
    reset.textContent = "Reset zoom";
    reset.addEventListener("click", function () {
      plot.setData(plot.data, true);
    });
    el.insertBefore(reset, el.firstChild);
  }

  var specs;
  try {
    specs = JSON.parse(document.getElementById("chart-data").textContent);
  } catch (e) {
    report("chart data: " + e.message);
    return;
  }
  var drawn = 0;
  var divs = document.querySelectorAll("div.chart[data-chart]");
  for (var i = 0; i < divs.length; i++) {
    var spec = specs[Number(divs[i].getAttribute("data-chart"))];
    try {
      if (!spec) throw new Error("no data");
      draw(divs[i], spec);
      drawn++;
    } catch (e) {
      report("chart " + divs[i].getAttribute("data-chart") + ": " + e.message);
    }
  }
  document.body.setAttribute("data-charts-drawn", String(drawn));
})();
