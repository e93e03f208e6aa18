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
// Runs are done one at a time, in order; "stop" applies to the run in progress only.
// A module worker: Pyodide's loader supports no classic one.
import { loadPyodide } from "./runtime/pyodide/pyodide.mjs";

const queue = [];
let stopRequested = false;
let driver = null;
let busy = false;

async function boot() {
  const started = performance.now();
  const versions = await (await fetch("runtime/versions.json")).json();
  const pyodide = await loadPyodide({ indexURL: new URL("runtime/pyodide/", self.location).href });
  const zip = await (await fetch(`runtime/sigprof.zip?sha=${versions.zip_sha256}`)).arrayBuffer();
  pyodide.unpackArchive(zip, "zip", { extractDir: "/sigprof" });
  pyodide.runPython(
    "import os, sys\n" +
      "sys.path.insert(0, '/sigprof')\n" +
      "os.makedirs('/work', exist_ok=True)\n" +
      "os.chdir('/work')\n",
  );
  driver = pyodide.pyimport("sim.playground");
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
  });
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
