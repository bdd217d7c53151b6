// A long-lived browser driver for the Python tests: one JSON request per stdin line, one JSON
// answer per stdout line ({id, ok, result} or {id, ok: false, error}). Drives Debian's Chromium
// (CHROMIUM, default /usr/bin/chromium) headless, with fake camera and microphone.
//
// Requests: {id, op: "open", url} -> {page}; {op: "fill", page, selector, value}; {op: "click", page,
// selector}; {op: "eval", page, expression} (a JS expression, awaited); {op: "screenshot", page,
// path}; {op: "logs", page}; {op: "close", page}; {op: "quit"}.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  // Screen share without a picker: the fake UI picks the first screen.
  '--auto-select-desktop-capture-source=Entire screen',
];

// Extra Chromium flags, a JSON array in CHROMIUM_ARGS: e.g. treating a page served from a network
// namespace's host address (not localhost) as a secure origin, so getUserMedia works there.
const EXTRA_ARGS = process.env.CHROMIUM_ARGS ? JSON.parse(process.env.CHROMIUM_ARGS) : [];

const userDataDir = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [...ARGS, ...EXTRA_ARGS],
  viewport: { width: 1280, height: 800 },
  permissions: ['camera', 'microphone'],
});
// One persistent context holds every page; each page is its own participant (tokens are per page).
const pages = new Map();
const logs = new Map();
let nextPage = 1;

async function handle(req) {
  switch (req.op) {
    case 'open': {
      const page = await context.newPage();
      const id = `p${nextPage++}`;
      const lines = [];
      page.on('console', (msg) => lines.push(`${msg.type()}: ${msg.text()}`));
      page.on('pageerror', (err) => lines.push(`pageerror: ${err.message}`));
      pages.set(id, page);
      logs.set(id, lines);
      await page.goto(req.url, { waitUntil: 'load' });
      return { page: id };
    }
    case 'fill':
      await page(req).fill(req.selector, req.value);
      return null;
    case 'click':
      await page(req).click(req.selector);
      return null;
    case 'eval':
      return await page(req).evaluate(req.expression);
    case 'screenshot':
      await page(req).screenshot({ path: req.path, fullPage: true });
      return { path: req.path };
    case 'logs':
      return logs.get(req.page) ?? [];
    case 'close':
      await page(req).close();
      pages.delete(req.page);
      return null;
    case 'quit':
      return null;
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

function page(req) {
  const p = pages.get(req.page);
  if (!p) throw new Error(`no page ${req.page}`);
  return p;
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function shutdown() {
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

reply({ id: 0, ok: true, result: { ready: true, version: context.browser()?.version() ?? '' } });
const rl = createInterface({ input: process.stdin });
// Requests are answered one at a time, in order.
for await (const line of rl) {
  if (!line.trim()) continue;
  let req;
  try {
    req = JSON.parse(line);
  } catch (err) {
    reply({ id: null, ok: false, error: `bad request: ${err}` });
    continue;
  }
  try {
    const result = await handle(req);
    reply({ id: req.id, ok: true, result: result ?? null });
  } catch (err) {
    reply({ id: req.id, ok: false, error: String(err?.stack ?? err) });
  }
  if (req.op === 'quit') break;
}
await shutdown();
process.exit(0);
