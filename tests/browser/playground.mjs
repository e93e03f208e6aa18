// Headless Chromium check of the playground page (docs/playground.md), network cut.
//
// Run by tests/test_browser.py with one JSON argument:
//   {"chromium": "/usr/bin/chromium", "userDataDir": "...", "screenshots": "...",
//    "url": "http://127.0.0.1:PORT/site/playground/", "downloads": "...",
//    "scenarios": ["quickstart", ...], "bad": "YAML text with a mistake",
//    "long": "YAML text of a run of minutes", "heavy": "YAML text of a run whose every
//    slice takes minutes", "links": [{"page", "fragment"}, ...], "warmLoads": 5,
//    "reruns": 5}
// and prints one JSON object on stdout with what it measured and read off the page; the
// Python test does the asserting. The browser has no network: its proxy is a closed
// port, and only the loopback (the local server) bypasses it; every request the page
// or its worker makes elsewhere is listed (the page must need nothing but its site). Timings are the page's own
// (performance.now(), from the navigation's start): `firstResultSeconds` is when the
// first report was on the page, `runs` each run's seconds from the request to its
// report. The cold load is the first in a fresh profile; the warm loads follow in the
// same browser, with its HTTP cache.
import puppeteer from "puppeteer-core";
import fs from "node:fs";
import path from "node:path";

const config = JSON.parse(process.argv[2]);
const TIMEOUT_MS = 60000;
const local = (url) => /^(https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/|data:|blob:)/.test(url);
const outside = [];
const problems = [];

async function openPage(context, url) {
  const page = await context.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  // Listed, not intercepted: puppeteer's interception stalls a worker's requests. The
  // browser itself has no network (launch arguments below).
  page.on("request", (req) => local(req.url()) || outside.push(req.url()));
  page.on("pageerror", (err) => problems.push(`pageerror: ${err}`));
  page.on("console", (msg) => msg.type() === "error" && problems.push(`console: ${msg.text()}`));
  await page.goto(url, { waitUntil: "load", timeout: TIMEOUT_MS });
  await settled(page, 0);
  return page;
}

// Wait until the run after `previousId` has answered; return the status it left.
async function settled(page, previousId, timeout = TIMEOUT_MS) {
  await page.waitForFunction(
    (id) => window.playground && window.playground.doneId > id && window.playground.running === null,
    { timeout, polling: 20 },
    previousId,
  );
  return page.evaluate(() => ({
    state: document.getElementById("status").dataset.state,
    status: document.getElementById("status").textContent,
    error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
    report: document.getElementById("report-json").textContent,
    text: document.getElementById("yaml").value,
    doneId: window.playground.doneId,
    runSeconds: window.playground.timings.runs.at(-1),
  }));
}

const doneId = (page) => page.evaluate(() => window.playground.doneId);

// Set a control of the form (by its section's legend and its field) and fire "change".
async function setControl(page, legend, fieldName, value) {
  const id = await doneId(page);
  await page.evaluate(
    (legend, fieldName, value) => {
      const box = [...document.querySelectorAll("#controls fieldset")].find((f) =>
        f.querySelector("legend").textContent.startsWith(legend),
      );
      const input = box.querySelector(`[data-field="${fieldName}"]`);
      input.value = String(value);
      input.dispatchEvent(new Event("change"));
    },
    legend,
    fieldName,
    value,
  );
  return settled(page, id);
}

// Put text in the scenario file's area as a paste does (an "input" event).
async function typeText(page, text) {
  await page.evaluate((text) => {
    const area = document.getElementById("yaml");
    area.value = text;
    area.dispatchEvent(new Event("input"));
  }, text);
}

async function pasteText(page, text) {
  const id = await doneId(page);
  await typeText(page, text);
  return settled(page, id);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const browser = await puppeteer.launch({
  executablePath: config.chromium,
  headless: true,
  userDataDir: config.userDataDir,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // The network cut: every request but to the loopback (which Chromium never sends to
    // a proxy) goes to a proxy at a closed port of the loopback, and fails.
    "--proxy-server=http://127.0.0.1:9",
  ],
});
const result = { version: await browser.version() };
try {
  const context = browser.defaultBrowserContext();
  // 1. Loads: one cold (fresh profile), then warm ones.
  const loads = [];
  for (let i = 0; i <= config.warmLoads; i += 1) {
    const page = await openPage(context, config.url);
    loads.push(await page.evaluate(() => ({ ...window.playground.timings })));
    // A reader stays on the page: let the worker keep the bytecode it compiled.
    await page.waitForFunction(
      () => window.playground.timings.bootPhases?.bytecodeCached || "bytecodeSaved" in window.playground.timings,
      { timeout: TIMEOUT_MS },
    );
    if (i < config.warmLoads) await page.close();
    else result.page = page;
  }
  result.coldLoad = loads[0];
  result.warmLoads = loads.slice(1);
  result.warmFirstResultMedianSeconds = median(loads.slice(1).map((l) => l.firstResultSeconds));
  const page = result.page;
  delete result.page;
  const first = await settled(page, 0);
  result.first = { state: first.state, report: first.report };
  // Ids the page holds twice (a heading's anchor and an element of the page's own, say).
  result.duplicateIds = await page.evaluate(() => {
    const ids = [...document.querySelectorAll("[id]")].map((node) => node.id);
    return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
  });
  result.versions = await page.$eval("#versions", (p) => ({ ...p.dataset, text: p.textContent }));

  // 2. Reruns after a change of one control (CPUs 3, 2, 3, ...).
  const reruns = [];
  for (let i = 0; i < config.reruns; i += 1) {
    reruns.push((await setControl(page, "Machine", "cpus", i % 2 ? 2 : 3)).runSeconds);
  }
  result.reruns = reruns;
  result.rerunMedianSeconds = median(reruns);

  // 3. The timeline: drawn, then zoomed by the wheel and panned by a drag.
  const view = () =>
    page.$eval("#timeline svg", (svg) => ({
      start: Number(svg.dataset.viewStartNs),
      end: Number(svg.dataset.viewEndNs),
      segments: Number(svg.dataset.segments),
      events: Number(svg.dataset.events),
      rects: svg.querySelectorAll("rect").length,
    }));
  const box = await (await page.$("#timeline svg")).boundingBox();
  await page.evaluate(() => document.getElementById("timeline").scrollIntoView());
  const before = await view();
  const svgBox = await (await page.$("#timeline svg")).boundingBox();
  await page.mouse.move(svgBox.x + svgBox.width / 2, svgBox.y + svgBox.height / 2);
  for (let i = 0; i < 4; i += 1) await page.mouse.wheel({ deltaY: -100 });
  const zoomed = await view();
  await page.mouse.down();
  await page.mouse.move(svgBox.x + svgBox.width / 2 - 200, svgBox.y + svgBox.height / 2, { steps: 5 });
  await page.mouse.up();
  const panned = await view();
  await page.click("#zoom-reset");
  result.timeline = { before, zoomed, panned, reset: await view(), box };

  // 4. Each shipped scenario, picked in the list: its report.json as the page shows it.
  result.scenarios = {};
  for (const name of config.scenarios) {
    const id = await doneId(page);
    await page.select("#preset", name);
    const answer = await settled(page, id);
    result.scenarios[name] = { state: answer.state, report: answer.report, error: answer.error };
  }

  // 5. The ceiling: quickstart, then 16 CPUs, Go 1.17 and 16 threads through the controls;
  //    the file the page downloads, and the link it puts in the address bar.
  let id = await doneId(page);
  await page.select("#preset", "quickstart");
  await settled(page, id);
  await setControl(page, "Machine", "cpus", 16);
  await setControl(page, "Profiler", "runtime", "go1.17");
  const ceiling = await setControl(page, "thread group 1", "count", 16);
  await page.screenshot({ path: path.join(config.screenshots, "playground-ceiling.png"), fullPage: true });
  const cdp = await page.createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: config.downloads });
  await page.click("#download");
  const downloaded = path.join(config.downloads, "scenario.yaml");
  for (let waited = 0; !fs.existsSync(downloaded) && waited < 5000; waited += 50) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = await page.evaluate(() => location.href);
  result.ceiling = {
    state: ceiling.state,
    report: ceiling.report,
    text: ceiling.text,
    summary: await page.$eval("#funnel-summary", (p) => p.textContent),
    downloaded: fs.existsSync(downloaded) ? fs.readFileSync(downloaded, "utf-8") : null,
    url,
  };

  // 6. The link, opened in a fresh context (no cache, no storage): the same run.
  const fresh = await browser.createBrowserContext();
  const again = await openPage(fresh, url);
  const reopened = await settled(again, 0);
  result.urlRoundTrip = { text: reopened.text, report: reopened.report, state: reopened.state };
  await fresh.close();

  // 7. A bad scenario pasted in: the command line's one line.
  const bad = await pasteText(page, config.bad);
  result.bad = { state: bad.state, error: bad.error };

  // 8. A long run: progress, a click handled meanwhile, Cancel, and the worker still works.
  await typeText(page, config.long); // runs for minutes: not awaited
  const progress = [];
  const clicks = [];
  const started = Date.now();
  while (progress.length < 4 && Date.now() - started < 30000) {
    const shown = await page.$eval("#progress", (p) => p.value);
    if (shown > 0 && shown !== progress.at(-1)) progress.push(shown);
    // a click on the page while Python runs: handled at once (the worker has Python)
    const clickStarted = Date.now();
    const checked = await page.evaluate(() => {
      const box = document.getElementById("auto-run");
      box.click();
      return box.checked;
    });
    clicks.push({ ms: Date.now() - clickStarted, checked });
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.evaluate(() => (document.getElementById("auto-run").checked = true));
  const statusWhileRunning = await page.$eval("#status", (s) => s.textContent);
  const cancelStarted = Date.now();
  await page.click("#cancel");
  await page.waitForFunction(() => document.getElementById("status").dataset.state === "cancelled", {
    timeout: TIMEOUT_MS,
  });
  const cancelSeconds = (Date.now() - cancelStarted) / 1000;
  id = await doneId(page);
  await page.select("#preset", "quickstart");
  const afterCancel = await settled(page, id);
  // The home page's picture: the playground itself (status, controls, funnel, timeline),
  // without the site's header, navigation and the page's introduction.
  const area = await page.$eval("#pg-app", (div) => {
    const box = div.getBoundingClientRect(); // of the viewport: the clip is of the page
    return { x: box.x + scrollX - 8, y: box.y + scrollY - 8, width: box.width + 16, height: box.height };
  });
  await page.screenshot({
    path: path.join(config.screenshots, "playground.png"),
    clip: { ...area, height: Math.min(area.height, 860) + 8 },
  });
  result.long = {
    progress,
    clicks,
    statusWhileRunning,
    cancelSeconds,
    cancelledStatus: "cancelled",
    afterCancel: { state: afterCancel.state, report: afterCancel.report },
    stillRunningBeforeCancel: progress.length > 0 && progress.at(-1) < 1,
  };
  result.screenshotFacts = await page.evaluate(() => ({
    funnelRows: [...document.querySelectorAll("#funnel tr[data-field]")].map((r) => [
      r.dataset.field,
      r.dataset.value,
      r.children[1].textContent,
    ]),
    timelineRects: document.querySelectorAll("#timeline svg rect").length,
  }));
  result.screenshots = ["playground.png", "playground-ceiling.png"].map((n) =>
    path.join(config.screenshots, n),
  );
  // 10. Every "try it" link of the walkthrough and every lab's playground link, put in the
  //     address bar of the open page (a fragment-only change: the page does not reload).
  result.links = [];
  for (const link of config.links) {
    const before = await doneId(page);
    await page.evaluate((fragment) => (location.hash = fragment), link.fragment);
    const answer = await settled(page, before, 20000).catch(() => null);
    result.links.push({
      ...link,
      state: answer?.state ?? "no run",
      text: answer?.text ?? null,
      report: answer?.report ?? null,
      window: await page.evaluate(() =>
        ["window-start", "window-end"].map((id) => Number(document.getElementById(id).value)),
      ),
    });
    if (result.links.slice(-2).filter((l) => l.state === "no run").length === 2) break;
  }

  // 9. A run one slice of which outlasts the grace Cancel gives it: the worker is replaced,
  //    and the new one must not start the cancelled run again.
  await typeText(page, config.heavy); // one slice takes minutes: not awaited
  await page.waitForFunction(() => document.getElementById("status").dataset.state === "running", {
    timeout: TIMEOUT_MS,
  });
  await new Promise((r) => setTimeout(r, 1000));
  const readyBefore = await page.evaluate(() => window.playground.timings.readySeconds);
  await page.click("#cancel");
  await page.waitForFunction(
    (before) => window.playground.ready && window.playground.timings.readySeconds > before,
    { timeout: TIMEOUT_MS },
    readyBefore,
  );
  await new Promise((r) => setTimeout(r, 1500)); // long enough for a rerun to have begun
  result.heavy = await page.evaluate(() => ({
    state: document.getElementById("status").dataset.state,
    status: document.getElementById("status").textContent,
    running: window.playground.running,
  }));
} finally {
  result.outside = outside;
  result.problems = problems;
  process.stdout.write(JSON.stringify(result));
  await browser.close();
}
