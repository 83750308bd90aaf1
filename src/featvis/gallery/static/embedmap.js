// featvis embedding map: PCA / t-SNE / UMAP coordinates on a canvas. Pan (drag), zoom (wheel, about
// the cursor), hover (nearest point within a few pixels: thumbnail and label), class toggles.
// No library: points are drawn class by class with fillRect, and hover looks only in the cells of a
// spatial grid near the cursor, so 10,000 points stay smooth. Reads window.FEATVIS_MAP (embedmap.py).
"use strict";
(function () {
  var data = window.FEATVIS_MAP;
  var canvas = document.getElementById("map");
  if (!data || !canvas || !data.methods.length) { return; }
  var ctx = canvas.getContext("2d");
  var tip = document.getElementById("map-tip");
  var thumb = document.getElementById("map-thumb");
  var label = document.getElementById("map-label");
  var legend = document.getElementById("map-legend");
  var n = data.labels.length;
  var HOVER_PX = 8, GRID = 64, POINT_PX = 4;
  // tab10, then tab20's light shades; further classes get golden-angle hues
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#c7c7c7", "#dbdb8d", "#9edae5"];
  function colour(k) {
    return k < PALETTE.length ? PALETTE[k] : "hsl(" + Math.round((k * 137.508) % 360) + ",55%,45%)";
  }
  var hidden = {};
  var sprite = new Image();
  sprite.src = data.sprite;

  // points grouped by class (one fillStyle per class), finite ones only
  var byClass = data.classes.map(function () { return []; });
  var xy = new Float64Array(2 * n), ok = new Uint8Array(n);
  var view = { a: 1, bx: 0, by: 0 };  // screen x = a * x + bx, screen y = by - a * y
  var grid = null, hover = -1, method = null, frame = 0;

  function setMethod(name) {
    method = name;
    var flat = data.coords[name];
    for (var i = 0; i < n; i++) {
      var x = flat[2 * i], y = flat[2 * i + 1];
      ok[i] = x !== null && y !== null ? 1 : 0;
      xy[2 * i] = ok[i] ? x : 0; xy[2 * i + 1] = ok[i] ? y : 0;
    }
    byClass.forEach(function (list) { list.length = 0; });
    for (var j = 0; j < n; j++) { if (ok[j]) { byClass[data.labels[j]].push(j); } }
    buildGrid(); fit(); hideTip();
    Array.prototype.forEach.call(document.querySelectorAll("[data-method]"), function (b) {
      b.setAttribute("aria-pressed", b.dataset.method === name ? "true" : "false");
    });
    canvas.dataset.method = name;
    request();
  }

  function bounds() {
    var b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    for (var i = 0; i < n; i++) {
      if (!ok[i]) { continue; }
      var x = xy[2 * i], y = xy[2 * i + 1];
      if (x < b.x0) { b.x0 = x; } if (x > b.x1) { b.x1 = x; }
      if (y < b.y0) { b.y0 = y; } if (y > b.y1) { b.y1 = y; }
    }
    if (!isFinite(b.x0)) { b = { x0: -1, y0: -1, x1: 1, y1: 1 }; }
    return b;
  }

  // a GRID x GRID counting-sort grid over the data's bounding box: cellStart[c]..cellStart[c+1] in cellItems
  function buildGrid() {
    var b = bounds();
    var w = (b.x1 - b.x0) || 1, h = (b.y1 - b.y0) || 1;
    var counts = new Int32Array(GRID * GRID + 1), cellOf = new Int32Array(n);
    for (var i = 0; i < n; i++) {
      if (!ok[i]) { cellOf[i] = -1; continue; }
      var cx = Math.min(GRID - 1, Math.floor((xy[2 * i] - b.x0) / w * GRID));
      var cy = Math.min(GRID - 1, Math.floor((xy[2 * i + 1] - b.y0) / h * GRID));
      cellOf[i] = cy * GRID + cx; counts[cellOf[i] + 1]++;
    }
    for (var c = 0; c < GRID * GRID; c++) { counts[c + 1] += counts[c]; }
    var fill = counts.slice(0, GRID * GRID), items = new Int32Array(counts[GRID * GRID]);
    for (var k = 0; k < n; k++) { if (cellOf[k] >= 0) { items[fill[cellOf[k]]++] = k; } }
    grid = { b: b, w: w, h: h, start: counts, items: items };
  }

  function size() {  // the canvas backing store follows its CSS size and the screen's pixel ratio
    var ratio = window.devicePixelRatio || 1, rect = canvas.getBoundingClientRect();
    var width = Math.max(1, Math.round(rect.width * ratio)), height = Math.max(1, Math.round(rect.height * ratio));
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    return ratio;
  }

  function fit() {
    var ratio = size(), b = grid.b, pad = 24 * ratio;
    var a = Math.min((canvas.width - 2 * pad) / grid.w, (canvas.height - 2 * pad) / grid.h);
    view.a = a;
    view.bx = canvas.width / 2 - a * (b.x0 + b.x1) / 2;
    view.by = canvas.height / 2 + a * (b.y0 + b.y1) / 2;
  }

  function request() { if (!frame) { frame = window.requestAnimationFrame(draw); } }

  function draw() {
    frame = 0;
    var started = performance.now(), ratio = size(), s = POINT_PX * ratio, half = s / 2, drawn = 0;
    var W = canvas.width, H = canvas.height;
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, W, H);
    for (var k = 0; k < byClass.length; k++) {
      if (hidden[k]) { continue; }
      ctx.fillStyle = colour(k);
      var list = byClass[k];
      for (var j = 0; j < list.length; j++) {
        var i = list[j], x = view.a * xy[2 * i] + view.bx, y = view.by - view.a * xy[2 * i + 1];
        if (x < -s || y < -s || x > W + s || y > H + s) { continue; }
        ctx.fillRect(x - half, y - half, s, s);
        drawn++;
      }
    }
    if (hover >= 0) {
      var p = screenOf(hover, ratio);
      ctx.strokeStyle = "#000000"; ctx.lineWidth = 2 * ratio;
      ctx.beginPath(); ctx.arc(p[0], p[1], 6 * ratio, 0, 2 * Math.PI); ctx.stroke();
    }
    canvas.dataset.drawn = String(drawn);
    canvas.dataset.drawMs = (performance.now() - started).toFixed(2);
    canvas.dataset.scale = String(view.a);
  }

  function screenOf(i, ratio) {  // in canvas pixels
    return [view.a * xy[2 * i] + view.bx, view.by - view.a * xy[2 * i + 1]];
  }

  function nearest(px, py) {  // canvas pixels -> the closest shown point within HOVER_PX, or -1
    var ratio = window.devicePixelRatio || 1, r = HOVER_PX * ratio / view.a;
    var x = (px - view.bx) / view.a, y = (view.by - py) / view.a, g = grid, best = -1, bestD = r * r;
    var cx0 = Math.max(0, Math.floor((x - r - g.b.x0) / g.w * GRID)), cx1 = Math.min(GRID - 1, Math.floor((x + r - g.b.x0) / g.w * GRID));
    var cy0 = Math.max(0, Math.floor((y - r - g.b.y0) / g.h * GRID)), cy1 = Math.min(GRID - 1, Math.floor((y + r - g.b.y0) / g.h * GRID));
    for (var cy = cy0; cy <= cy1; cy++) {
      for (var cx = cx0; cx <= cx1; cx++) {
        var c = cy * GRID + cx;
        for (var t = g.start[c]; t < g.start[c + 1]; t++) {
          var i = g.items[t];
          if (hidden[data.labels[i]]) { continue; }
          var dx = xy[2 * i] - x, dy = xy[2 * i + 1] - y, d = dx * dx + dy * dy;
          if (d <= bestD) { best = i; bestD = d; }
        }
      }
    }
    return best;
  }

  function showTip(i, clientX, clientY) {
    var cell = data.cell, col = i % data.columns, row = Math.floor(i / data.columns);
    var tctx = thumb.getContext("2d");
    tctx.imageSmoothingEnabled = false;
    tctx.fillStyle = "#808080"; tctx.fillRect(0, 0, thumb.width, thumb.height);
    if (sprite.complete && sprite.naturalWidth) {
      tctx.drawImage(sprite, col * cell, row * cell, cell, cell, 0, 0, thumb.width, thumb.height);
    }
    label.textContent = data.classes[data.labels[i]] + " \u00b7 " + data.names[i];
    tip.dataset.index = String(i);
    tip.hidden = false;
    var frameRect = canvas.parentNode.getBoundingClientRect();
    tip.style.left = (clientX - frameRect.left + 14) + "px";
    tip.style.top = (clientY - frameRect.top + 14) + "px";
  }

  function hideTip() { tip.hidden = true; delete tip.dataset.index; }

  function canvasPoint(event) {
    var rect = canvas.getBoundingClientRect(), ratio = canvas.width / rect.width;
    return [(event.clientX - rect.left) * ratio, (event.clientY - rect.top) * ratio];
  }

  var drag = null;
  canvas.addEventListener("mousedown", function (event) {
    drag = { x: event.clientX, y: event.clientY, bx: view.bx, by: view.by };
  });
  window.addEventListener("mouseup", function () { drag = null; });
  canvas.addEventListener("mousemove", function (event) {
    if (drag) {
      var ratio = canvas.width / canvas.getBoundingClientRect().width;
      view.bx = drag.bx + (event.clientX - drag.x) * ratio;
      view.by = drag.by + (event.clientY - drag.y) * ratio;
      hideTip(); hover = -1; request();
      return;
    }
    var p = canvasPoint(event), i = nearest(p[0], p[1]);
    if (i !== hover) { hover = i; request(); }
    if (i >= 0) { showTip(i, event.clientX, event.clientY); } else { hideTip(); }
  });
  canvas.addEventListener("mouseleave", function () { hover = -1; hideTip(); request(); });
  canvas.addEventListener("wheel", function (event) {
    event.preventDefault();
    var p = canvasPoint(event), f = Math.exp(-event.deltaY * 0.0015);
    view.a *= f;
    view.bx = p[0] - (p[0] - view.bx) * f;
    view.by = p[1] - (p[1] - view.by) * f;
    hideTip(); hover = -1; request();
  }, { passive: false });
  canvas.addEventListener("dblclick", function () { fit(); request(); });
  document.getElementById("map-reset").addEventListener("click", function () { fit(); request(); });
  Array.prototype.forEach.call(document.querySelectorAll("[data-method]"), function (button) {
    button.addEventListener("click", function () { setMethod(button.dataset.method); });
  });
  Array.prototype.forEach.call(legend.querySelectorAll("li"), function (item) {
    var k = +item.dataset.class;
    item.querySelector(".swatch").style.background = colour(k);
    item.addEventListener("click", function () {
      hidden[k] = !hidden[k];
      item.classList.toggle("off", !!hidden[k]);
      hover = -1; hideTip(); request();
    });
  });
  window.addEventListener("resize", function () { fit(); request(); });
  // for tests and the console: where point i is drawn, in CSS pixels from the canvas's top left
  window.featvisMap = {
    cssPoint: function (i) {
      var ratio = canvas.width / canvas.getBoundingClientRect().width, p = screenOf(i);
      return [p[0] / ratio, p[1] / ratio];
    },
    method: function () { return method; }
  };
  setMethod(data.methods[0]);
})();
