// Headless Chromium check of the built docs site, of a sim profile in speedscope and of
// a `realprof flame` page.
//
// Run by tests/test_browser.py, which builds the site, serves it on 127.0.0.1 and
// passes one JSON argument:
//   {"chromium": "/usr/bin/chromium", "userDataDir": "...", "screenshots": "...",
//    "pages": [{"url": "...", "name": "..."}],
//    "speedscope": {"url": "...", "expect": ["main.compute", ...]},
//    "flame": {"url": "file:///.../flame.html", "zoom": "frame label", "search": "text"}}
// (each part optional) and prints one JSON object on stdout: per page its title, first
// <h1>, every <img> (src, complete, naturalWidth), console errors, page errors and failed
// requests; for speedscope the document title, the expected names found in the DOM and in
// the text drawn on canvases, and the same error lists; for the flame page the frames
// drawn (count, their rendered widths against their samples), the total it shows, what
// a click on the "zoom" frame and typing "search" in the search box do, every request
// other than the page itself (all refused: the page must need no network) and the same
// error lists. The Python test does the asserting.
//
// puppeteer-core drives the system Chromium through the DevTools protocol; it never
// downloads a browser.
import puppeteer from "puppeteer-core";
import path from "node:path";

const config = JSON.parse(process.argv[2]);
const NAV_TIMEOUT_MS = 30000;

function watch(page) {
  const seen = { consoleErrors: [], pageErrors: [], failedRequests: [] };
  page.on("console", (msg) => {
    if (msg.type() === "error") seen.consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => seen.pageErrors.push(String(err)));
  page.on("requestfailed", (req) =>
    seen.failedRequests.push(`${req.url()} ${req.failure()?.errorText ?? ""}`),
  );
  page.on("response", (res) => {
    if (res.status() >= 400) seen.failedRequests.push(`${res.url()} HTTP ${res.status()}`);
  });
  return seen;
}

async function checkDocsPage(browser, { url, name }) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const seen = watch(page);
  await page.goto(url, { waitUntil: "networkidle0", timeout: NAV_TIMEOUT_MS });
  // Every image must have finished loading (eager images; nothing is lazy here).
  await page.waitForFunction(
    () => Array.from(document.images).every((img) => img.complete),
    { timeout: NAV_TIMEOUT_MS },
  );
  const facts = await page.evaluate(() => ({
    title: document.title,
    h1: (document.querySelector("article h1, h1")?.textContent ?? "").replace("¶", "").trim(),
    images: Array.from(document.images).map((img) => ({
      src: img.currentSrc || img.src,
      alt: img.alt,
      complete: img.complete,
      naturalWidth: img.naturalWidth,
    })),
  }));
  const screenshot = path.join(config.screenshots, `${name}.png`);
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.close();
  return { url, name, screenshot, ...facts, ...seen };
}

async function checkSpeedscope(browser, { url, expect }) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const seen = watch(page);
  // Record every string drawn on a 2D canvas: the flame graph's labels live there.
  await page.evaluateOnNewDocument(() => {
    window.__drawnText = new Set();
    const original = CanvasRenderingContext2D.prototype.fillText;
    CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
      window.__drawnText.add(String(text));
      return original.call(this, text, ...rest);
    };
  });
  await page.goto(url, { waitUntil: "networkidle0", timeout: NAV_TIMEOUT_MS });
  // The app sets the title to "<profile name> - speedscope" once the profile loaded.
  await page.waitForFunction(() => document.title.endsWith(" - speedscope"), {
    timeout: NAV_TIMEOUT_MS,
  });
  // Wait until every expected name is on the page (DOM text or canvas text).
  const found = async () =>
    page.evaluate((names) => {
      const dom = document.body.innerText;
      const drawn = Array.from(window.__drawnText).join("\n");
      return {
        inDom: names.filter((n) => dom.includes(n)),
        onCanvas: names.filter((n) => drawn.includes(n)),
      };
    }, expect);
  let result = await found();
  const deadline = Date.now() + NAV_TIMEOUT_MS;
  while (
    (result.inDom.length < expect.length && result.onCanvas.length < expect.length) &&
    Date.now() < deadline
  ) {
    await new Promise((r) => setTimeout(r, 200));
    result = await found();
  }
  const screenshot = path.join(config.screenshots, "speedscope.png");
  await page.screenshot({ path: screenshot });
  const title = await page.title();
  await page.close();
  return { url, title, screenshot, ...result, ...seen };
}

async function checkFlame(browser, { url, zoom, search }) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const seen = watch(page);
  // The page must be self-contained: refuse (and list) any request but the page itself.
  const requests = [];
  await page.setRequestInterception(true);
  page.on("request", (req) => {
    if (req.url() === url) return req.continue();
    requests.push(req.url());
    return req.abort();
  });
  await page.goto(url, { waitUntil: "load", timeout: NAV_TIMEOUT_MS });
  const frames = () =>
    page.evaluate(() => {
      const graph = document.getElementById("graph").getBoundingClientRect().width;
      return Array.from(document.querySelectorAll("svg.f")).map((f) => ({
        label: f.querySelector("text").textContent,
        samples: Number(f.dataset.n),
        shown: f.style.display !== "none",
        widthShare: f.querySelector("rect").getBoundingClientRect().width / graph,
      }));
    });
  const before = await frames();
  const totals = await page.evaluate(() => ({
    totalText: document.getElementById("total").textContent,
    totalSamples: Number(document.getElementById("total").dataset.samples),
    graphFrames: Number(document.getElementById("graph").dataset.frames),
  }));
  await page.screenshot({ path: path.join(config.screenshots, "flame.png") });
  // Click the frame to zoom to (by its label), then read the frames again.
  await page.evaluate((label) => {
    const f = Array.from(document.querySelectorAll("svg.f")).find(
      (g) => g.querySelector("text").textContent === label,
    );
    f.querySelector("rect").dispatchEvent(new MouseEvent("click", { bubbles: true }));
  }, zoom);
  const zoomed = await frames();
  await page.click("#reset");
  const reset = await frames();
  await page.type("#search", search);
  const matched = await page.evaluate(() => ({
    samples: Number(document.getElementById("matched").dataset.samples),
    text: document.getElementById("matched").textContent,
    highlighted: document.querySelectorAll("svg.f.match").length,
  }));
  await page.close();
  return { url, ...totals, before, zoomed, reset, matched, requests, ...seen };
}

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
  ],
});
try {
  const pages = [];
  for (const spec of config.pages ?? []) pages.push(await checkDocsPage(browser, spec));
  const speedscope = config.speedscope ? await checkSpeedscope(browser, config.speedscope) : null;
  const flame = config.flame ? await checkFlame(browser, config.flame) : null;
  const version = await browser.version();
  process.stdout.write(JSON.stringify({ version, pages, speedscope, flame }));
} finally {
  await browser.close();
}
