// Real-browser test: Segment's analytics.js 2.0 (@segment/analytics-next,
// unmodified: its UMD bundle from node_modules) in headless Debian Chromium,
// sending to the server under test from another origin.
//
//   node tests/browser/analytics-next.mjs <serverBaseUrl> <writeKey>
//
// It serves two pages from an HTTP server of its own (127.0.0.1, a free port,
// so a different origin from the server under test):
//  1. standard.html, analytics.js' default delivery: page, track (anonymous),
//     alias, identify, group, screen, one POST each to /v1/p, /v1/t, /v1/a,
//     /v1/i, /v1/g, /v1/s (each after a CORS preflight: analytics.js sends
//     `Authorization: Basic`), and its telemetry to /v1/m.
//  2. batching.html, the 'batching' delivery strategy: two tracks are buffered,
//     then a click on a link unloads the page, and analytics.js sends the
//     buffer on `pagehide` as one `fetch(…, {keepalive: true})` to /v1/b.
// Nothing comes from the internet: the source's settings are given inline
// (`cdnSettings`), so analytics.js never asks Segment's CDN for them, and its
// telemetry goes to the server under test.
//
// What went over the wire is read from Chromium's own network log
// (--log-net-log), which also sees the preflights and the keepalive request
// sent after the page is gone (DevTools, hence Playwright, sees neither). The
// bodies and the keepalive flag are read from a fetch() wrapper on the page.
//
// Fails (exit 1, the reasons on stderr) on a console error or page error, a
// request to the server that failed, was cancelled or answered non-2xx or
// without CORS headers, a request from the page to any third origin, or a
// message that did not reach the server. Its last stdout line is one JSON
// object: {"sent":[{path,messageId,type,event?,userId?,anonymousId?}],
// "requests":[{method,path,status,…}], "errors":[…]}.

import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HARD_TIMEOUT_MS = 60_000;
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const here = path.dirname(fileURLToPath(import.meta.url));
const bundleDir = path.join(here, 'node_modules/@segment/analytics-next/dist/umd');

const [serverArg, writeKey] = process.argv.slice(2);
if (!serverArg || !writeKey) {
  console.error('usage: node analytics-next.mjs <serverBaseUrl> <writeKey>');
  process.exit(2);
}
const server = new URL(serverArg);
const serverOrigin = server.origin;
const basePath = server.pathname.replace(/\/+$/, '');
// analytics.js posts to `${protocol}://${apiHost}/${type[0]}`.
const apiHost = `${server.host}${basePath}/v1`;
const protocol = server.protocol.replace(':', '');
const v1 = (p) => `${basePath}/v1/${p}`;

const errors = [];
const fail = (msg) => {
  if (errors.includes(msg)) return;
  errors.push(msg);
  console.error(`FAIL: ${msg}`);
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'contrail-ajs-'));
const netLogFile = path.join(tmp, 'netlog.json');
let staticOrigin = '';
let fetchLog = []; // what analytics.js passed to fetch(), from the page
let browser;
let page;
let staticServer;
let finished = false;

async function finish(code) {
  if (finished) return;
  finished = true;
  if (!fetchLog.length && page) {
    // A run that stopped early: still report the bodies sent so far.
    fetchLog = await Promise.race([
      page.evaluate(() => JSON.parse(localStorage.getItem('contrail:fetches') || '[]')).catch(() => []),
      new Promise((r) => setTimeout(() => r([]), 2000)),
    ]);
  }
  await browser?.close().catch(() => {});
  staticServer?.close();
  let requests = [];
  try {
    requests = serverRequests();
  } catch (err) {
    fail(`reading Chromium's network log: ${err.message}`);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  if (errors.length) code = 1;
  if (code !== 0) {
    const more = errors.length > 5 ? ` (and ${errors.length - 5} more above)` : '';
    console.error(`analytics-next browser test FAILED: ${errors.slice(0, 5).join('; ')}${more}`);
  }
  const line = JSON.stringify({ sent: sentMessages(requests), requests, errors });
  process.stdout.write(`${line}\n`, () => process.exit(code));
}

setTimeout(() => {
  fail(`timed out after ${HARD_TIMEOUT_MS / 1000} s`);
  finish(1);
}, HARD_TIMEOUT_MS).unref();

// ------------------------------------------------------------------ pages

function pageHtml(title, cfg) {
  const json = JSON.stringify(cfg).replace(/</g, '\\u003c');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title><link rel="icon" href="data:,">
<script>
// Test instrumentation (analytics.js itself is untouched): note what each
// fetch() was given in localStorage, which outlives the page.
(function () {
  var orig = window.fetch;
  window.fetch = function (input, init) {
    try {
      var log = JSON.parse(localStorage.getItem('contrail:fetches') || '[]');
      log.push({ page: location.pathname, url: String((input && input.url) || input),
        keepalive: !!(init && init.keepalive), visibility: document.visibilityState,
        body: init && typeof init.body === 'string' ? init.body : null });
      localStorage.setItem('contrail:fetches', JSON.stringify(log));
    } catch (e) {}
    return orig.apply(this, arguments);
  };
})();
</script>
<script src="/analytics-next/index.js"></script>
<script>
var CFG = ${json};
window.ajs = AnalyticsNext.AnalyticsBrowser.load(
  { writeKey: CFG.writeKey, cdnURL: location.origin, cdnSettings: CFG.cdnSettings },
  { integrations: { 'Segment.io': CFG.segmentio } }
);
window.ajsReady = window.ajs.then(function () { return true; }, function (e) {
  console.error('analytics.js failed to load: ' + e);
  return false;
});
</script>
</head><body><h1>${title}</h1><a id="leave" href="/bye.html">leave</a></body></html>`;
}

function analyticsConfig(deliveryStrategy, metrics) {
  return {
    writeKey,
    // Init options for the Segment.io destination. apiHost/protocol here also
    // send analytics.js' telemetry (/m) to the server under test.
    segmentio: { apiHost, protocol, deliveryStrategy },
    // What Segment's CDN would answer for /v1/projects/<writeKey>/settings:
    // the Segment.io destination only; no device-mode destinations, remote
    // plugins or middleware, so nothing else is ever downloaded.
    cdnSettings: {
      integrations: { 'Segment.io': { apiKey: writeKey, apiHost, protocol } },
      plan: {},
      metrics,
      remotePlugins: [],
      enabledMiddleware: {},
      legacyVideoPluginsEnabled: false,
    },
  };
}

const pages = {
  // Default delivery; telemetry flushed every second, so /v1/m is exercised.
  '/standard.html': pageHtml(
    'standard delivery',
    analyticsConfig({ strategy: 'standard', config: {} }, { flushTimer: 1000 }),
  ),
  // Batching with a long timeout: nothing leaves before the page is left.
  '/batching.html': pageHtml(
    'batching delivery',
    analyticsConfig(
      { strategy: 'batching', config: { size: 10, timeout: 30_000 } },
      { flushTimer: 30_000 },
    ),
  ),
  '/bye.html': `<!doctype html><html><head><meta charset="utf-8"><title>bye</title>
<link rel="icon" href="data:,"></head><body>bye</body></html>`,
};

function serveStatic(req, res) {
  const url = new URL(req.url, 'http://x');
  if (pages[url.pathname]) {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    return res.end(pages[url.pathname]);
  }
  const m = /^\/analytics-next\/([A-Za-z0-9][A-Za-z0-9._-]*)$/.exec(url.pathname);
  const file = m && path.join(bundleDir, m[1]);
  if (file && fs.existsSync(file)) {
    const type = file.endsWith('.js') ? 'text/javascript' : 'application/json';
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    return fs.createReadStream(file).pipe(res);
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found');
}

// ------------------------------------------- Chromium's network log (NetLog)

// The file is one event a line after the constants; it can be read while
// Chromium still writes it (a partly written last line is skipped).
function readNetLog() {
  const lines = fs.readFileSync(netLogFile, 'utf8').split('\n');
  const head = JSON.parse(lines[0].replace(/,\s*$/, '') + '}');
  const c = head.constants;
  const typeName = Object.fromEntries(Object.entries(c.logEventTypes).map(([k, v]) => [v, k]));
  const errName = Object.fromEntries(Object.entries(c.netError).map(([k, v]) => [v, k]));
  const events = [];
  for (const line of lines.slice(2)) {
    if (!line.startsWith('{')) continue;
    try {
      events.push(JSON.parse(line.replace(/,\s*$/, '')));
    } catch {
      /* partly written */
    }
  }
  return { events, typeName, errName };
}

const header = (list, name) => {
  const pre = `${name.toLowerCase()}:`;
  const h = (list ?? []).find((l) => l.toLowerCase().startsWith(pre));
  return h === undefined ? null : h.slice(pre.length).trim();
};

// Every URL request Chromium made, by NetLog source id, in start order.
function netRequests() {
  const { events, typeName, errName } = readNetLog();
  const bySource = new Map();
  for (const e of events) {
    const t = typeName[e.type];
    const p = e.params ?? {};
    let r = bySource.get(e.source.id);
    if (t === 'REQUEST_ALIVE' && e.phase === 1) {
      r = { url: p.url, ended: false };
      bySource.set(e.source.id, r);
      continue;
    }
    if (!r) continue;
    if (t === 'URL_REQUEST_START_JOB' && e.phase === 1) {
      r.method = p.method;
      r.initiator = p.initiator ?? null;
    } else if (t === 'HTTP_TRANSACTION_SEND_REQUEST_HEADERS') {
      r.requestHeaders = p.headers;
    } else if (t === 'UPLOAD_DATA_STREAM_INIT' && e.phase === 2) {
      r.bodyBytes = p.total_size;
    } else if (t === 'HTTP_TRANSACTION_READ_RESPONSE_HEADERS') {
      r.status = Number(/^HTTP\/\S+ (\d+)/.exec(p.headers?.[0] ?? '')?.[1] ?? NaN);
      r.responseHeaders = p.headers;
    } else if (t === 'CANCELLED') {
      r.cancelled = true;
    } else if (t === 'REQUEST_ALIVE' && e.phase === 2) {
      r.ended = true;
      if (p.net_error) r.error = errName[p.net_error] ?? String(p.net_error);
    }
  }
  return [...bySource.values()];
}

// The requests to the server under test, with what the page's fetch() was
// given (body, keepalive) matched in order to each POST.
function serverRequests() {
  const all = netRequests();
  const unmatched = fetchLog.map((f) => ({ ...f }));
  const out = [];
  for (const r of all) {
    if (!r.url.startsWith(`${serverOrigin}/`)) continue;
    const u = new URL(r.url);
    const entry = {
      method: r.method ?? null,
      path: u.pathname,
      status: Number.isNaN(r.status) ? null : (r.status ?? null),
    };
    if (r.method === 'OPTIONS') {
      entry.preflight = true;
      entry.requestHeaders = header(r.requestHeaders, 'Access-Control-Request-Headers');
      entry.allowOrigin = header(r.responseHeaders, 'Access-Control-Allow-Origin');
      entry.allowMethods = header(r.responseHeaders, 'Access-Control-Allow-Methods');
      entry.allowHeaders = header(r.responseHeaders, 'Access-Control-Allow-Headers');
    } else {
      entry.origin = header(r.requestHeaders, 'Origin');
      entry.contentType = header(r.requestHeaders, 'Content-Type');
      entry.authorization = header(r.requestHeaders, 'Authorization');
      entry.allowOrigin = header(r.responseHeaders, 'Access-Control-Allow-Origin');
      entry.bodyBytes = r.bodyBytes ?? null;
      const i = unmatched.findIndex((f) => f.url === r.url);
      if (i >= 0) {
        const [f] = unmatched.splice(i, 1);
        entry.keepalive = f.keepalive;
        entry.pageVisibility = f.visibility;
        if (f.body != null && Buffer.byteLength(f.body) !== entry.bodyBytes) {
          entry.bodyMismatch = `fetch() was given ${Buffer.byteLength(f.body)} bytes`;
        }
        try {
          entry.body = JSON.parse(f.body);
        } catch {
          entry.body = f.body;
        }
      }
    }
    entry.ended = r.ended;
    if (r.cancelled) entry.cancelled = true;
    if (r.error) entry.error = r.error;
    out.push(entry);
  }
  return out;
}

// Every message the server answered 2xx for, once each, in order.
function sentMessages(requests) {
  const seen = new Set();
  const sent = [];
  const add = (p, m) => {
    if (!m || typeof m !== 'object' || !m.messageId || seen.has(m.messageId)) return;
    seen.add(m.messageId);
    const item = { path: p, messageId: m.messageId, type: m.type };
    if (m.event !== undefined) item.event = m.event;
    if (m.userId != null) item.userId = m.userId;
    if (m.anonymousId != null) item.anonymousId = m.anonymousId;
    if (m.previousId != null) item.previousId = m.previousId;
    if (m.groupId != null) item.groupId = m.groupId;
    sent.push(item);
  };
  for (const r of requests) {
    if (r.method !== 'POST' || !r.body || !(r.status >= 200 && r.status < 300)) continue;
    if (r.path === v1('b')) (r.body.batch ?? []).forEach((m) => add(r.path, m));
    else if (/\/v1\/[ptisga]$/.test(r.path)) add(r.path, r.body);
  }
  return sent;
}

async function waitFor(what, cond, ms = 10_000) {
  const until = Date.now() + ms;
  for (;;) {
    if (cond()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const within = (ms, what, promise) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what} took over ${ms / 1000} s`)), ms).unref()),
  ]);
const serverNet = () => netRequests().filter((r) => r.url.startsWith(`${serverOrigin}/`));
const answered = (p) => serverNet().some((r) => new URL(r.url).pathname === p && r.ended);
const settled = () =>
  waitFor('requests to the server to finish', () => serverNet().every((r) => r.ended));

// ------------------------------------------------------------------ the run

async function main() {
  staticServer = http.createServer(serveStatic);
  await new Promise((r) => staticServer.listen(0, '127.0.0.1', r));
  staticOrigin = `http://127.0.0.1:${staticServer.address().port}`;
  if (staticOrigin === serverOrigin) throw new Error('the static origin is the server origin');

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--log-net-log=${netLogFile}`,
      '--net-log-capture-mode=IncludeSensitive',
    ],
  });
  const context = await browser.newContext(); // a fresh profile
  page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') fail(`console error on ${page.url()}: ${msg.text().split('\n')[0]}`);
  });
  page.on('pageerror', (err) => fail(`page error on ${page.url()}: ${err.message}`));

  // 1. Default delivery: one request per call; anonymous first, then identified.
  await page.goto(`${staticOrigin}/standard.html`);
  if (!(await page.evaluate(() => window.ajsReady))) throw new Error('analytics.js did not load');
  const standard = await within(20_000, 'the analytics.js calls (is the server answering?)', page.evaluate(async () => {
    const a = window.ajs;
    const ev = (ctx) => ({ type: ctx.event.type, messageId: ctx.event.messageId, event: ctx.event.event });
    const out = [];
    out.push(ev(await a.page()));
    out.push(ev(await a.track('Signed Up', { plan: 'pro' })));
    // Alias the anonymous visitor to the new user id, the documented use.
    // (After identify(), analytics-next 1.84 overwrites an alias' userId
    // with the current user's id.)
    out.push(ev(await a.alias('user-1')));
    out.push(ev(await a.identify('user-1', { email: 'ada@example.com' })));
    out.push(ev(await a.group('org-1', { name: 'Analytical Engines' })));
    out.push(ev(await a.screen('Home', 'Dashboard')));
    return out;
  }));
  await waitFor('analytics.js telemetry to /v1/m', () => answered(v1('m')));
  await settled();

  // 2. Batching delivery: buffered tracks, then the user leaves the page; the
  //    buffer goes out on pagehide with fetch keepalive.
  await page.goto(`${staticOrigin}/batching.html`);
  if (!(await page.evaluate(() => window.ajsReady))) throw new Error('analytics.js did not load');
  const batched = await page.evaluate(async () => {
    const a = window.ajs;
    const ev = (ctx) => ({ type: ctx.event.type, messageId: ctx.event.messageId, event: ctx.event.event });
    const out = [ev(await a.track('Checkout Started', { plan: 'pro' }))];
    out.push(ev(await a.track('Left Page', { via: 'link' })));
    return out;
  });
  await new Promise((r) => setTimeout(r, 300));
  if (serverNet().some((r) => new URL(r.url).pathname === v1('b'))) {
    fail('the batch left before the page did: the unload path was not exercised');
  }
  await Promise.all([page.waitForURL('**/bye.html'), page.click('#leave')]);
  await waitFor('the keepalive batch to /v1/b', () => answered(v1('b')));
  await settled();
  fetchLog = await page.evaluate(() => JSON.parse(localStorage.getItem('contrail:fetches') || '[]'));

  // ---- checks
  const requests = serverRequests();
  for (const r of netRequests()) {
    if (r.initiator !== staticOrigin) continue;
    const origin = new URL(r.url).origin;
    if (origin !== staticOrigin && origin !== serverOrigin) fail(`the page requested a third origin: ${r.url}`);
  }
  for (const r of requests) {
    const what = `${r.method} ${r.path}`;
    if (r.error) fail(`${what} failed: ${r.error}`);
    else if (r.cancelled) fail(`${what} was cancelled (CORS check failed or aborted)`);
    else if (r.status == null) fail(`${what} got no answer`);
    else if (r.status < 200 || r.status > 299) fail(`${what} answered ${r.status}`);
    else if (r.allowOrigin !== staticOrigin && r.allowOrigin !== '*') {
      fail(`${what}: Access-Control-Allow-Origin is ${JSON.stringify(r.allowOrigin)}, not ${staticOrigin}`);
    } else if (r.bodyMismatch) fail(`${what}: ${r.bodyBytes} bytes on the wire, but ${r.bodyMismatch}`);
    if (r.method === 'POST' && r.path !== v1('m')) {
      if (!r.body || typeof r.body !== 'object') fail(`${what}: no JSON body recorded`);
      else if (r.body.writeKey !== writeKey) fail(`${what}: body writeKey is ${JSON.stringify(r.body.writeKey)}`);
      else if (!r.body.sentAt) fail(`${what}: no sentAt`);
    }
  }
  const sent = sentMessages(requests);
  const byId = new Map(sent.map((s) => [s.messageId, s]));
  const describe = (e) => `${e.type}${e.event ? ` '${e.event}'` : ''} (${e.messageId})`;
  const expectPath = { page: 'p', track: 't', identify: 'i', group: 'g', alias: 'a', screen: 's' };
  for (const e of standard) {
    const s = byId.get(e.messageId);
    if (!s) fail(`${describe(e)} got no 2xx answer from the server`);
    else if (s.path !== v1(expectPath[e.type])) fail(`${e.type} went to ${s.path}, not ${v1(expectPath[e.type])}`);
  }
  for (const e of batched) {
    const s = byId.get(e.messageId);
    if (!s) fail(`${describe(e)} got no 2xx answer from the server`);
    else if (s.path !== v1('b')) fail(`batched ${e.event} went to ${s.path}, not ${v1('b')}`);
  }
  const [pg, tr, al, id] = standard.map((e) => byId.get(e.messageId));
  const anon = pg?.anonymousId;
  if (pg && tr && (!anon || pg.userId || tr.userId || tr.anonymousId !== anon)) {
    fail('page() and track() are not anonymous');
  }
  if (al && !(al.userId === 'user-1' && al.previousId === anon)) fail('alias() is not user-1 ← the anonymousId');
  if (id && !(id.userId === 'user-1' && id.anonymousId === anon)) {
    fail('identify() does not carry userId user-1 and the earlier anonymousId');
  }
  const batch = requests.find((r) => r.method === 'POST' && r.path === v1('b'));
  if (batch && batch.keepalive !== true) fail('the batch sent on unload was not a keepalive fetch');
  if (!requests.some((r) => r.method === 'POST' && r.path === v1('m'))) fail('no telemetry POST to /v1/m');
  if (sent.length !== standard.length + batched.length) {
    fail(`expected ${standard.length + batched.length} messages at the server, found ${sent.length}`);
  }
}

main().then(
  () => finish(0),
  (err) => {
    fail(err?.message ?? String(err));
    finish(1);
  },
);
