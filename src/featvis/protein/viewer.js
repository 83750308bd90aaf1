// featvis offline structure viewer: C-alpha trace on a 2D canvas, no external libraries.
// DATA = {title, residues: [{label, xyz}], tracks: {name: {values, diverging, note}}, variant, reading}
(function () {
  "use strict";
  const data = DATA;
  const canvas = document.getElementById("view");
  const ctx = canvas.getContext("2d");
  const select = document.getElementById("track");
  const tip = document.getElementById("tip");
  const legend = document.getElementById("legend");
  const n = data.residues.length;
  const centre = [0, 0, 0];
  data.residues.forEach(r => r.xyz.forEach((v, k) => { centre[k] += v / n; }));
  const pts = data.residues.map(r => r.xyz.map((v, k) => v - centre[k]));
  const extent = Math.max(...pts.map(p => Math.hypot(p[0], p[1], p[2]))) || 1;
  let rot = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  let zoom = 1;
  let drag = null;
  let projected = [];

  function mul(a, b) {
    return a.map(row => [0, 1, 2].map(j => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
  }
  function turn(ax, ay) {
    const cx = Math.cos(ax), sx = Math.sin(ax), cy = Math.cos(ay), sy = Math.sin(ay);
    const rx = [[1, 0, 0], [0, cx, -sx], [0, sx, cx]];
    const ry = [[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]];
    rot = mul(mul(ry, rx), rot);
  }
  // Sequential: white -> orange -> dark red. Diverging: blue -> white -> red.
  function colour(t, diverging) {
    const stops = diverging
      ? [[33, 102, 172], [247, 247, 247], [178, 24, 43]]
      : [[255, 247, 236], [253, 141, 60], [127, 0, 0]];
    t = Math.min(1, Math.max(0, t));
    const s = t < 0.5 ? 0 : 1, f = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    const c = stops[s].map((v, k) => Math.round(v + (stops[s + 1][k] - v) * f));
    return "rgb(" + c.join(",") + ")";
  }
  function scaled(track) {
    const v = track.values;
    if (track.diverging) {
      const m = Math.max(...v.map(Math.abs)) || 1;
      return { t: v.map(x => 0.5 + x / (2 * m)), lo: -m, hi: m };
    }
    const lo = Math.min(...v), hi = Math.max(...v);
    return { t: v.map(x => (hi > lo ? (x - lo) / (hi - lo) : 0.5)), lo: lo, hi: hi };
  }
  function drawLegend(track, s) {
    const stops = [0, 0.25, 0.5, 0.75, 1].map(t => colour(t, track.diverging)).join(",");
    legend.innerHTML = "<span>" + s.lo.toFixed(2) + "</span><span class='bar' style='background:linear-gradient(90deg," +
      stops + ")'></span><span>" + s.hi.toFixed(2) + "</span><div class='note'>" + track.note + "</div>";
  }
  function draw() {
    const track = data.tracks[select.value];
    const s = scaled(track);
    drawLegend(track, s);
    const w = canvas.width, h = canvas.height, scale = zoom * 0.45 * Math.min(w, h) / extent;
    projected = pts.map((p, i) => {
      const q = rot.map(row => row[0] * p[0] + row[1] * p[1] + row[2] * p[2]);
      return { i: i, x: w / 2 + q[0] * scale, y: h / 2 - q[1] * scale, z: q[2], c: colour(s.t[i], track.diverging) };
    });
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, w, h);
    const items = [];
    for (let i = 0; i + 1 < n; i++) {
      const a = pts[i], b = pts[i + 1];
      if (Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]) < 4.5) items.push({ kind: "bond", i: i, z: (projected[i].z + projected[i + 1].z) / 2 });
    }
    projected.forEach(p => items.push({ kind: "atom", i: p.i, z: p.z }));
    items.sort((a, b) => a.z - b.z);
    const radius = Math.max(2, 1.2 * scale);
    for (const it of items) {
      const p = projected[it.i];
      if (it.kind === "bond") {
        const q = projected[it.i + 1];
        ctx.strokeStyle = "#555555";
        ctx.lineWidth = Math.max(1, radius * 0.5);
        ctx.beginPath(); ctx.moveTo(p.x, p.y); ctx.lineTo(q.x, q.y); ctx.stroke();
      } else {
        const r = it.i === data.variant ? radius * 1.8 : radius;
        ctx.fillStyle = p.c;
        ctx.beginPath(); ctx.arc(p.x, p.y, r, 0, 2 * Math.PI); ctx.fill();
        ctx.lineWidth = it.i === data.variant ? 3 : 0.6;
        ctx.strokeStyle = it.i === data.variant ? "#00a000" : "#333333";
        ctx.stroke();
      }
    }
    if (data.variant !== null && data.variant >= 0) {
      const p = projected[data.variant];
      ctx.fillStyle = "#006400";
      ctx.font = "bold 14px sans-serif";
      ctx.fillText("variant " + data.variant_label, p.x + radius * 2, p.y - radius * 2);
    }
  }
  canvas.addEventListener("mousedown", e => { drag = [e.clientX, e.clientY]; });
  window.addEventListener("mouseup", () => { drag = null; });
  canvas.addEventListener("mousemove", e => {
    if (drag) {
      turn((e.clientY - drag[1]) * 0.01, (e.clientX - drag[0]) * 0.01);
      drag = [e.clientX, e.clientY];
      draw();
      return;
    }
    const box = canvas.getBoundingClientRect();
    const x = (e.clientX - box.left) * canvas.width / box.width, y = (e.clientY - box.top) * canvas.height / box.height;
    let best = null, dist = 100;
    projected.forEach(p => { const d = Math.hypot(p.x - x, p.y - y); if (d < dist) { dist = d; best = p; } });
    if (best) {
      const v = data.tracks[select.value].values[best.i];
      tip.textContent = data.residues[best.i].label + ": " + v.toFixed(3);
    } else {
      tip.textContent = "\u00a0";
    }
  });
  canvas.addEventListener("wheel", e => { e.preventDefault(); zoom *= e.deltaY < 0 ? 1.1 : 1 / 1.1; draw(); }, { passive: false });
  Object.keys(data.tracks).forEach(name => {
    const o = document.createElement("option");
    o.value = name; o.textContent = name; select.appendChild(o);
  });
  select.addEventListener("change", draw);
  turn(0.4, 0.6);
  draw();
})();
