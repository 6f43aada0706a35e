# ruff: noqa: E501 - the embedded HTML/JavaScript keeps its own line lengths
"""The GUI's single HTML page (inline CSS and JavaScript, no external resources)."""

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ExSum Inspection</title>
<style>
body { font-family: sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #2c3e50; color: #fff; padding: 10px 16px; }
header h1 { font-size: 18px; margin: 0 0 4px 0; }
#formula { font-family: monospace; font-size: 16px; }
main { display: flex; gap: 16px; padding: 12px 16px; }
#left { flex: 0 0 430px; } #right { flex: 1; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px; margin-bottom: 12px; }
h2 { font-size: 15px; margin: 0 0 8px 0; }
.rule-btn { margin: 2px; padding: 4px 10px; border: 1px solid #888; background: #eee; cursor: pointer; border-radius: 4px; }
.rule-btn.active { background: #2c3e50; color: #fff; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #ccc; padding: 4px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.param { margin: 6px 0; } .param label { display: block; font-size: 13px; }
.param input[type=range] { width: 300px; } .pval { font-family: monospace; }
.inst { margin: 6px 0; padding: 6px; border-bottom: 1px solid #eee; line-height: 2.0; }
.feu { padding: 2px 4px; margin: 1px; border-radius: 3px; border: 2px solid transparent; font-size: 13px; }
.feu.applicable { border-color: #333; }
.feu.applicable.invalid { border-style: dashed; border-color: #d00; }
.mark { font-size: 10px; vertical-align: super; }
#message { color: #a00; min-height: 1.2em; font-size: 13px; }
.legend { font-size: 12px; color: #555; }
</style></head>
<body>
<header><h1>ExSum Inspection</h1><div>Rule union: <span id="formula"></span>
 <span id="size" class="legend"></span></div></header>
<main>
<div id="left">
 <section><h2>Rules</h2><div id="rules"></div><div id="description" class="legend"></div></section>
 <section><h2>Metrics</h2>
  <table id="metrics"><thead><tr><th></th><th>coverage</th><th>validity</th><th>sharpness</th></tr></thead>
  <tbody></tbody></table></section>
 <section><h2>Parameters</h2><div id="params"><span class="legend">Select a rule.</span></div>
  <div id="tune" style="display:none">
   <h2 style="margin-top:10px">AutoTune</h2>
   <div class="param">parameter <select id="at-param"></select>
    metric <select id="at-metric"><option>validity</option><option>coverage</option><option>sharpness</option></select>
    of <select id="at-scope"><option>selected</option><option>union</option></select></div>
   <div class="param">&ge; <input id="at-min" type="number" value="0.9" step="0.01" style="width:5em">
    from <input id="at-start" type="number" style="width:5em"> to <input id="at-stop" type="number" style="width:5em">
    step <input id="at-prec" type="number" style="width:5em">
    <select id="at-method"><option>linear</option><option>binary</option></select></div>
   <button id="autotune">AutoTune</button>
   <button id="optimise" title="maximise sharpness s.t. validity and coverage minima">Optimise all</button>
   <button id="reset">Reset</button>
  </div>
  <div id="message"></div></section>
</div>
<div id="right"><section><h2>Examples</h2>
 <div class="legend">Colour: explanation (red positive, blue negative). Solid border: rule applies and the explanation
 is inside its behaviour range (valid); dashed red: applies but invalid; no border: does not apply.</div>
 <div id="examples"></div><button id="more">More examples</button></section></div>
</main>
<script>
let state = null, selected = null, offset = 0, pending = null;
const fmt = v => (v === null || v === undefined) ? "n/a" : v.toFixed(4);
async function api(path, body) {
  const opt = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const r = await fetch(path, opt); const j = await r.json();
  if (!r.ok) throw new Error(j.error); return j;
}
function showMessage(text) { document.getElementById("message").textContent = text || ""; }
function renderMetrics(m) {
  const body = document.querySelector("#metrics tbody"); body.innerHTML = "";
  const rows = [["union", "union"]];
  if (selected) { rows.push(["selected", "selected (" + selected + ")"]); rows.push(["counterfactual", "union without " + selected]); }
  for (const [key, label] of rows) {
    const tr = document.createElement("tr"); tr.id = "row-" + key;
    tr.innerHTML = "<td>" + label + "</td>";
    for (const name of ["coverage", "validity", "sharpness"]) {
      const v = m[key] ? m[key][name] : null; const td = document.createElement("td");
      td.id = "m-" + key + "-" + name; td.dataset.value = v === null ? "nan" : String(v); td.textContent = fmt(v);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}
function rule(name) { return state.rules.find(r => r.name === name); }
function renderRules() {
  const box = document.getElementById("rules"); box.innerHTML = "";
  for (const name of ["union"].concat(state.rules.map(r => r.name))) {
    const b = document.createElement("button"); b.className = "rule-btn" + ((selected || "union") === name ? " active" : "");
    b.id = "rule-" + name; b.textContent = name === "union" ? "(whole union)" : name;
    b.onclick = () => select(name === "union" ? null : name); box.appendChild(b);
  }
  document.getElementById("description").textContent = selected ? rule(selected).description : "";
}
function renderParams() {
  const box = document.getElementById("params"); box.innerHTML = "";
  document.getElementById("tune").style.display = selected ? "" : "none";
  if (!selected) { box.innerHTML = '<span class="legend">Select a rule.</span>'; return; }
  const atp = document.getElementById("at-param"); atp.innerHTML = "";
  for (const p of rule(selected).params) {
    const div = document.createElement("div"); div.className = "param";
    const id = "p-" + selected + "-" + p.name, step = (p.hi - p.lo) / 200 || 1;
    div.innerHTML = '<label>' + (p.kind === "a" ? "applicability" : "behaviour") + " · " + p.name +
      ' = <span class="pval" id="v-' + id + '">' + p.value.toPrecision(4) + '</span> <span class="legend">[' + p.lo + ", " + p.hi + ']</span></label>' +
      '<input type="range" id="' + id + '" min="' + p.lo + '" max="' + p.hi + '" step="' + step + '" value="' + p.value + '">';
    box.appendChild(div);
    const input = div.querySelector("input");
    input.addEventListener("input", () => changeParam(p.name, input.value));
    const o = document.createElement("option"); o.textContent = p.name; atp.appendChild(o);
  }
  atp.onchange = setTuneDefaults; setTuneDefaults();
}
function setTuneDefaults() {
  const p = rule(selected).params.find(q => q.name === document.getElementById("at-param").value);
  document.getElementById("at-start").value = p.lo; document.getElementById("at-stop").value = p.hi;
  document.getElementById("at-prec").value = ((p.hi - p.lo) / 100).toPrecision(3);
}
function applyParams(params) {
  for (const r of state.rules) for (const p of r.params) {
    p.value = params[r.name][p.name];
    const id = "p-" + r.name + "-" + p.name, el = document.getElementById(id);
    if (el) { el.value = p.value; document.getElementById("v-" + id).textContent = p.value.toPrecision(4); }
  }
}
async function changeParam(name, value) {
  const id = "p-" + selected + "-" + name; document.getElementById("v-" + id).textContent = Number(value).toPrecision(4);
  pending = {rule: selected, param: name, value: Number(value), selected: selected};
  const mine = pending;
  try {
    const res = await api("/api/param", mine);
    if (pending !== mine) return;  // a newer change is on its way
    rule(selected).params.find(q => q.name === name).value = Number(value);
    renderMetrics(res.metrics); showMessage(""); loadExamples(true);
  } catch (e) { showMessage(e.message); }
}
async function select(name) {
  selected = name; state = await api("/api/state" + (name ? "?rule=" + encodeURIComponent(name) : ""));
  renderRules(); renderMetrics(state.metrics); renderParams(); showMessage(""); loadExamples(true);
}
async function loadExamples(fresh) {
  if (fresh) { offset = 0; document.getElementById("examples").innerHTML = ""; }
  const res = await api("/api/examples?count=6&offset=" + offset + (selected ? "&rule=" + encodeURIComponent(selected) : ""));
  offset += res.instances.length;
  const box = document.getElementById("examples");
  for (const inst of res.instances) {
    const div = document.createElement("div"); div.className = "inst";
    div.innerHTML = '<span class="legend">#' + inst.instance + " label " + inst.label + ", prediction " + Number(inst.prediction).toFixed(3) + ":</span> ";
    for (const u of inst.units) {
      const s = document.createElement("span"), c = Math.max(-1, Math.min(1, u.c)), a = Math.abs(c).toFixed(3);
      s.className = "feu" + (u.applicable ? " applicable " + (u.valid ? "valid" : "invalid") : "");
      s.style.background = c >= 0 ? "rgba(220,40,40," + a + ")" : "rgba(40,80,220," + a + ")";
      s.title = u.name + ": e = " + u.e.toPrecision(4) + (u.rule ? " (rule " + u.rule + ")" : "");
      s.innerHTML = u.name + (u.applicable ? '<span class="mark">' + (u.valid ? "&#10003;" : "&#10007;") + "</span>" : "");
      div.appendChild(s);
    }
    box.appendChild(div);
  }
}
async function tuneAction(path, body) {
  try { const res = await api(path, body); applyParams(res.params); renderMetrics(res.metrics); showMessage(res.message); loadExamples(true); }
  catch (e) { showMessage(e.message); }
}
document.getElementById("autotune").onclick = () => tuneAction("/api/autotune", {
  rule: selected, selected: selected, param: document.getElementById("at-param").value,
  metric: document.getElementById("at-metric").value, scope: document.getElementById("at-scope").value,
  method: document.getElementById("at-method").value, minimum: Number(document.getElementById("at-min").value),
  start: Number(document.getElementById("at-start").value), stop: Number(document.getElementById("at-stop").value),
  precision: Number(document.getElementById("at-prec").value)});
document.getElementById("optimise").onclick = () => tuneAction("/api/optimise", {
  rule: selected, min_validity: Number(document.getElementById("at-min").value), min_coverage: 0.05});
document.getElementById("reset").onclick = () => tuneAction("/api/reset", {selected: selected});
document.getElementById("more").onclick = () => loadExamples(false);
(async () => {
  await select(null);
  document.getElementById("formula").textContent = state.formula;
  document.getElementById("size").textContent = "(" + state.n_feus + " FEUs in " + state.n_instances + " instances)";
  document.body.dataset.ready = "1";
})();
</script></body></html>
"""
