"""A weight histogram that follows a sparsity slider *while it is dragged*, in the browser, with no server round
trip (issue 9's stretch: TF Playground redraws during the drag; Streamlit's slider sends its value on release).

``live_histogram_html`` returns one self-contained HTML snippet (an SVG and ~60 lines of plain JavaScript, no
Plotly, no network): the layer's weights travel once as float16, the browser sorts their magnitudes once, and
every ``input`` event of its range slider recomputes the magnitude threshold of per-layer pruning (the rule of
``pruning.prune_to`` for one layer: the round(s·n) smallest |w| go; on float16-rounded weights, so a tie that
rounding creates can move a count by a few) and redraws 2 × ``bins`` bars. The snippet
reports its own redraw time, so the cost is measured where the user feels it.

Usage::

    html = live_histogram_html(weight_values(model, "fc1"), "fc1", sparsity=0.9)
    # streamlit.components.v1.html(html, height=LIVE_HEIGHT) in the app
"""
from __future__ import annotations

import base64
import json

import numpy as np

from .common import COLORS

LIVE_HEIGHT = 380

_TEMPLATE = """<div style="font-family:'Source Sans Pro',sans-serif;font-size:15px;color:#31333f">
<label>Sparsity: <input id="s" type="range" min="0" max="99.9" step="0.1" value="__INIT__" style="width:60%">
<b id="v"></b></label> <span id="info"></span>
<svg id="h" width="100%" height="300" viewBox="0 0 1000 300" preserveAspectRatio="none"
 role="img" aria-label="histogram of __LAYER__ weights"></svg>
<div style="font-size:13px;color:#666">__LAYER__: __N__ weights. Drag: the red bars are the weights magnitude
pruning removes at this sparsity; redrawn in your browser in <span id="ms">–</span> ms, no server involved.</div>
</div>
<script>
const raw = Uint8Array.from(atob("__DATA__"), c => c.charCodeAt(0));
const half = new Uint16Array(raw.buffer);
function f16(h) { const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? s * Infinity : s * (1 + m / 1024) * 2 ** (e - 15); }
const w = Float64Array.from(half, f16), n = w.length, bins = __BINS__;
const mag = Float64Array.from(w, Math.abs).sort();
const lim = mag[n - 1] || 1;
const bin = Int32Array.from(w, x => Math.min(bins - 1, Math.floor((x + lim) / (2 * lim) * bins)));
const svg = document.getElementById("h"), NS = "http://www.w3.org/2000/svg";
const kept = [], gone = [];
for (let i = 0; i < bins; i++) for (const [arr, col] of [[kept, "__KEPT__"], [gone, "__GONE__"]]) {
  const r = document.createElementNS(NS, "rect"); r.setAttribute("fill", col);
  r.setAttribute("x", i * 1000 / bins + 0.5); r.setAttribute("width", 1000 / bins - 1);
  svg.appendChild(r); arr.push(r); }
const lines = [0, 1].map(() => { const l = document.createElementNS(NS, "line");
  l.setAttribute("stroke", "#333"); l.setAttribute("stroke-dasharray", "6 4"); l.setAttribute("y1", 0);
  l.setAttribute("y2", 300); svg.appendChild(l); return l; });
function draw() {
  const t0 = performance.now(), s = +document.getElementById("s").value / 100;
  const k = Math.round(s * n), thr = k > 0 ? mag[k - 1] : -1;  // the k smallest |w| go (ties: as many as reach thr)
  const ck = new Int32Array(bins), cg = new Int32Array(bins);
  for (let i = 0; i < n; i++) (Math.abs(w[i]) > thr ? ck : cg)[bin[i]]++;
  let top = 1; for (let i = 0; i < bins; i++) top = Math.max(top, ck[i] + cg[i]);
  for (let i = 0; i < bins; i++) { const hk = 290 * ck[i] / top, hg = 290 * cg[i] / top;
    gone[i].setAttribute("y", 300 - hg); gone[i].setAttribute("height", hg);
    kept[i].setAttribute("y", 300 - hg - hk); kept[i].setAttribute("height", hk); }
  for (const [j, l] of lines.entries()) { const x = ((j ? 1 : -1) * Math.max(thr, 0) + lim) / (2 * lim) * 1000;
    l.setAttribute("x1", x); l.setAttribute("x2", x); l.style.display = k > 0 ? "" : "none"; }
  let left = 0; for (let i = 0; i < bins; i++) left += ck[i];
  document.getElementById("v").textContent = (100 * s).toFixed(1) + " %";
  document.getElementById("info").textContent = `kept ${left.toLocaleString()} · removed ${(n - left).toLocaleString()}`
    + (k > 0 ? ` · threshold |w| = ${thr.toPrecision(3)}` : "");
  document.getElementById("ms").textContent = (performance.now() - t0).toFixed(2);
}
document.getElementById("s").addEventListener("input", () => requestAnimationFrame(draw));
draw();
</script>"""


def live_histogram_html(weights, layer: str, sparsity: float = 0.9, bins: int = 80) -> str:
    """The snippet for ``weights`` (any array-like of one layer's weights) starting at ``sparsity``."""
    w = np.asarray(weights, dtype=np.float32).ravel().astype(np.float16)
    data = base64.b64encode(w.tobytes()).decode()
    return (_TEMPLATE.replace("__DATA__", data).replace("__BINS__", str(int(bins)))
            .replace("__INIT__", f"{100 * float(sparsity):.1f}").replace("__N__", f"{w.size:,}")
            .replace("__LAYER__", json.dumps(layer)[1:-1]).replace("__KEPT__", COLORS["kept"])
            .replace("__GONE__", COLORS["removed"]))
