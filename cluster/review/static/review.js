// mespot review: the page. Talks to the JSON API of cluster/review/server.py.
// No framework, no build step. Text from the server is always set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  videos: [], video: null, detail: null, current: -1,
  clip: null, images: [], pos: 0, playing: false, timer: null,
  extent: null, // {onset, offset}: the movement's frames as marked; null: the interval
};

function annotator() { return $("annotator").value.trim(); }

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function fmt(seconds) { return seconds.toFixed(2); }

function progressText(p) {
  const done = p.intervals ? Math.round((100 * p.reviewed) / p.intervals) : 100;
  return `${p.reviewed} of ${p.intervals} intervals reviewed (${done}%) · ` +
    `${fmt(p.left_s)} s of ${fmt(p.spotted_s)} s spotted footage left to review ` +
    `(recording ${fmt(p.recording_s)} s)`;
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = kind || "";
}

// --- video list -------------------------------------------------------------------------

async function loadVideos() {
  const data = await api("/api/videos");
  state.videos = data.videos;
  if (!annotator() && data.annotator) $("annotator").value = data.annotator;
  const learned = data.learned_verdicts === null ? "" : ` · learned from ${data.learned_verdicts} verdicts`;
  $("model").textContent = `model ${data.model_id}${learned}`;
  $("overall-text").textContent = progressText(data.progress);
  const p = data.progress;
  $("overall-fill").style.width = `${p.intervals ? (100 * p.reviewed) / p.intervals : 100}%`;
  const list = $("videos");
  list.replaceChildren();
  for (const v of data.videos) {
    const li = document.createElement("li");
    li.dataset.video = v.id;
    const name = document.createElement("div");
    name.textContent = `${v.subject} / ${v.video}`;
    const info = document.createElement("div");
    info.className = "muted";
    info.textContent = `${v.progress.reviewed}/${v.progress.intervals} reviewed`;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${v.progress.intervals ? (100 * v.progress.reviewed) / v.progress.intervals : 100}%`;
    bar.append(fill);
    li.append(name, info, bar);
    if (state.video === v.id) li.classList.add("current");
    li.addEventListener("click", () => openVideo(v.id));
    list.append(li);
  }
}

// --- one video ---------------------------------------------------------------------------

async function openVideo(id, keepInterval) {
  const who = encodeURIComponent(annotator());
  const detail = await api(`/api/videos/${id}?annotator=${who}`);
  const changed = state.video !== id;
  state.video = id;
  state.detail = detail;
  for (const li of $("videos").children) li.classList.toggle("current", li.dataset.video === id);
  $("empty").hidden = true;
  $("video-view").hidden = false;
  $("video-title").textContent = `${detail.subject} / ${detail.video} · ${fmt(detail.duration_s)} s at ${detail.fps} fps`;
  $("video-progress").textContent = progressText(detail.progress);
  renderIntervals();
  drawTimeline();
  if (changed || keepInterval === undefined) {
    const next = detail.intervals.findIndex(toReview);
    await selectInterval(detail.intervals.length ? Math.max(0, next) : -1);
  } else {
    await selectInterval(keepInterval, true);
  }
}

// not reviewed by you, and overlapping no interval judged already (the same movement)
function toReview(iv) { return !iv.mine && !iv.covered; }

function verdictSpan(v) {
  const span = document.createElement("span");
  span.className = `v-${v.verdict}`;
  span.textContent = v.verdict + (v.action_units ? ` (${v.action_units})` : "");
  return span;
}

function renderIntervals() {
  const body = $("intervals").tBodies[0];
  body.replaceChildren();
  state.detail.intervals.forEach((iv, i) => {
    const tr = document.createElement("tr");
    tr.dataset.index = String(i);
    tr.dataset.start = String(iv.start);
    tr.dataset.end = String(iv.end);
    tr.dataset.pool = iv.pool;
    if (i === state.current) tr.classList.add("current");
    if (iv.covered) {
      tr.classList.add("covered");
      tr.title = "overlaps an interval judged already: the same stretch, skipped";
    }
    const cells = [String(iv.rank), `${fmt(iv.start_s)}–${fmt(iv.end_s)}`,
      `${iv.start}–${iv.end}`, `${iv.score.toFixed(3)} ${iv.kind}`, iv.reason];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tr.lastChild.className = "why";
    const mine = document.createElement("td");
    mine.className = "mine";
    if (iv.mine) mine.append(verdictSpan(iv.mine));
    const all = document.createElement("td");
    all.className = "all";
    all.textContent = iv.verdicts.map((v) => `${v.annotator}: ${v.verdict}` +
      (v.action_units ? ` (${v.action_units})` : "") + (v.note ? ` “${v.note}”` : "")).join("; ");
    tr.append(mine, all);
    tr.addEventListener("click", () => selectInterval(i));
    body.append(tr);
  });
}

function drawTimeline() {
  const canvas = $("timeline");
  const width = canvas.clientWidth || 800;
  canvas.width = width;
  const h = canvas.height;
  const ctx = canvas.getContext("2d");
  const d = state.detail;
  const x = (frame) => (frame / Math.max(1, d.n_frames - 1)) * (width - 1);
  ctx.clearRect(0, 0, width, h);
  const colours = { yes: "#1a7f37", no: "#cf222e", unsure: "#bf8700" };
  d.intervals.forEach((iv, i) => {
    const verdict = iv.mine ? iv.mine.verdict : iv.label;
    ctx.fillStyle = (colours[verdict] || "#8c959f") + (i === state.current ? "cc" : "55");
    ctx.fillRect(x(iv.start), 0, Math.max(2, x(iv.end) - x(iv.start)), h);
  });
  const w = d.windows;
  const top = Math.max(1, ...w.score); // probabilities, or a baseline's unbounded scores
  ctx.strokeStyle = "#0969da";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let i = 0; i < w.start.length; i++) {
    const px = x((w.start[i] + w.end[i]) / 2);
    const py = h - 4 - (w.score[i] / top) * (h - 8);
    if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
  }
  ctx.stroke();
  ctx.strokeStyle = "#8c959f";
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(0, h - 4 - (0.5 / top) * (h - 8)); // the default threshold, 0.5
  ctx.lineTo(width, h - 4 - (0.5 / top) * (h - 8));
  ctx.stroke();
  ctx.setLineDash([]);
}

$("timeline").addEventListener("click", (event) => {
  const d = state.detail;
  if (!d || !d.intervals.length) return;
  const rect = event.target.getBoundingClientRect();
  const frame = ((event.clientX - rect.left) / rect.width) * (d.n_frames - 1);
  let best = 0;
  let bestDistance = Infinity;
  d.intervals.forEach((iv, i) => {
    const distance = frame < iv.start ? iv.start - frame : frame > iv.end ? frame - iv.end : 0;
    if (distance < bestDistance) { best = i; bestDistance = distance; }
  });
  selectInterval(best);
});

// --- the selected interval and its clip ----------------------------------------------------

async function selectInterval(index, keepForm, saved) {
  stop();
  state.current = index;
  for (const tr of $("intervals").tBodies[0].rows) {
    tr.classList.toggle("current", Number(tr.dataset.index) === index);
  }
  drawTimeline();
  const iv = state.detail.intervals[index];
  if (!iv) {
    $("interval-title").textContent = "No interval spotted in this video";
    return;
  }
  $("interval-title").textContent =
    `Interval ${iv.rank} of ${state.detail.intervals.length} (${iv.kind}): ${fmt(iv.start_s)}–${fmt(iv.end_s)} s, score ${iv.score.toFixed(3)}`;
  $("reason").textContent = `Why: ${iv.reason}` + (iv.covered ? " (overlaps an interval judged already)" : "");
  const marked = iv.mine && iv.mine.onset !== null && iv.mine.onset !== undefined;
  if (!keepForm) state.extent = marked ? { onset: iv.mine.onset, offset: iv.mine.offset } : null;
  if (!keepForm) {
    $("action-units").value = iv.mine && iv.mine.action_units ? iv.mine.action_units : "";
    $("note").value = iv.mine && iv.mine.note ? iv.mine.note : "";
    setStatus(iv.mine ? `your verdict: ${iv.mine.verdict} (${iv.mine.created_at})` : "not reviewed by you yet");
  }
  if (saved) setStatus(saved, "saved"); // what was just saved, shown on the next interval
  showChosen(iv.mine ? iv.mine.verdict : null);
  const others = iv.verdicts.filter((v) => v.annotator !== annotator());
  $("others").textContent = others.length
    ? "Others: " + others.map((v) => `${v.annotator} said ${v.verdict}` +
      (v.note ? ` (“${v.note}”)` : "")).join("; ")
    : "";
  let clip;
  try {
    clip = await api(`/api/videos/${state.video}/clip?start=${iv.start}&end=${iv.end}`);
  } catch (e) {
    state.clip = null;
    $("frame").removeAttribute("src");
    $("frame-info").textContent = "";
    setStatus(`cannot show the clip: ${e.message}`, "error");
    return;
  }
  if (state.current !== index) return; // another interval was chosen meanwhile
  state.clip = clip;
  state.images = clip.frames.map((f) => {
    const img = new Image();
    img.src = `/frames/${state.video}/${f}.jpg`;
    return img;
  });
  const span = clip.frames[clip.frames.length - 1] - clip.frames[0] || 1;
  $("clip-interval").style.left = `${(100 * (iv.start - clip.frames[0])) / span}%`;
  $("clip-interval").style.width = `${(100 * (iv.end - iv.start)) / span}%`;
  drawExtent();
  show(0);
}

// --- the movement's extent: marked on the clip bar (drag an end) or at the current frame ---

function extent() {
  const iv = state.detail && state.detail.intervals[state.current];
  if (!iv) return null;
  return state.extent || { onset: iv.start, offset: iv.end };
}

function drawExtent() {
  const clip = state.clip;
  const e = extent();
  const info = $("extent-info");
  if (!clip || !e) { info.textContent = ""; return; }
  const first = clip.frames[0];
  const span = clip.frames[clip.frames.length - 1] - first || 1;
  $("clip-extent").style.left = `${(100 * (e.onset - first)) / span}%`;
  $("clip-extent").style.width = `${(100 * (e.offset - e.onset)) / span}%`;
  info.dataset.onset = String(e.onset);
  info.dataset.offset = String(e.offset);
  info.textContent = state.extent
    ? `movement: frames ${e.onset}–${e.offset} (saved with a yes)`
    : "movement: the interval (drag an end of the dark bar, or [ and ])";
}

function setExtent(onset, offset) {
  const clip = state.clip;
  if (!clip) return;
  const lo = clip.frames[0], hi = clip.frames[clip.frames.length - 1];
  onset = Math.max(lo, Math.min(hi, Math.round(onset)));
  offset = Math.max(lo, Math.min(hi, Math.round(offset)));
  state.extent = { onset: Math.min(onset, offset), offset: Math.max(onset, offset) };
  drawExtent();
}

function markEdge(edge) {
  if (!state.clip) return;
  const e = extent();
  const frame = state.clip.frames[state.pos];
  if (edge === "onset") setExtent(frame, Math.max(frame, e.offset));
  else setExtent(Math.min(frame, e.onset), frame);
}

function frameAt(event) {
  const bar = $("clipbar").getBoundingClientRect();
  const clip = state.clip;
  const first = clip.frames[0], last = clip.frames[clip.frames.length - 1];
  const x = Math.max(0, Math.min(1, (event.clientX - bar.left) / Math.max(1, bar.width)));
  return first + x * (last - first);
}

$("clipbar").addEventListener("pointerdown", (event) => {
  if (!state.clip) return;
  const e = extent();
  const frame = frameAt(event);
  const edge = Math.abs(frame - e.onset) <= Math.abs(frame - e.offset) ? "onset" : "offset";
  state.dragging = edge;
  $("clipbar").setPointerCapture(event.pointerId);
  const move = (ev) => {
    const f = frameAt(ev), now = extent();
    if (state.dragging === "onset") setExtent(f, now.offset);
    else setExtent(now.onset, f);
  };
  move(event);
  $("clipbar").onpointermove = move;
});
$("clipbar").addEventListener("pointerup", () => {
  state.dragging = null;
  $("clipbar").onpointermove = null;
});
$("mark-onset").addEventListener("click", () => markEdge("onset"));
$("mark-offset").addEventListener("click", () => markEdge("offset"));
$("clear-extent").addEventListener("click", () => { state.extent = null; drawExtent(); });

function showChosen(verdict) {
  for (const b of document.querySelectorAll("button.verdict")) {
    b.classList.toggle("chosen", b.dataset.verdict === verdict);
  }
}

function show(pos) {
  const clip = state.clip;
  if (!clip) return;
  state.pos = Math.max(0, Math.min(pos, clip.frames.length - 1));
  const frame = clip.frames[state.pos];
  const img = $("frame");
  img.src = state.images[state.pos].src;
  img.dataset.frame = String(frame);
  img.classList.toggle("inside", frame >= clip.start && frame <= clip.end);
  const span = clip.frames[clip.frames.length - 1] - clip.frames[0] || 1;
  $("clip-cursor").style.left = `${(100 * (frame - clip.frames[0])) / span}%`;
  const where = frame < clip.start ? "before" : frame > clip.end ? "after" : "inside";
  $("frame-info").textContent = `frame ${frame} · ${fmt(frame / clip.fps)} s · ${where} the interval`;
}

function play() {
  if (!state.clip) return;
  if (state.pos >= state.clip.frames.length - 1) show(0);
  state.playing = true;
  $("player").dataset.playing = "true";
  $("play").textContent = "Pause";
  const delay = (1000 * state.clip.stride) / (state.clip.fps * Number($("speed").value));
  state.timer = setInterval(() => {
    if (state.pos >= state.clip.frames.length - 1) { stop(); return; }
    show(state.pos + 1);
  }, Math.max(4, delay));
}

function stop() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  state.playing = false;
  $("player").dataset.playing = "false";
  $("play").textContent = "Play";
}

function toggle() { if (state.playing) stop(); else play(); }

$("play").addEventListener("click", toggle);
$("prev-frame").addEventListener("click", () => { stop(); show(state.pos - 1); });
$("next-frame").addEventListener("click", () => { stop(); show(state.pos + 1); });
$("speed").addEventListener("change", () => { if (state.playing) { stop(); play(); } });

// --- verdicts ------------------------------------------------------------------------------

async function mark(verdict) {
  const iv = state.detail && state.detail.intervals[state.current];
  if (!iv) return;
  if (!annotator()) {
    setStatus("Type your name in the Annotator field first.", "error");
    $("annotator").focus();
    return;
  }
  const payload = {
    video: state.video, start: iv.start, end: iv.end, verdict, annotator: annotator(),
    action_units: $("action-units").value, note: $("note").value,
  };
  if (verdict === "yes" && state.extent) {
    payload.onset = state.extent.onset;
    payload.offset = state.extent.offset;
  }
  setStatus("saving…");
  let saved;
  try {
    const stored = await api("/api/verdicts", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    saved = `saved: ${stored.verdict}` + (stored.action_units ? ` (${stored.action_units})` : "") +
      ` for interval ${iv.rank}` +
      (stored.onset !== null ? `, movement ${stored.onset}–${stored.offset}` : "");
    setStatus(saved, "saved");
  } catch (e) {
    setStatus(`not saved: ${e.message}`, "error");
    return;
  }
  const index = state.current;
  await openVideo(state.video, index);
  await loadVideos();
  const next = state.detail.intervals.findIndex((x, i) => i > index && toReview(x));
  if (next >= 0) await selectInterval(next, false, saved);
  else setStatus(saved, "saved");
}

for (const b of document.querySelectorAll("button.verdict")) {
  b.addEventListener("click", () => mark(b.dataset.verdict));
}

function step(delta) {
  if (!state.detail || !state.detail.intervals.length) return;
  const n = state.detail.intervals.length;
  selectInterval(Math.max(0, Math.min(n - 1, state.current + delta)));
}

document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
  if (event.key === "Escape") { document.activeElement.blur(); return; }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const actions = {
    y: () => mark("yes"), n: () => mark("no"), u: () => mark("unsure"),
    " ": toggle, j: () => step(1), ArrowDown: () => step(1), k: () => step(-1),
    ArrowUp: () => step(-1), ArrowLeft: () => { stop(); show(state.pos - 1); },
    ArrowRight: () => { stop(); show(state.pos + 1); },
    a: () => $("action-units").focus(),
    "[": () => markEdge("onset"), "]": () => markEdge("offset"),
    x: () => { state.extent = null; drawExtent(); },
    s: () => {
      const sel = $("speed");
      sel.selectedIndex = (sel.selectedIndex + 1) % sel.options.length;
      sel.dispatchEvent(new Event("change"));
    },
  };
  const action = actions[event.key];
  if (action) { event.preventDefault(); action(); }
});

$("annotator").addEventListener("change", () => {
  localStorage.setItem("mespot.annotator", annotator());
  if (state.video) openVideo(state.video, state.current);
});
$("annotator").value = localStorage.getItem("mespot.annotator") || "";
window.addEventListener("resize", () => { if (state.detail) drawTimeline(); });

loadVideos().catch((e) => { $("overall-text").textContent = `cannot load: ${e.message}`; });
