// The playground's worker: Pyodide and the simulator, off the page's thread.
//
// Loads the interpreter and the standard library from runtime/pyodide/ and the packed
// simulator (runtime/sigprof.zip: contract/, sim/, SimPy, PyYAML; see
// docsgen/playground.py) from the same site, never from the network beyond it; unpacks
// the zip to /sigprof, puts it first on sys.path and works in /work, where each run's
// scenario file is written (sim/playground.py). Messages:
//   page -> worker: {type: "run", id, text, fileName, windowMs: [start, end]}
//                   {type: "stop"}: the running run gives up at its next slice
//   worker -> page: {type: "ready", versions, scenarios, seconds}
//                   {type: "progress", id, done} (share of the run's virtual time)
//                   {type: "result", id, ...sim.playground.run_scenario's JSON, seconds}
//                   {type: "failed", id, message}: a Python error that is not bad input
//                   {type: "bytecode", saved}: after the first run, if there was no cache
// Runs are done one at a time, in order; "stop" applies to the run in progress only.
// A module worker: Pyodide's loader supports no classic one.
import { loadPyodide } from "./runtime/pyodide/pyodide.mjs";

const queue = [];
let stopRequested = false;
let driver = null;
let busy = false;

async function boot() {
  const started = performance.now();
  const phases = {};
  let mark = started;
  const phase = (name) => {
    const now = performance.now();
    phases[name] = (now - mark) / 1000;
    mark = now;
  };
  const versions = await (await fetch("runtime/versions.json")).json();
  // The zip comes while the interpreter starts.
  const zipBytes = fetch(`runtime/sigprof.zip?sha=${versions.zip_sha256}`).then((r) => r.arrayBuffer());
  const pyodide = await loadPyodide({ indexURL: new URL("runtime/pyodide/", self.location).href });
  phase("interpreter");
  pyodide.unpackArchive(await zipBytes, "zip", { extractDir: "/sigprof" });
  pyodide.runPython(
    "import os, sys\n" +
      "sys.path.insert(0, '/sigprof')\n" +
      "os.makedirs('/work', exist_ok=True)\n" +
      "os.chdir('/work')\n",
  );
  const cacheKey = `pyc-${versions.zip_sha256}-${pyodide.version}`;
  const cached = await loadBytecode(cacheKey);
  if (cached) pyodide.unpackArchive(cached, "zip", { extractDir: "/sigprof" });
  phases.bytecodeCached = Boolean(cached);
  phase("simulator files");
  driver = pyodide.pyimport("sim.playground");
  phase("imports");
  if (!cached) pendingBytecode = () => saveBytecode(pyodide, cacheKey);
  const running = JSON.parse(
    pyodide.runPython(
      "import json, sys, importlib.metadata as m, simpy, yaml\n" +
        "json.dumps({'simpy': simpy.__version__, 'pyyaml': m.version('PyYAML'),\n" +
        "            'python': sys.version.split()[0]})",
    ),
  );
  const scenarios = JSON.parse(driver.shipped_scenario_texts());
  postMessage({
    type: "ready",
    versions: { ...versions, running },
    scenarios,
    seconds: (performance.now() - started) / 1000,
    phases,
  });
}

// Compiling the simulator's modules takes the interpreter about a second at each load;
// after the first run in a browser, their bytecode is kept in the site's Cache Storage
// (keyed by the zip's hash and Pyodide's version, checked by nothing else: the pyc files
// are "unchecked-hash" ones) and unpacked beside the sources at the next load.
let pendingBytecode = null;

async function loadBytecode(key) {
  try {
    const cache = await caches.open("sigprof-playground");
    const hit = await cache.match(`bytecode/${key}.zip`);
    return hit ? await hit.arrayBuffer() : null;
  } catch {
    return null; // no Cache Storage (a file: URL, a private window): compile again
  }
}

async function saveBytecode(pyodide, key) {
  try {
    const bytes = pyodide.runPython(`
import compileall, io, py_compile, sys, zipfile
from pathlib import Path
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w") as archive:
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None) or ""
        if not source.startswith("/sigprof/") or not source.endswith(".py"):
            continue
        target = py_compile.compile(
            source, doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        archive.write(target, str(Path(target).relative_to("/sigprof")))
buffer.getvalue()
`);
    const cache = await caches.open("sigprof-playground");
    for (const old of await cache.keys()) await cache.delete(old);
    await cache.put(`bytecode/${key}.zip`, new Response(bytes.toJs()));
    bytes.destroy();
    postMessage({ type: "bytecode", saved: true });
  } catch (error) {
    console.warn(`playground: bytecode not cached: ${error}`);
    postMessage({ type: "bytecode", saved: false });
  }
}

async function runNext() {
  if (busy || driver === null || queue.length === 0) return;
  busy = true;
  const job = queue.shift();
  stopRequested = false;
  const started = performance.now();
  try {
    const answer = await driver.run_scenario(
      job.text,
      job.fileName || "scenario.yaml",
      job.windowMs,
      (done) => postMessage({ type: "progress", id: job.id, done }),
      () => stopRequested,
    );
    const seconds = (performance.now() - started) / 1000;
    postMessage({ type: "result", id: job.id, seconds, ...JSON.parse(answer) });
  } catch (error) {
    postMessage({ type: "failed", id: job.id, message: String(error) });
  } finally {
    busy = false;
  }
  if (queue.length === 0 && pendingBytecode) {
    const save = pendingBytecode;
    pendingBytecode = null;
    await save();
  }
  runNext();
}

self.onmessage = (event) => {
  const message = event.data;
  if (message.type === "stop") {
    stopRequested = true;
  } else if (message.type === "run") {
    queue.push(message);
    runNext();
  }
};

boot().then(runNext, (error) => postMessage({ type: "failed", id: null, message: String(error) }));
