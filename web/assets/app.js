// Herald dashboard: counters and a chart from the /dashboard/stats stream,
// a publish form and a subscribe panel on the Mercure endpoint. Plain
// JavaScript, no dependencies.
"use strict";
(() => {
  const HUB = "/.well-known/mercure";
  const POINTS = 60; // seconds of history in the chart
  const MAX_EVENTS = 200;
  const $ = (id) => document.getElementById(id);
  const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const fmt = (n) => nf.format(n);
  const topicsOf = (s) => s.split(/[\s,]+/).filter(Boolean);

  // ---- Live counters --------------------------------------------------
  const rates = []; // {pub, del} per stats event
  let prev = null;

  function setStatus(text, cls) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + cls;
  }

  function onStats(s) {
    $("subscribers").textContent = fmt(s.subscribers);
    $("parked").textContent = fmt(s.parked) + " parked";
    $("topics").textContent = fmt(s.topics);
    $("published").textContent = fmt(s.published) + " in total";
    $("delivered").textContent = fmt(s.delivered) + " in total";
    $("dropped").textContent = fmt(s.dropped);
    if (prev && s.time > prev.time) {
      const dt = (s.time - prev.time) / 1000;
      // Counters restart from zero with the hub: never show a negative rate.
      const pub = Math.max(0, s.published - prev.published) / dt;
      const del = Math.max(0, s.delivered - prev.delivered) / dt;
      rates.push({ pub, del });
      if (rates.length > POINTS) rates.shift();
      $("pub-rate").textContent = fmt(pub);
      $("del-rate").textContent = fmt(del);
    }
    prev = s;
    draw();
  }

  const stats = new EventSource("/dashboard/stats");
  stats.addEventListener("stats", (e) => onStats(JSON.parse(e.data)));
  stats.onopen = () => setStatus("live", "live");
  stats.onerror = () => setStatus(stats.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…", "down");

  // ---- Chart: two lines on a canvas, drawn by hand ----------------------
  function draw() {
    const canvas = $("chart");
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim();
    const max = niceMax(Math.max(1, ...rates.map((r) => Math.max(r.pub, r.del))));
    const left = 44, top = 8, bottom = h - 18, right = w - 6;
    const x = (i) => right - (rates.length - 1 - i) * (right - left) / (POINTS - 1);
    const y = (v) => bottom - (v / max) * (bottom - top);

    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let k = 0; k <= 2; k++) {
      const v = (max * k) / 2, yy = Math.round(y(v)) + 0.5;
      ctx.strokeStyle = color("--line");
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(right, yy); ctx.stroke();
      ctx.fillStyle = color("--muted");
      ctx.fillText(fmt(v), left - 6, yy);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText("−60 s", left, h - 3);
    ctx.textAlign = "right";
    ctx.fillText("now", right, h - 3);

    if (rates.length < 2) return;
    // Deliveries as a shaded area, publications as a line over it: with one
    // subscriber per update the two coincide and both stay visible.
    for (const [key, name, fill] of [["del", "--del", true], ["pub", "--pub", false]]) {
      ctx.beginPath();
      rates.forEach((r, i) => (i ? ctx.lineTo(x(i), y(r[key])) : ctx.moveTo(x(i), y(r[key]))));
      ctx.strokeStyle = ctx.fillStyle = color(name);
      ctx.lineWidth = fill ? 1 : 2;
      ctx.lineJoin = "round";
      ctx.stroke();
      if (fill) {
        ctx.lineTo(x(rates.length - 1), bottom);
        ctx.lineTo(x(0), bottom);
        ctx.globalAlpha = 0.18;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
    }
  }

  // niceMax rounds v up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  window.addEventListener("resize", draw);
  draw();

  // ---- Publish ----------------------------------------------------------
  const token = $("pub-token");
  token.value = sessionStorage.getItem("herald-token") || "";

  function result(el, text, cls) {
    el.textContent = text;
    el.className = "result " + cls;
  }

  $("publish").addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = new URLSearchParams();
    for (const t of topicsOf($("pub-topic").value)) body.append("topic", t);
    body.set("data", $("pub-data").value);
    const type = $("pub-type").value.trim();
    if (type) body.set("type", type);
    const id = $("pub-id").value.trim();
    if (id) body.set("id", id);
    if ($("pub-private").checked) body.set("private", "on");
    const headers = {};
    const tok = token.value.trim();
    if (tok) headers.Authorization = "Bearer " + tok;
    sessionStorage.setItem("herald-token", tok);
    // The subscribe panel shows events of the type just published.
    if (type) listen(type);
    const out = $("pub-result");
    try {
      const res = await fetch(HUB, { method: "POST", headers, body });
      const text = (await res.text()).trim();
      if (res.ok) result(out, "Published " + text, "ok");
      else result(out, res.status + " " + res.statusText + ": " + text, "err");
    } catch (err) {
      result(out, "Network error: " + err.message, "err");
    }
  });

  // ---- Subscribe --------------------------------------------------------
  let source = null;
  let types = new Set();

  function show(e) {
    const li = document.createElement("li");
    li.className = "fresh";
    const meta = document.createElement("div");
    meta.className = "meta";
    const time = document.createElement("span");
    time.textContent = new Date().toLocaleTimeString();
    const type = document.createElement("span");
    type.className = "type";
    type.textContent = e.type;
    const id = document.createElement("span");
    id.className = "id";
    id.textContent = e.lastEventId;
    id.title = e.lastEventId;
    meta.append(time, type, id);
    const data = document.createElement("pre");
    data.textContent = e.data;
    li.append(meta, data);
    const list = $("events");
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  function listen(type) {
    if (!source || types.has(type)) return;
    types.add(type);
    source.addEventListener(type, show);
  }

  function stop() {
    if (source) source.close();
    source = null;
    $("sub-stop").disabled = true;
    result($("sub-state"), "not subscribed", "");
  }

  $("subscribe").addEventListener("submit", (e) => {
    e.preventDefault();
    stop();
    const topics = topicsOf($("sub-topic").value);
    if (!topics.length) return;
    const q = new URLSearchParams();
    for (const t of topics) q.append("topic", t);
    source = new EventSource(HUB + "?" + q);
    types = new Set();
    for (const t of ["message", ...topicsOf($("sub-types").value)]) listen(t);
    const state = $("sub-state");
    const label = topics.join(" ");
    result(state, "connecting to " + label + "…", "");
    source.onopen = () => result(state, "subscribed to " + label, "ok");
    source.onerror = () => {
      if (!source) return;
      if (source.readyState === EventSource.CLOSED) result(state, "refused", "err");
      else result(state, "reconnecting…", "err");
    };
    $("sub-stop").disabled = false;
  });
  $("sub-stop").addEventListener("click", stop);
})();
