// The playground page: controls, the scenario file, and the drawing of a run's report.
//
// The scenario file's text (the text area) is the one state: the controls are a view of
// it (a control edits the parsed mapping and the text is written anew from it; editing
// the text rebuilds the controls from what Python parsed), the address bar holds it
// (#yaml= + base64url of its raw DEFLATE, &window=START:END of the timeline in ms: the
// form docsgen.playground.encode_scenario writes for the walkthrough's "try it" links;
// a link put in the address bar of the open page is opened too, on "hashchange"),
// and "Download" saves it. Every run sends
// that text to the worker (worker.js), which runs it the way `python -m sim FILE --json`
// does (sim/playground.py) and answers with the report's JSON text, the funnel rows,
// the trace of the timeline's window and the parsed mapping, or the command's one-line
// error. The page never parses YAML itself; it only writes it (toYaml), and Python
// reads what it wrote.
//
// The worker runs one scenario at a time. A new change while a run goes on asks it to
// stop (it stops at its next slice of virtual time) and queues the new one; Cancel asks
// the same, and if the worker does not answer within STOP_GRACE_MS it is terminated and
// a new one started, which does not redo the cancelled run. Drawing is plain SVG: a
// handful of rectangles and markers, with wheel zoom and drag pan, needs no charting
// library.

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const STOP_GRACE_MS = 2000;
const TYPING_DELAY_MS = 400;
const MAX_WINDOW_MS = 2000;
const THREAD_COLOURS = [
  "#77AADD", "#EE8866", "#44BB99", "#EEDD88", "#FFAABB", "#99DDFF", "#BBCC33", "#AAAA00",
];
const SERVICE_COLOURS = { reader: "#BBBBBB", profileLoop: "#888888" };
// Event kinds (sim/trace.py), as the timeline figure draws them (figures/timeline.py).
const EVENTS = {
  "expiry-process": { lane: 0, shape: "up", colour: "#0072B2", label: "process timer expired, SIGPROF queued" },
  "expiry-thread": { lane: 0, shape: "down", colour: "#56B4E9", label: "thread's own timer expired, SIGPROF queued" },
  "expiry-perf": { lane: 0, shape: "left", colour: "#0072B2", label: "perf event overflowed, SIGPROF queued" },
  "drop-pending": { lane: 0, shape: "x", colour: "#D55E00", label: "expired but dropped: a SIGPROF was already pending" },
  "drop-perf": { lane: 0, shape: "x", colour: "#D55E00", label: "perf overflow dropped: its thread's SIGPROF was pending" },
  deliver: { lane: 1, shape: "circle", colour: "#CC79A7", label: "delivered, the handler runs" },
  record: { lane: 2, shape: "square", colour: "#009E73", label: "written to the ring buffer" },
  discard: { lane: 2, shape: "diamond", colour: "#E69F00", label: "discarded by the runtime" },
  merge: { lane: 2, shape: "plus", colour: "#B8A800", label: "deliveries merged into one Python handler run" },
  lost: { lane: 2, shape: "star", colour: "#000000", label: "lost: buffer full" },
};
const STAGES = new Set([
  "expected_samples", "signals_generated", "signals_delivered", "samples_recorded", "samples_in_profile",
]);

const state = {
  worker: null,
  ready: false,
  schema: null,
  scenarios: {},
  mapping: null,
  fileName: "scenario.yaml",
  runId: 0,
  running: null, // id of the run in progress
  result: null,
  view: null, // [start_ns, end_ns] of the timeline
  stopTimer: null,
  cancelledByRestart: false, // the worker was replaced because it did not answer a Cancel
  typingTimer: null,
  doneId: 0, // the last run answered (a report, an error or a cancellation)
  timings: { readySeconds: null, firstResultSeconds: null, runs: [] },
};
window.playground = state; // for the browser test and the curious

// -- the URL form of a scenario --------------------------------------------------------

async function encodeScenario(text) {
  const stream = new Blob([new TextEncoder().encode(text)])
    .stream()
    .pipeThrough(new CompressionStream("deflate-raw"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return "yaml=" + btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

// "#yaml=...&window=100:140" -> {text, window: [100, 140] or null}
async function decodeFragment(fragment) {
  const fields = Object.fromEntries(
    fragment.replace(/^#/, "").split("&").map((part) => {
      const at = part.indexOf("=");
      return at < 0 ? [part, ""] : [part.slice(0, at), part.slice(at + 1)];
    }),
  );
  const window = fields.window ? fields.window.split(":").map(Number) : null;
  return { text: await decodeScenario(fields.yaml ?? ""), window };
}

async function decodeScenario(data64) {
  const data = data64.replaceAll("-", "+").replaceAll("_", "/");
  const binary = atob(data + "=".repeat((4 - (data.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new TextDecoder().decode(await new Response(stream).arrayBuffer());
}

// -- writing YAML (Python reads it back) -------------------------------------------------

const PLAIN = /^[A-Za-z_][A-Za-z0-9_.\-/ ]*$/;
const YAML_WORDS = /^(y|n|yes|no|on|off|true|false|null|~)$/i;

function scalar(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    let text = String(value);
    // PyYAML (YAML 1.1) reads 1e-07 as a string: it wants a dot and a signed exponent.
    if (/e/.test(text)) {
      let [mantissa, exponent] = text.split("e");
      if (!mantissa.includes(".")) mantissa += ".0";
      if (!/^[+-]/.test(exponent)) exponent = "+" + exponent;
      text = `${mantissa}e${exponent}`;
    }
    return text;
  }
  const text = String(value);
  if (PLAIN.test(text) && !YAML_WORDS.test(text) && text.trim() === text && !/ #|: /.test(text)) {
    return text;
  }
  return JSON.stringify(text); // a JSON string is a YAML double-quoted scalar
}

function isFlat(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) &&
    Object.values(value).every((v) => v === null || typeof v !== "object");
}

function toYaml(value, indent = "") {
  const lines = [];
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}[]`];
    for (const item of value) {
      if (item !== null && typeof item === "object" && !Array.isArray(item)) {
        const inner = toYaml(item, indent + "  ");
        lines.push(indent + "- " + inner[0].trimStart(), ...inner.slice(1));
      } else {
        lines.push(`${indent}- ${scalar(item)}`);
      }
    }
    return lines;
  }
  for (const [key, item] of Object.entries(value)) {
    if (Array.isArray(item) && item.every((v) => v === null || typeof v !== "object")) {
      lines.push(`${indent}${key}: [${item.map(scalar).join(", ")}]`);
    } else if (item !== null && typeof item === "object" && Object.keys(item).length === 0) {
      lines.push(`${indent}${key}: ${Array.isArray(item) ? "[]" : "{}"}`);
    } else if (isFlat(item) && indent.length >= 6) {
      // a step's work, as the shipped files write it: {function: f, cpu_ms: 30}
      const parts = Object.entries(item).map(([k, v]) => `${k}: ${scalar(v)}`);
      lines.push(`${indent}${key}: {${parts.join(", ")}}`);
    } else if (item !== null && typeof item === "object") {
      lines.push(`${indent}${key}:`, ...toYaml(item, indent + "  "));
    } else {
      lines.push(`${indent}${key}: ${scalar(item)}`);
    }
  }
  return lines;
}

// -- the worker ------------------------------------------------------------------------

function startWorker() {
  state.ready = false;
  setStatus("loading", "Loading Python in a worker…");
  const worker = new Worker("worker.js", { type: "module" });
  worker.onmessage = (event) => onWorkerMessage(event.data);
  worker.onerror = (event) => setStatus("error", `The worker failed: ${event.message}`);
  state.worker = worker;
}

function onWorkerMessage(message) {
  if (message.type === "ready") {
    const first = state.timings.readySeconds === null;
    state.ready = true;
    state.timings.readySeconds = performance.now() / 1000;
    state.timings.bootPhases = message.phases;
    state.scenarios = message.scenarios;
    showVersions(message.versions, message.seconds);
    setStatus("ready", `Python ${message.versions.running.python} is ready.`);
    state.textReady.then(() => {
      // A link's scenario, else the quickstart (the shipped ones come from the worker).
      // "#scenario=NAME" (the labs' links) opens a shipped scenario by its name.
      const named = new URLSearchParams(location.hash.slice(1)).get("scenario");
      if ($("yaml").value === "") {
        $("yaml").value =
          state.scenarios[named] ?? state.scenarios.quickstart ?? Object.values(state.scenarios)[0];
      }
      if (first) fillPresets();
      // A worker started anew after a Cancel it did not answer must not redo that run.
      if (state.cancelledByRestart) {
        state.cancelledByRestart = false;
        setStatus("cancelled", "Cancelled; Python was restarted. Change something or press Run.");
      } else {
        requestRun();
      }
    });
  } else if (message.type === "progress") {
    if (message.id === state.running) {
      $("progress").value = message.done;
      setStatus("running", `Running… ${Math.round(message.done * 100)}% of the simulated time`);
    }
  } else if (message.type === "result") {
    onResult(message);
  } else if (message.type === "bytecode") {
    state.timings.bytecodeSaved = message.saved;
  } else if (message.type === "failed") {
    if (message.id === state.running) state.running = null;
    setStatus("error", `Python failed: ${message.message}`);
    $("cancel").disabled = true;
  }
}

function requestRun() {
  clearTimeout(state.typingTimer);
  if (!state.ready) return; // the ready message runs what the text area holds
  const text = $("yaml").value;
  if (state.running !== null) state.worker.postMessage({ type: "stop" });
  const id = ++state.runId;
  state.running = id;
  state.runStarted = performance.now();
  $("progress").value = 0;
  $("cancel").disabled = false;
  setStatus("running", "Running…");
  state.worker.postMessage({ type: "run", id, text, fileName: state.fileName, windowMs: windowMs() });
}

function cancelRun() {
  if (state.running === null) return;
  state.worker.postMessage({ type: "stop" });
  const id = state.running;
  setStatus("running", "Cancelling…");
  clearTimeout(state.stopTimer);
  state.stopTimer = setTimeout(() => {
    if (state.running !== id) return;
    // No answer: the worker is stuck inside one slice. Start a fresh one.
    state.worker.terminate();
    state.running = null;
    state.cancelledByRestart = true;
    $("cancel").disabled = true;
    startWorker();
  }, STOP_GRACE_MS);
}

function onResult(message) {
  if (message.id !== state.runId) return; // a run that a newer one replaced
  state.doneId = message.id;
  state.running = null;
  clearTimeout(state.stopTimer);
  $("cancel").disabled = true;
  if (message.cancelled !== undefined) {
    setStatus("cancelled", `Cancelled at ${Math.round(message.cancelled * 100)}% of the simulated time.`);
    return;
  }
  const seconds = (performance.now() - state.runStarted) / 1000;
  state.timings.runs.push(seconds);
  // seconds since the page's navigation started, to the first report shown
  state.timings.firstResultSeconds ??= performance.now() / 1000;
  $("run-time").textContent = `${seconds.toFixed(2)} s`;
  if (message.mapping && typeof message.mapping === "object" && !isSameMapping(message.mapping)) {
    state.mapping = message.mapping;
    buildControls();
  }
  if (message.error) {
    $("error").textContent = message.error;
    $("error").hidden = false;
    setStatus("error", "The scenario has a mistake: the message under the file says where.");
    return;
  }
  $("error").hidden = true;
  $("error").textContent = "";
  state.result = message;
  state.result.reportData = JSON.parse(message.report);
  showReport();
  updateUrl();
  setStatus("done", `Done: ${state.result.reportData.samples_in_profile} samples in the profile.`);
}

function isSameMapping(mapping) {
  return JSON.stringify(mapping) === JSON.stringify(state.mapping);
}

function setStatus(kind, text) {
  const status = $("status");
  status.dataset.state = kind;
  status.textContent = text;
}

function showVersions(versions, seconds) {
  const running = versions.running;
  const p = $("versions");
  p.dataset.simpy = running.simpy;
  p.dataset.pyyaml = running.pyyaml;
  p.dataset.python = running.python;
  p.textContent =
    `Running Python ${running.python} (Pyodide ${versions.pyodide}), SimPy ${running.simpy}, ` +
    `PyYAML ${running.pyyaml}; the site was built with SimPy ${versions.simpy} and PyYAML ` +
    `${versions.pyyaml}. Python started in ${seconds.toFixed(1)} s.`;
}

// -- presets, the text, the URL --------------------------------------------------------

function fillPresets() {
  const select = $("preset");
  select.replaceChildren(new Option("(your own)", ""));
  for (const name of Object.keys(state.scenarios)) select.add(new Option(name, name));
  const current = $("yaml").value;
  select.value = Object.keys(state.scenarios).find((n) => state.scenarios[n] === current) ?? "";
}

function setText(text, { run = true, fileName = "scenario.yaml" } = {}) {
  $("yaml").value = text;
  state.fileName = fileName;
  if (run) requestRun();
}

async function updateUrl() {
  const [start, end] = windowMs();
  const fragment = `${await encodeScenario($("yaml").value)}&window=${start}:${end}`;
  const url = `${location.pathname}${location.search}#${fragment}`;
  if (location.hash !== `#${fragment}`) history.replaceState(null, "", url);
}

// Open the scenario of the address bar's fragment: "#yaml=..." (a shared link, a "try it"
// link) or "#scenario=NAME" (the labs' links; the shipped texts come with the worker).
async function openFragment({ run }) {
  if (location.hash.startsWith("#yaml=")) {
    const { text, window } = await decodeFragment(location.hash);
    if (window && window.length === 2 && window.every(Number.isFinite)) {
      [$("window-start").value, $("window-end").value] = window;
    }
    setText(text, { run });
  } else if (location.hash.startsWith("#scenario=") && state.ready) {
    const named = new URLSearchParams(location.hash.slice(1)).get("scenario");
    if (state.scenarios[named] !== undefined) setText(state.scenarios[named], { run });
  }
  if (run) fillPresets();
}

function textChanged() {
  $("preset").value =
    Object.keys(state.scenarios).find((n) => state.scenarios[n] === $("yaml").value) ?? "";
  clearTimeout(state.typingTimer);
  if ($("auto-run").checked) state.typingTimer = setTimeout(requestRun, TYPING_DELAY_MS);
}

function controlChanged() {
  $("yaml").value = toYaml(state.mapping).join("\n") + "\n";
  $("preset").value = "";
  if ($("auto-run").checked) requestRun();
}

function windowMs() {
  let start = Math.max(0, Number($("window-start").value) || 0);
  let end = Number($("window-end").value) || start + 40;
  if (end <= start) end = start + 1;
  end = Math.min(end, start + MAX_WINDOW_MS);
  return [start, end];
}

// -- the controls ------------------------------------------------------------------------

function schemaOf(name) {
  return state.schema?.$defs?.[name]?.properties ?? {};
}

function kindOf(spec) {
  const options = spec.anyOf ?? [spec];
  const enums = options.flatMap((o) => o.enum ?? []);
  const nullable = options.some((o) => o.type === "null");
  const main = options.find((o) => o.type && o.type !== "null") ?? {};
  return { enums, nullable, type: main.type, min: main.minimum, max: main.maximum, items: main.items };
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function field(owner, key, spec, { label = key, onChange = controlChanged } = {}) {
  const kind = kindOf(spec);
  const value = owner[key];
  let input;
  if (kind.enums.length) {
    input = element("select");
    if (kind.nullable || spec.default !== undefined) input.add(new Option(`(default${spec.default != null ? `: ${spec.default}` : ""})`, ""));
    for (const option of kind.enums) input.add(new Option(String(option), String(option)));
    if (value !== undefined && value !== null && !kind.enums.map(String).includes(String(value))) {
      input.add(new Option(String(value), String(value)));
    }
    input.value = value === undefined || value === null ? "" : String(value);
  } else if (kind.type === "boolean") {
    input = element("input", { type: "checkbox", checked: Boolean(value ?? spec.default) });
  } else if (kind.type === "array") {
    input = element("input", { type: "text", value: Array.isArray(value) ? value.join(", ") : "", placeholder: "none" });
  } else if (kind.type === "integer" || kind.type === "number") {
    input = element("input", {
      type: "number",
      step: kind.type === "integer" ? "1" : "any",
      value: value ?? "",
      placeholder: spec.default ?? "",
    });
    if (kind.min !== undefined) input.min = kind.min;
    if (kind.max !== undefined) input.max = kind.max;
  } else {
    input = element("input", { type: "text", value: value ?? "", placeholder: spec.default ?? "" });
  }
  input.dataset.field = key;
  input.addEventListener("change", () => {
    let next;
    if (input.type === "checkbox") next = input.checked;
    else if (input.value.trim() === "") next = undefined;
    else if (kind.type === "array") next = input.value.split(",").map((v) => Number(v.trim()));
    else if (kind.type === "integer" || kind.type === "number") next = Number(input.value);
    else if (kind.enums.length && typeof kind.enums[0] === "number") next = Number(input.value);
    else next = input.value;
    if (next === undefined) delete owner[key];
    else owner[key] = next;
    onChange();
  });
  const title = spec.description ?? "";
  return element("label", { className: "pg-field", title }, element("span", {}, label), input);
}

function section(title, owner, specs, keys) {
  const box = element("fieldset", { className: "pg-section" }, element("legend", {}, title));
  for (const key of keys) if (specs[key]) box.append(field(owner, key, specs[key]));
  return box;
}

const STEP_KINDS = ["run", "native", "sleep_ms", "syscall_ms"];

function stepRow(program, index) {
  const step = program[index];
  const kind = STEP_KINDS.find((k) => k in step) ?? "run";
  const row = element("div", { className: "pg-step" });
  const select = element("select", { title: "run: Go or Python code; native: C code; sleep or syscall: off the CPU" });
  for (const k of STEP_KINDS) select.add(new Option(k.replace("_ms", ""), k));
  select.value = kind;
  select.addEventListener("change", () => {
    const work = step.run ?? step.native ?? { function: "main.work", cpu_ms: 10 };
    const ms = step.sleep_ms ?? step.syscall_ms ?? work.cpu_ms ?? 5;
    program[index] = select.value.endsWith("_ms") ? { [select.value]: ms } : { [select.value]: work };
    buildControls();
    controlChanged();
  });
  row.append(select);
  const workSpecs = schemaOf("StepWork");
  if (kind.endsWith("_ms")) {
    row.append(field(step, kind, { type: "number", minimum: 0.001 }, { label: "ms" }));
  } else {
    for (const key of ["function", "cpu_ms", "depth"]) row.append(field(step[kind], key, workSpecs[key] ?? {}));
  }
  const remove = element("button", { type: "button", textContent: "×", title: "remove this step" });
  remove.addEventListener("click", () => {
    program.splice(index, 1);
    buildControls();
    controlChanged();
  });
  row.append(remove);
  return row;
}

function groupBox(threads, index) {
  const group = threads[index];
  const specs = schemaOf("ThreadGroup");
  const box = element("fieldset", { className: "pg-group" }, element("legend", {}, `thread group ${index + 1}`));
  for (const key of ["name", "count", "kind"]) if (specs[key]) box.append(field(group, key, specs[key]));
  group.program ??= [];
  group.program.forEach((_, i) => box.append(stepRow(group.program, i)));
  const add = element("button", { type: "button", textContent: "+ step" });
  add.addEventListener("click", () => {
    group.program.push({ run: { function: "main.work", cpu_ms: 10 } });
    buildControls();
    controlChanged();
  });
  const remove = element("button", { type: "button", textContent: "remove group" });
  remove.addEventListener("click", () => {
    threads.splice(index, 1);
    buildControls();
    controlChanged();
  });
  box.append(element("div", { className: "pg-bar" }, add, remove));
  return box;
}

function buildControls() {
  const form = $("controls");
  const mapping = state.mapping;
  if (!mapping || typeof mapping !== "object" || Array.isArray(mapping)) {
    form.replaceChildren(element("p", {}, "The controls follow the file once it parses as a YAML mapping."));
    return;
  }
  const top = state.schema?.properties ?? {};
  const parts = [section("Run", mapping, top, ["name", "seed"])];
  if (typeof mapping.machine === "string") {
    parts.push(section("Machine (a machine profile, by name)", mapping, { machine: { type: "string" } }, ["machine"]));
  } else {
    mapping.machine ??= {};
    parts.push(
      section("Machine", mapping.machine, schemaOf("Machine"), [
        "cpus", "kernel_hz", "tick_skew", "same_round_survival", "same_round_survival_after_switch",
        "cpu_check_bias", "base_slice_ms", "perf_delivery_us",
      ]),
    );
  }
  mapping.profiler ??= {};
  parts.push(
    section("Profiler", mapping.profiler, schemaOf("Profiler"), [
      "runtime", "timer", "rate_hz", "buffer_words", "extra_words", "reader_period_ms",
      "reader_cost_us_per_sample", "handler_cost_us", "max_depth", "gil_switch_interval_ms",
      "suspend_timer_resolution_ms",
    ]),
  );
  mapping.workload ??= {};
  const workload = section("Workload", mapping.workload, schemaOf("Workload"), ["duration_s", "gomaxprocs"]);
  mapping.workload.threads ??= [];
  const threads = mapping.workload.threads;
  threads.forEach((_, i) => workload.append(groupBox(threads, i)));
  const add = element("button", { type: "button", textContent: "+ thread group" });
  add.addEventListener("click", () => {
    threads.push({ name: `group${threads.length + 1}`, count: 1, program: [{ run: { function: "main.work", cpu_ms: 10 } }] });
    buildControls();
    controlChanged();
  });
  workload.append(add);
  parts.push(workload);
  form.replaceChildren(...parts);
}

// -- the report --------------------------------------------------------------------------

const fmt = (value, digits = 0) =>
  value === null || value === undefined
    ? "—"
    : Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

function showReport() {
  const report = state.result.reportData;
  showFunnel(state.result.funnel, report);
  const trace = state.result.trace;
  state.view = trace ? [trace.start_ns, trace.end_ns] : null;
  drawTimeline();
  showAttribution(report);
  $("notes").replaceChildren(...report.notes.map((n) => element("li", {}, n)));
  $("report-text").textContent = state.result.text;
  $("report-json").textContent = state.result.report;
}

function showFunnel(rows, report) {
  const expected = report.expected_samples || 1;
  const top = Math.max(...rows.map((r) => r[2] ?? 0), 1);
  const width = 260;
  const table = element("table", { className: "pg-funnel" });
  table.append(element("tr", {}, element("th", {}, "stage"), element("th", {}, "count"), element("th", {}, "of expected"), element("th", {}, "")));
  for (const [name, label, value] of rows) {
    const stage = STAGES.has(name);
    const sub = name.startsWith("signals_discarded_");
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", 14);
    const bar = document.createElementNS(SVG_NS, "rect");
    bar.setAttribute("height", 12);
    bar.setAttribute("y", 1);
    bar.setAttribute("width", Math.max(1, (width * (value ?? 0)) / top));
    bar.setAttribute("fill", stage ? "#0072B2" : sub ? "#F5C77E" : "#D55E00");
    svg.append(bar);
    table.append(
      element(
        "tr",
        { className: stage ? "stage" : sub ? "sub" : "loss", dataset: { field: name, value: String(value) } },
        element("td", {}, label),
        element("td", { className: "num" }, fmt(value, Number.isInteger(value) ? 0 : 1)),
        element("td", { className: "num" }, `${((100 * (value ?? 0)) / expected).toFixed(1)}%`),
        element("td", {}, svg),
      ),
    );
  }
  const summary = element(
    "p",
    { id: "funnel-summary" },
    `Capture ratio ${fmt(report.capture_ratio * 100, 1)}%: the profile shows ${fmt(report.profile_cpu_percent, 1)}% CPU ` +
      `where the threads used ${fmt((100 * report.cpu_seconds) / report.wall_seconds, 1)}%.`,
  );
  $("funnel").replaceChildren(summary, table);
}

function showAttribution(report) {
  const table = (title, rows) => {
    const t = element("table", { className: "pg-attribution" });
    t.append(element("caption", {}, title));
    t.append(element("tr", {}, ...["name", "samples", "share", "true share", "error (pp)"].map((h) => element("th", {}, h))));
    for (const row of rows) {
      t.append(
        element(
          "tr",
          {},
          element("td", {}, row.name),
          element("td", { className: "num" }, fmt(row.samples)),
          element("td", { className: "num" }, `${fmt(row.share * 100, 1)}%`),
          element("td", { className: "num" }, `${fmt(row.true_share * 100, 1)}%`),
          element("td", { className: "num" }, fmt((row.share - row.true_share) * 100, 2)),
        ),
      );
    }
    return t;
  };
  $("attribution").replaceChildren(
    table("by function", report.functions),
    table("by thread", report.threads),
    element("p", {}, `Largest attribution error: ${fmt(report.attribution_error_pp, 2)} percentage points.`),
  );
}

// -- the timeline ------------------------------------------------------------------------

function threadColour(trace, name) {
  if (SERVICE_COLOURS[name]) return SERVICE_COLOURS[name];
  const index = trace.threads.indexOf(name);
  return THREAD_COLOURS[(index < 0 ? 0 : index) % THREAD_COLOURS.length];
}

function marker(shape, x, y, colour) {
  const r = 3.5;
  let node;
  if (shape === "circle") {
    node = document.createElementNS(SVG_NS, "circle");
    node.setAttribute("cx", x);
    node.setAttribute("cy", y);
    node.setAttribute("r", r);
  } else {
    const paths = {
      up: `M${x},${y - r}L${x + r},${y + r}L${x - r},${y + r}Z`,
      down: `M${x},${y + r}L${x + r},${y - r}L${x - r},${y - r}Z`,
      left: `M${x - r},${y}L${x + r},${y - r}L${x + r},${y + r}Z`,
      square: `M${x - r},${y - r}h${2 * r}v${2 * r}h${-2 * r}Z`,
      diamond: `M${x},${y - r}L${x + r},${y}L${x},${y + r}L${x - r},${y}Z`,
      x: `M${x - r},${y - r}L${x + r},${y + r}M${x + r},${y - r}L${x - r},${y + r}`,
      plus: `M${x - r},${y}H${x + r}M${x},${y - r}V${y + r}`,
      star: `M${x},${y - r}L${x + 1},${y - 1}L${x + r},${y}L${x + 1},${y + 1}L${x},${y + r}L${x - 1},${y + 1}L${x - r},${y}L${x - 1},${y - 1}Z`,
    };
    node = document.createElementNS(SVG_NS, "path");
    node.setAttribute("d", paths[shape]);
  }
  const stroked = shape === "x" || shape === "plus";
  node.setAttribute(stroked ? "stroke" : "fill", colour);
  if (stroked) {
    node.setAttribute("stroke-width", 1.6);
    node.setAttribute("fill", "none");
  }
  return node;
}

function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawTimeline() {
  const holder = $("timeline");
  const trace = state.result?.trace;
  if (!trace) {
    holder.replaceChildren();
    return;
  }
  const [viewStart, viewEnd] = state.view;
  const left = 60;
  const width = Math.max(400, holder.clientWidth || 900) - left - 10;
  const rowHeight = 58;
  const height = 24 + trace.cpus * rowHeight;
  const x = (t) => left + ((t - viewStart) / (viewEnd - viewStart)) * width;
  const svg = svgNode("svg", { width: left + width + 10, height, class: "pg-timeline" });
  svg.dataset.viewStartNs = viewStart;
  svg.dataset.viewEndNs = viewEnd;
  svg.append(svgNode("defs", {}));
  const clip = svgNode("clipPath", { id: "pg-clip" });
  clip.append(svgNode("rect", { x: left, y: 0, width, height }));
  svg.firstChild.append(clip);
  const plot = svgNode("g", { "clip-path": "url(#pg-clip)" });
  // where each thread ran, to put a thread's events under the CPU it was on
  const onCpu = {};
  let drawn = 0;
  for (const [cpu, thread, t0, t1] of trace.segments) {
    (onCpu[thread] ??= []).push([t0, t1, cpu]);
    if (t1 < viewStart || t0 > viewEnd) continue;
    const rect = svgNode("rect", {
      x: x(t0), y: 18 + cpu * rowHeight, width: Math.max(0.5, x(t1) - x(t0)), height: 20,
      fill: threadColour(trace, thread), stroke: "#ffffff", "stroke-width": 0.5,
    });
    rect.append(svgNode("title", {}, `${thread} on CPU ${cpu}: ${(t0 / 1e6).toFixed(3)}–${(t1 / 1e6).toFixed(3)} ms`));
    plot.append(rect);
    drawn += 1;
  }
  for (const [cpu, t] of trace.ticks) {
    if (t < viewStart || t > viewEnd) continue;
    plot.append(svgNode("line", { x1: x(t), x2: x(t), y1: 14 + cpu * rowHeight, y2: 42 + cpu * rowHeight, stroke: "#555", "stroke-width": 0.8, "stroke-dasharray": "2,2" }));
  }
  let events = 0;
  for (const [t, kind, thread] of trace.events) {
    if (t < viewStart || t > viewEnd) continue;
    const spans = onCpu[thread] ?? [];
    const span = spans.find(([t0, t1]) => t0 <= t && t <= t1) ?? spans.reduce(
      (best, s) => (!best || Math.abs(s[0] - t) < Math.abs(best[0] - t) ? s : best), null);
    const cpu = span ? span[2] : 0;
    const style = EVENTS[kind] ?? { lane: 2, shape: "circle", colour: "#777", label: kind };
    const node = marker(style.shape, x(t), 46 + cpu * rowHeight + style.lane * 7, style.colour);
    node.append(svgNode("title", {}, `${(t / 1e6).toFixed(3)} ms, ${thread}: ${style.label}`));
    plot.append(node);
    events += 1;
  }
  svg.append(plot);
  for (let cpu = 0; cpu < trace.cpus; cpu += 1) {
    svg.append(svgNode("text", { x: 4, y: 32 + cpu * rowHeight, "font-size": 12 }, `CPU ${cpu}`));
  }
  // the time axis: about eight labelled instants
  const span = viewEnd - viewStart;
  const stepNs = niceStep(span / 8);
  for (let t = Math.ceil(viewStart / stepNs) * stepNs; t <= viewEnd; t += stepNs) {
    svg.append(svgNode("line", { x1: x(t), x2: x(t), y1: 10, y2: 14, stroke: "#333" }));
    svg.append(svgNode("text", { x: x(t), y: 9, "font-size": 10, "text-anchor": "middle" }, `${+(t / 1e6).toFixed(3)} ms`));
  }
  svg.dataset.segments = drawn;
  svg.dataset.events = events;
  const legend = element("div", { className: "pg-legend" });
  for (const name of trace.threads) {
    legend.append(element("span", {}, element("i", { style: `background:${threadColour(trace, name)}` }), name));
  }
  const kinds = new Set(trace.events.map((e) => e[1]));
  for (const [kind, style] of Object.entries(EVENTS)) {
    if (!kinds.has(kind)) continue;
    const icon = svgNode("svg", { width: 10, height: 10 });
    icon.append(marker(style.shape, 5, 5, style.colour));
    legend.append(element("span", {}, icon, style.label));
  }
  legend.append(element("span", {}, "dashed: a kernel tick"));
  holder.replaceChildren(svg, legend);
  attachZoom(svg, left, width);
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function attachZoom(svg, left, width) {
  const trace = state.result.trace;
  const clamp = ([a, b]) => {
    const full = trace.end_ns - trace.start_ns;
    const span = Math.min(Math.max(b - a, 1000), full);
    let start = Math.max(trace.start_ns, Math.min(a, trace.end_ns - span));
    return [start, start + span];
  };
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [a, b] = state.view;
    const at = a + ((event.offsetX - left) / width) * (b - a);
    const factor = event.deltaY < 0 ? 1 / 1.25 : 1.25;
    state.view = clamp([at - (at - a) * factor, at + (b - at) * factor]);
    drawTimeline();
  }, { passive: false });
  svg.addEventListener("mousedown", (event) => {
    const startX = event.clientX;
    const [a, b] = state.view;
    const move = (e) => {
      const shift = ((e.clientX - startX) / width) * (b - a);
      state.view = clamp([a - shift, b - shift]);
      drawTimeline();
    };
    const up = () => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
  });
}

// -- files -------------------------------------------------------------------------------

function download() {
  const blob = new Blob([$("yaml").value], { type: "text/yaml" });
  const link = element("a", { href: URL.createObjectURL(blob), download: "scenario.yaml" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

async function openFile(file) {
  setText(await file.text(), { fileName: file.name });
  fillPresets();
}

// -- start -------------------------------------------------------------------------------

async function start() {
  $("run").addEventListener("click", requestRun);
  $("cancel").addEventListener("click", cancelRun);
  $("preset").addEventListener("change", () => {
    const name = $("preset").value;
    if (name) setText(state.scenarios[name]);
  });
  $("yaml").addEventListener("input", () => {
    state.fileName = "scenario.yaml";
    textChanged();
  });
  $("yaml").addEventListener("dragover", (event) => event.preventDefault());
  $("yaml").addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) openFile(file);
  });
  $("file").addEventListener("change", () => $("file").files[0] && openFile($("file").files[0]));
  $("download").addEventListener("click", download);
  $("share").addEventListener("click", async () => {
    await updateUrl();
    await navigator.clipboard?.writeText(location.href).catch(() => {});
    $("share").textContent = "Link copied";
    setTimeout(() => ($("share").textContent = "Copy link"), 1500);
  });
  $("zoom-reset").addEventListener("click", () => {
    if (!state.result?.trace) return;
    state.view = [state.result.trace.start_ns, state.result.trace.end_ns];
    drawTimeline();
  });
  for (const id of ["window-start", "window-end"]) $(id).addEventListener("change", requestRun);
  state.textReady = openFragment({ run: false });
  // A link pasted into the address bar of this page changes only the fragment: no reload.
  window.addEventListener("hashchange", () => openFragment({ run: true }));
  // Python starts only where the site was built with it (docsgen.playground writes
  // versions.json either way), so a site built without npm requests nothing missing.
  const versions = await fetch("runtime/versions.json").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  if (versions === null || !versions.pyodide) {
    setStatus("error", "This build of the site has no Python runtime: run `npm ci --prefix web`, then build it again.");
  } else {
    startWorker();
  }
  state.schema = await fetch("../reference/scenario.schema.json")
    .then((r) => r.json())
    .catch(() => null);
}

start();
