// medseg view: NiiVue shows the scan and the label overlay; prompts go to the medseg JSON API in world mm.
const $ = (id) => document.getElementById(id);
const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190]];
const colour = (label) => PALETTE[(label - 1) % PALETTE.length];
const state = { nv: null, mod: null, info: null, selected: null, newObject: false, corner: null, tool: "click",
  busy: 0, objects: [] };
window.__medseg = state;

function note(text) { $("status").textContent = text; }
function fail(text) { $("error").hidden = !text; $("error").textContent = text || ""; }

async function api(path, body, spinText) {
  state.busy += 1;
  $("spinner").hidden = false;
  $("spin-text").textContent = spinText || "working…";
  try {
    const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) };
    const r = await fetch(path, init);
    const json = (r.headers.get("content-type") || "").includes("json");
    const data = json ? await r.json() : await r.arrayBuffer();
    if (!r.ok) throw new Error(json ? data.detail : r.statusText);
    return data;
  } finally {
    state.busy -= 1;
    $("spinner").hidden = state.busy === 0;
  }
}

function labelLut() {
  // Sized to the labels in use: NiiVue 0.69 mis-draws label 0 with a full 256-entry table.
  const lut = { R: [], G: [], B: [], A: [], I: [], labels: [] };
  const top = Math.max(2, ...state.objects.map((o) => o.label));
  for (let i = 0; i <= top; i++) {
    const [r, g, b] = i === 0 ? [0, 0, 0] : colour(i);
    lut.R.push(r); lut.G.push(g); lut.B.push(b); lut.A.push(i === 0 ? 0 : 255); lut.I.push(i);
    lut.labels.push(i === 0 ? "" : (state.objects.find((o) => o.label === i) || {}).name || `object ${i}`);
  }
  return lut;
}

async function refresh(result) {
  if (result && result.objects) state.objects = result.objects;
  const buf = await api("/api/labels", undefined, "updating overlay…");
  const overlay = state.nv.volumes[1];
  overlay.img.set(new Uint8Array(buf));
  overlay.setColormapLabel(labelLut());
  // Only the overlay layer is re-made (updateGLVolume would redo the scan too: slow in software GL).
  state.nv.closePAQD();
  state.nv.refreshLayers(overlay, 1);
  state.nv.drawScene();
  renderObjects();
  window.__labelled = overlay.img.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
}

function renderObjects() {
  const ul = $("objects");
  ul.innerHTML = "";
  for (const o of state.objects) {
    const li = document.createElement("li");
    li.className = o.label === state.selected ? "selected" : "";
    const [r, g, b] = colour(o.label);
    li.innerHTML = `<span class="swatch" style="background: rgb(${r},${g},${b})"></span>`;
    const name = document.createElement("input");
    name.value = o.name;
    name.addEventListener("change", () => act("/api/name", { label: o.label, name: name.value }));
    li.append(name, ` ${o.voxels} vx`);
    li.addEventListener("click", () => { state.selected = o.label; state.newObject = false; renderObjects(); });
    ul.append(li);
  }
  $("new-object").disabled = state.newObject;
}

async function act(path, body, spinText) {
  fail("");
  try {
    const result = await api(path, body, spinText || "segmenting… (slices are encoded on first use)");
    if (typeof result.label === "number" && result.label > 0 && path !== "/api/undo") state.selected = result.label;
    if (path === "/api/undo" || path === "/api/reset") {
      state.selected = (result.objects.at(-1) || {}).label ?? null;
    }
    state.newObject = false;
    if (result.centre_mm) { state.nv.scene.crosshairPos = state.nv.mm2frac(result.centre_mm); }
    await refresh(result);
    note((result.messages || []).join(" "));
  } catch (e) {
    fail(e.message);
  }
}

function mmAt(x, y) {
  const dpr = state.nv.uiData.dpr || window.devicePixelRatio || 1;
  const mm = state.nv.screenXY2mm(x * dpr, y * dpr);
  if (Number.isNaN(mm[0])) return null;
  return { mm: [mm[0], mm[1], mm[2]], tile: state.nv.screenSlices[mm[3]].axCorSag };
}

function startNew() { return state.newObject || state.selected === null; }

async function onRelease(down, e) {
  const a = mmAt(down.x, down.y);
  if (!a) return;
  const moved = Math.hypot(e.offsetX - down.x, e.offsetY - down.y);
  if (state.tool === "box3d") {
    if (!state.corner) { state.corner = a.mm; note("first corner set; move to the opposite corner and click"); return; }
    const first = state.corner;
    state.corner = null; state.tool = "click"; $("box3d").classList.remove("on");
    await act("/api/box", { a: first, b: a.mm, three_d: true });
    return;
  }
  if (moved < 5) {
    const positive = !(down.shift || e.shiftKey);
    await act("/api/point", { mm: a.mm, positive, object: startNew() ? null : state.selected, new: startNew() && positive });
    return;
  }
  const b = mmAt(e.offsetX, e.offsetY);
  if (!b || a.tile !== 0) { fail("draw 2D boxes on the axial view"); return; }
  await act("/api/box", { a: a.mm, b: b.mm, three_d: false });
}

async function main() {
  state.info = await api("/api/info");
  showName();
  state.objects = state.info.objects;
  if (!state.info.niivue) { fail(state.info.niivue_missing); return; }
  try {
    state.mod = await import("/niivue.js");
  } catch (e) {
    fail(`${state.info.niivue_missing} (${e.message})`);
    return;
  }
  const { Niivue, SLICE_TYPE, SHOW_RENDER } = state.mod;
  const nv = new Niivue({ backColor: [0.1, 0.1, 0.1, 1], crosshairColor: [1, 1, 0, 0.6], dragAndDropEnabled: false,
    multiplanarShowRender: SHOW_RENDER.NEVER, show3Dcrosshair: false });
  state.nv = nv;
  await nv.attachTo("gl");
  state.timing = { attached: performance.now() };
  nv.setSliceType(SLICE_TYPE.MULTIPLANAR);
  state.busy += 1; $("spinner").hidden = false; $("spin-text").textContent = "loading scan…";
  await nv.loadVolumes([{ url: "/api/scan.nii.gz", name: "scan.nii.gz" },
    { url: "/api/labels.nii.gz", name: "labels.nii.gz", opacity: 0.5, colormapLabel: labelLut() }]);
  state.busy -= 1; $("spinner").hidden = state.busy === 0;
  state.timing.loaded = performance.now();

  const canvas = $("gl");
  let down = null;
  canvas.addEventListener("pointerdown", (e) => {
    if (e.button === 0) down = { x: e.offsetX, y: e.offsetY, shift: e.shiftKey };
  }, true);
  canvas.addEventListener("pointerup", (e) => {
    if (e.button !== 0 || !down) return;
    const d = down; down = null;
    onRelease(d, e);
  }, true);
  $("undo").onclick = () => act("/api/undo", {}, "undoing…");
  $("reset").onclick = () => act("/api/reset", {}, "resetting…");
  $("new-object").onclick = () => { state.newObject = true; renderObjects(); note("the next click or box starts a new object"); };
  $("box3d").onclick = () => { state.tool = "box3d"; state.corner = null; $("box3d").classList.add("on");
    note("click the first corner of the 3D box"); };
  $("opacity").oninput = (e) => nv.setOpacity(1, Number(e.target.value));
  setupPlanes();
  document.addEventListener("keydown", (e) => { if ((e.ctrlKey || e.metaKey) && e.key === "z") act("/api/undo", {}); });
  for (const f of state.info.formats) $("format").append(new Option(f === "dcm" ? "DICOM SEG" : f, f));
  $("save").onclick = save;
  setupText();
  renderObjects();
  window.__ready = true;
}

function showName() {
  const three = state.info.planes === 3 && state.info.three_axes;  // else the session keeps its z slices
  $("scan-name").textContent = state.info.name + (three ? " · three axes" : "");
}

function setupPlanes() {
  const box = $("planes");
  box.checked = state.info.planes === 3 && state.info.three_axes;
  if (!state.info.three_axes) {
    box.disabled = true;
    $("planes-label").title = "three axes need near-isotropic voxels; this scan's slices are thicker than their pixels";
  }
  box.onchange = async () => {
    fail("");
    try {
      state.info.planes = (await api("/api/planes", { planes: box.checked ? 3 : 1 })).planes;
    } catch (e) { fail(e.message); }
    box.checked = state.info.planes === 3;
    showName();
  };
}

function setupText() {
  const go = $("text-go");
  if (!state.info.text) {
    $("text-note").textContent = `Not available: ${state.info.text_message}`;
    $("text").disabled = true; go.disabled = true;
    return;
  }
  $("text-note").textContent = "The first name on a scan registers the atlas (up to a minute); later names are fast.";
  const segment = async () => {
    const text = $("text").value.trim();
    if (!text) { fail("type a structure's name, e.g. left hippocampus"); return; }
    const spin = state.textDone ? `segmenting ${text}…` : `registering the atlas… then segmenting ${text} (up to a minute)`;
    go.disabled = true;
    try {
      await act("/api/text", { text }, spin);
      if ($("error").hidden) { state.textDone = true; $("text-note").textContent = "Atlas registered: later names are fast."; }
    } finally { go.disabled = false; }
  };
  go.onclick = segment;
  $("text").addEventListener("keydown", (e) => { if (e.key === "Enter") segment(); });
  // The names this scan can be asked for (no registration): the text box's suggestions.
  fetch("/api/structures").then(async (r) => {
    const data = await r.json();
    if (!r.ok) { $("text-note").textContent = data.detail; return; }
    for (const n of [...data.groups, ...data.names]) $("structures").append(new Option(n));
    window.__structures = data.names.length + data.groups.length;
  }).catch(() => {});
}

async function save() {
  fail("");
  try {
    const format = $("format").value;
    const r = await fetch(`/api/save?format=${encodeURIComponent(format)}`);
    if (!r.ok) throw new Error((await r.json()).detail);
    const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/)?.[1] || "labels";
    const url = URL.createObjectURL(await r.blob());
    const a = Object.assign(document.createElement("a"), { href: url, download: name });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    note(`saved ${name}`);
  } catch (e) {
    fail(e.message);
  }
}

main().catch((e) => fail(String(e)));
