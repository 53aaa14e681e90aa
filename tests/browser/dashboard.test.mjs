// Real-browser tests of the dashboard that `contrail serve` embeds at `/`,
// in headless Debian Chromium driven by playwright-core.
//
//   CONTRAIL_BIN=target/debug/contrail ARTIFACTS=/tmp/dash-shots \
//     node --test tests/browser/dashboard.test.mjs
//
// One server (a temporary data directory, a fixed secret, so the keys are
// known and survive a restart) is seeded through the ingest API with a small
// dataset around now; one Chromium then signs in and reads every page. Each
// number the page shows is compared with the API's answer to the same query,
// asked by this file (docs/dashboard.md: the routes, the overview's queries
// and the data-testid / data-value contract). Nothing is hard-coded except
// what was sent. Waiting is polling with a deadline, never a sleep.
// Screenshots of every page at 1280×800 and 375×800 go to $ARTIFACTS.
//
// Optional: CHROMIUM_PATH (default /usr/bin/chromium), and
// COMPACT_EVERY_SECS (the server's compaction period; default 3, so both
// the raw batches and the Delta table are read during the run; 0 disables).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import {
  FUNNEL,
  apiClient,
  freePort,
  mintKey,
  overviewWindow,
  seedDataset,
  startServe,
  time,
  until,
  utcDate,
} from './dashboard-harness.mjs';

const BIN = process.env.CONTRAIL_BIN;
const ARTIFACTS = path.resolve(process.env.ARTIFACTS || path.join(os.tmpdir(), 'contrail-dashboard-artifacts'));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const COMPACT_EVERY_SECS = process.env.COMPACT_EVERY_SECS ?? '3';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 800 };
const TEST = { timeout: 90_000 }; // per test; the suite has 10 minutes

const tag = crypto.randomBytes(4).toString('hex');
const tid = (id) => `[data-testid="${id}"]`;
const enc = (value) => encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value));

let server; // the running `contrail serve`
let browser;
let dataDir;
let seed;
const contexts = [];
const api = apiClient(() => server.base);
const Q = () => server.keys.query;

// ------------------------------------------------------------------ set-up

before(async () => {
  assert.ok(BIN, 'set CONTRAIL_BIN to the contrail binary');
  assert.ok(fs.existsSync(BIN), `CONTRAIL_BIN ${BIN} does not exist`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup-browser`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'contrail-dashboard-'));
  server = await startServe({
    bin: BIN,
    data: path.join(dataDir, 'data'),
    port: await freePort(),
    env: { CONTRAIL_COMPACT_EVERY_SECS: COMPACT_EVERY_SECS },
    logFile: path.join(ARTIFACTS, 'serve.log'),
  });
  for (const k of ['write', 'query', 'admin']) assert.ok(server.keys[k], `no ${k} key in the banner:\n${server.stdout}`);

  seed = seedDataset(Date.now(), tag);
  await api.ingest(server.keys.write, seed.batch);
  await until(
    `all ${seed.total} seeded events queryable`,
    async () => {
      const { rows } = await api.sql(Q(), 'SELECT count(*) AS n FROM events');
      assert.equal(rows[0].n, seed.total);
    },
    { timeout: 20_000, interval: 200 },
  );

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
    ],
  });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop().catch(() => {});
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ pages

/**
 * A new browser context (a fresh profile) and page, signed in with `key`
 * (put in localStorage before the app starts, as sign-in leaves it) unless
 * `key` is null, watching for console errors, page errors and HTTP errors.
 */
async function openPage(route, { viewport = DESKTOP, key = Q(), project = null } = {}) {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  if (key) {
    await context.addInitScript(
      ([k, p]) => {
        try {
          localStorage.setItem('contrail.key', k);
          if (p) localStorage.setItem('contrail.project', p);
        } catch {
          /* about:blank has no storage */
        }
      },
      [key, project],
    );
  }
  const page = await context.newPage();
  const problems = watch(page);
  if (route !== null) await page.goto(`${server.base}/#${route}`);
  return { page, context, problems };
}

function watch(page) {
  const problems = { console: [], page: [], http: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') problems.console.push(m.text());
  });
  page.on('pageerror', (e) => problems.page.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.http.push({ status: r.status(), what: `${r.request().method()} ${r.url()}` });
  });
  return problems;
}

/**
 * No page error, and no console error or HTTP error except the statuses the
 * test provoked on purpose (Chromium logs each refused fetch as a console
 * error "Failed to load resource: … status of 401").
 */
function assertClean(problems, { allow = [] } = {}) {
  assert.deepEqual(problems.page, [], 'uncaught errors in the page');
  const http = problems.http.filter((h) => !allow.includes(h.status));
  assert.deepEqual(http, [], 'API requests that failed');
  const expected = (text) => allow.some((s) => text.includes(`status of ${s}`));
  assert.deepEqual(
    problems.console.filter((t) => !expected(t)),
    [],
    'console errors',
  );
}

/** The number in a data-value (null for an absent or empty one). */
const num = (v) => (v === null || v === undefined || v === '' ? null : Number(v));

/** Sets an input, textarea or select by value (or by an option's label). */
async function setField(loc, value) {
  const info = await loc.evaluate((el) => ({
    tag: el.tagName,
    type: el.type ?? null,
    options: el.tagName === 'SELECT' ? [...el.options].map((o) => ({ value: o.value, label: o.label })) : null,
  }));
  if (info.tag === 'SELECT') {
    const hit =
      info.options.find((o) => o.value === String(value)) ?? info.options.find((o) => o.label === String(value));
    assert.ok(hit, `no option ${JSON.stringify(value)} in the select: ${JSON.stringify(info.options)}`);
    await loc.selectOption(hit.value);
    return;
  }
  let text = String(value);
  if (info.type === 'date') text = text.slice(0, 10);
  if (info.type === 'datetime-local') text = text.slice(0, 16);
  await loc.fill(text);
  await loc.blur(); // a change handler fires on blur, as when a person tabs away
}

/** The page's current `q=` (docs/dashboard.md: the whole query is in the URL). */
async function urlQuery(page) {
  return page.evaluate(() => {
    const query = location.hash.split('?')[1] ?? '';
    return new URLSearchParams(query).get('q');
  });
}
async function urlJson(page) {
  const q = await urlQuery(page);
  assert.ok(q, `no q= in the URL ${page.url()}`);
  return JSON.parse(q);
}

async function clickIfPresent(page, testid) {
  const loc = page.locator(tid(testid));
  if ((await loc.count()) > 0) await loc.first().click();
}

async function screenshot(page, name) {
  // Two frames: the last render (charts draw on the next frame) is on screen.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

// ------------------------------------------------------------------ queries used by several tests

const now = Date.now();
const trendsQuery = () => ({
  series: [
    { event: FUNNEL[0], math: 'total' },
    { event: FUNNEL[1], math: 'unique_users' },
  ],
  interval: 'day',
  from: utcDate(now - 6 * time.DAY),
  to: utcDate(now + time.DAY),
  timezone: 'UTC',
});
const funnelQuery = () => ({
  steps: FUNNEL.map((event) => ({ event })),
  from: utcDate(now - 3 * time.DAY),
  to: utcDate(now + time.DAY),
  timezone: 'UTC',
});
const retentionQuery = (periods = 6) => ({
  start_event: { event: FUNNEL[1] },
  return_event: null,
  period: 'week',
  periods,
  from: utcDate(now - 42 * time.DAY),
  to: utcDate(now + time.DAY),
  timezone: 'UTC',
});
const sqlQuery = 'SELECT event, count(*) AS n, count(DISTINCT distinct_id) AS ids FROM events GROUP BY event ORDER BY n DESC, event';

// ------------------------------------------------------------------ readers

function readTrends(page) {
  return page.$$eval(tid('trends-row'), (rows) =>
    rows.map((r) => ({
      series: r.getAttribute('data-series'),
      breakdown: r.getAttribute('data-breakdown') || null,
      cells: [...r.querySelectorAll('[data-testid="trends-cell"]')].map((c) => [
        c.getAttribute('data-bucket'),
        c.getAttribute('data-value'),
      ]),
      aggregated: r.querySelector('[data-testid="trends-aggregated"]')?.getAttribute('data-value') ?? null,
    })),
  );
}
const trendsPage = (rows) =>
  rows.map((r) => ({
    series: Number(r.series),
    breakdown: r.breakdown,
    data: r.cells.map(([b, v]) => [Number(b), num(v)]),
    aggregated: num(r.aggregated),
  }));
const trendsApi = (answer) =>
  answer.series.map((s) => ({
    series: s.index,
    breakdown: s.breakdown_value === undefined || s.breakdown_value === null ? null : String(s.breakdown_value),
    data: s.data.map((v, i) => [i, v]),
    aggregated: s.aggregated,
  }));

async function assertTrendsMatch(page, body, what) {
  const answer = await api.trends(Q(), body);
  await until(what, async () => assert.deepEqual(trendsPage(await readTrends(page)), trendsApi(answer)), {
    timeout: 10_000,
  });
}

function readFunnel(page) {
  return page.$$eval(tid('funnel-step'), (steps) =>
    steps.map((s) => ({
      index: s.getAttribute('data-index'),
      count: s.getAttribute('data-count'),
      first: s.getAttribute('data-conversion-from-first'),
      previous: s.getAttribute('data-conversion-from-previous'),
      median: s.getAttribute('data-median-seconds'),
    })),
  );
}
const funnelPage = (steps) =>
  steps.map((s) => ({
    index: Number(s.index),
    count: num(s.count),
    first: num(s.first),
    previous: num(s.previous),
    median: num(s.median),
  }));
const funnelApi = (answer) =>
  answer.steps.map((s) => ({
    index: s.index,
    count: s.count,
    first: s.conversion_from_first,
    previous: s.conversion_from_previous,
    median: s.median_seconds_to_convert ?? null,
  }));

function readRetention(page) {
  return page.$$eval(tid('retention-cohort'), (rows) =>
    rows.map((r) => ({
      start: r.getAttribute('data-start'),
      size: r.getAttribute('data-size'),
      cells: [...r.querySelectorAll('[data-testid="retention-cell"]')].map((c) => [
        c.getAttribute('data-k'),
        c.getAttribute('data-value'),
      ]),
    })),
  );
}
/**
 * Cohorts as {start (ms), size, counts by k}. The page may leave out the
 * k = 0 cell (its size is shown as data-size); when it shows it, it must be
 * the size, like counts[0].
 */
const retentionPage = (rows) =>
  rows.map((r) => {
    const counts = Object.fromEntries(r.cells.map(([k, v]) => [Number(k), num(v)]));
    if (!(0 in counts)) counts[0] = num(r.size);
    return { start: Date.parse(r.start), size: num(r.size), counts };
  });
const retentionApi = (answer) =>
  answer.cohorts.map((c) => ({
    start: Date.parse(c.start),
    size: c.size,
    counts: Object.fromEntries(c.counts.map((v, k) => [k, v])),
  }));

function readTopList(page, column) {
  return page.$$eval(`${tid(`top-${column}`)} ${tid('top-row')}`, (rows) =>
    rows.map((r) => [r.getAttribute('data-key'), r.getAttribute('data-value')]),
  );
}

/** The SQL console's result table: header names and cell texts. */
function readSqlTable(page) {
  return page.$eval(tid('sql-results'), (root) => {
    const table = root.querySelector('table');
    if (!table) return null;
    const head = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
    const body = [...table.querySelectorAll('tbody tr')].map((tr) =>
      [...tr.querySelectorAll('td')].map((td) => td.textContent.trim()),
    );
    return { head, body };
  });
}
/** How a JSON value may read as text in a cell: numbers with or without grouping. */
function cellMatches(text, value) {
  if (value === null) return ['', 'null', 'NULL', '∅', '—'].includes(text);
  if (typeof value === 'number') return Number(text.replace(/[,\u202f\u00a0 ]/g, '')) === value;
  if (typeof value === 'object') return text === JSON.stringify(value);
  return text === String(value);
}

const personIdOf = (href) => {
  const hash = new URL(href, 'http://x/').hash;
  assert.ok(hash.startsWith('#/persons?'), `a person link goes to #/persons?id=…, not ${href}`);
  return new URLSearchParams(hash.split('?')[1]).get('id');
};

// ================================================================== the tests

describe('the dashboard served by contrail serve', { timeout: 10 * 60_000 }, () => {
  test('GET / serves the built dashboard and /openapi.json lists the new endpoints', TEST, async () => {
    const r = await fetch(`${server.base}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/html/);
    const html = await r.text();
    assert.match(html, /<div id="app"/, 'the app root');
    // The placeholder page of a build without the front end has no script.
    const scripts = [...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]);
    assert.ok(scripts.length > 0, `no script in / (the placeholder page?):\n${html.slice(0, 500)}`);
    for (const src of scripts) {
      assert.ok(!src.includes('/src/'), `${src}: the unbuilt index.html, not Vite's build`);
      const js = await fetch(new URL(src, `${server.base}/`));
      assert.equal(js.status, 200, `${src}`);
      assert.match(js.headers.get('content-type') ?? '', /javascript/, `${src} content type`);
    }
    const doc = await api.ok('GET', '/openapi.json');
    for (const p of ['/v1/projects', '/v1/insights', '/v1/insights/{id}', '/v1/dashboards', '/v1/dashboards/{id}', '/v1/funnels/persons']) {
      assert.ok(doc.paths?.[p], `/openapi.json documents ${p} (has ${Object.keys(doc.paths ?? {}).join(', ')})`);
    }
  });

  test('the banner link signs in: the key is kept, the fragment is gone, the overview shows', TEST, async () => {
    assert.ok(server.dashboardLink, `no "dashboard" line in the banner:\n${server.stdout}`);
    assert.equal(server.dashboardLink, `${server.base}/#key=${Q()}`);
    const { page, problems } = await openPage(null, { key: null });
    await page.goto(server.dashboardLink);
    await page.locator(tid('overview-events')).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => localStorage.getItem('contrail.key')), Q());
    const url = page.url();
    assert.ok(!url.includes('key='), `the key is still in the address bar: ${url}`);
    assert.ok(!url.includes(Q()), `the key is still in the address bar: ${url}`);
    // Another tab of the same browser profile is signed in by localStorage alone.
    const again = await page.context().newPage();
    const againProblems = watch(again);
    await again.goto(`${server.base}/`);
    await again.locator(tid('overview-events')).waitFor({ timeout: 10_000 });
    assertClean(problems);
    assertClean(againProblems);
  });

  test('a refused key shows the API message in the sign-in form, from the link and from the form', TEST, async () => {
    const refused = async (key) => {
      const r = await api.call('GET', '/v1/projects', { key });
      assert.ok(r.status === 401 || r.status === 403, `GET /v1/projects with ${key} answered ${r.status}`);
      return r.body.error.message;
    };
    const { page, problems } = await openPage(null, { key: null });
    await page.goto(`${server.base}/#key=cq_bad`);
    const error = page.locator(tid('signin-error'));
    await error.waitFor({ timeout: 10_000 });
    const message = await refused('cq_bad');
    await until('the sign-in error shows the API message', async () =>
      assert.ok((await error.textContent()).includes(message), `"${await error.textContent()}" lacks "${message}"`),
    );
    await page.locator(tid('signin-form')).waitFor();
    assert.ok(!page.url().includes('cq_bad'), `the refused key stays in the address bar: ${page.url()}`);
    await screenshot(page, 'signin-error-desktop');

    // The form: a write key (403), then a forged query key (401), then the right one.
    for (const wrong of [server.keys.write, `cq_demo_${'A'.repeat(22)}`]) {
      await setField(page.locator(tid('signin-key')), wrong);
      await page.locator(tid('signin-submit')).click();
      const expected = await refused(wrong);
      await until(`the sign-in error for ${wrong.slice(0, 8)}… shows the API message`, async () => {
        const text = (await error.textContent()) ?? '';
        assert.ok(text.includes(expected), `"${text}" lacks "${expected}"`);
      });
    }
    await setField(page.locator(tid('signin-key')), Q());
    await page.locator(tid('signin-submit')).click();
    await page.locator(tid('overview-events')).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate(() => localStorage.getItem('contrail.key')), Q());
    assertClean(problems, { allow: [401, 403] });
  });

  test('the admin token signs in with a project picked from GET /v1/projects, and sign-out forgets it', TEST, async () => {
    const { page, problems } = await openPage('/', { key: null });
    await page.locator(tid('signin-form')).waitFor({ timeout: 10_000 });
    await setField(page.locator(tid('signin-key')), server.keys.admin);
    const project = page.locator(tid('signin-project'));
    await project.waitFor({ timeout: 5_000 });
    // The projects offered are GET /v1/projects' (a select, or an input's datalist).
    const listed = (await api.ok('GET', '/v1/projects', server.keys.admin)).projects.map((p) => p.name);
    assert.ok(listed.includes('demo'), `GET /v1/projects with the admin token: ${listed}`);
    await until('the project picker offers GET /v1/projects', async () => {
      const offered = await project.evaluate((el) =>
        [...((el.tagName === 'SELECT' ? el.options : el.list?.options) ?? [])].map((o) => o.value).filter(Boolean),
      );
      assert.deepEqual(offered.sort(), [...listed].sort());
    });
    await setField(project, 'demo');
    await page.locator(tid('signin-submit')).click();
    await page.locator(tid('overview-events')).waitFor({ timeout: 10_000 });
    const stored = await page.evaluate(() => [localStorage.getItem('contrail.key'), localStorage.getItem('contrail.project')]);
    assert.deepEqual(stored, [server.keys.admin, 'demo']);
    await page.locator(tid('signout')).click();
    await page.locator(tid('signin-form')).waitFor({ timeout: 5_000 });
    assert.equal(await page.evaluate(() => localStorage.getItem('contrail.key')), null, 'signed out');
    assertClean(problems);
  });

  test('every page loads without errors, at 1280 and 375 px wide (screenshots in $ARTIFACTS)', TEST, async (t) => {
    // Something on the insights and dashboard pages (the API is tested below).
    const insight = await api.call('POST', '/v1/insights', {
      key: Q(),
      body: { name: 'Pricing views and sign-ups', kind: 'trends', query: trendsQuery() },
    });
    assert.equal(insight.status, 201, insight.text);
    const board = await api.call('POST', '/v1/dashboards', {
      key: Q(),
      body: { name: 'Growth', insights: [insight.body.id] },
    });
    assert.equal(board.status, 201, board.text);
    const pages = [
      ['signin', '/', tid('signin-form'), { key: null }],
      ['overview', '/', `${tid('overview-events')}[data-value]:not([data-value=""])`],
      ['trends', `/trends?q=${enc(trendsQuery())}`, tid('trends-row')],
      ['funnels', `/funnels?q=${enc(funnelQuery())}`, tid('funnel-step')],
      ['retention', `/retention?q=${enc(retentionQuery())}`, tid('retention-cohort')],
      ['persons', `/persons?id=${enc(seed.searchPerson)}`, tid('person-event')],
      ['sql', `/sql?q=${enc(sqlQuery)}`, tid('sql-editor')],
      ['insights', '/insights', tid('insight-item')],
      ['dashboards', '/dashboards', tid('dashboard-item')],
      ['dashboard', `/dashboards/${board.body.id}`, `${tid('dashboard-card')}[data-state="ready"]`],
    ];
    const failures = [];
    for (const [width, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
      for (const [name, route, ready, options] of pages) {
        const { page, context, problems } = await openPage(route, { viewport, ...options });
        try {
          await page.locator(ready).first().waitFor({ timeout: 15_000 });
          if (name === 'sql') {
            await page.locator(tid('sql-run')).click();
            await page.locator(`${tid('sql-results')} td`).first().waitFor({ timeout: 10_000 });
          }
          if (name === 'overview') await page.locator(tid('top-row')).first().waitFor({ timeout: 10_000 });
          assert.equal(await page.locator(tid('error-banner')).count(), 0, 'an error banner is shown');
          assertClean(problems);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          if (overflow > 1) t.diagnostic(`${name} at ${viewport.width} px scrolls sideways by ${overflow} px`);
        } catch (err) {
          failures.push(`${name} (${width}): ${err.message.split('\n').slice(0, 6).join(' | ')}`);
        } finally {
          await screenshot(page, `${name}-${width}`).catch((e) => failures.push(`${name} screenshot: ${e.message}`));
          await context.close();
        }
      }
    }
    assert.deepEqual(failures, []);
  });

  test('the navigation opens every page', TEST, async () => {
    const { page, problems } = await openPage('/');
    await page.locator(tid('overview-events')).waitFor({ timeout: 10_000 });
    const navs = [
      ['nav-trends', '#/trends', 'trends-run'],
      ['nav-funnels', '#/funnels', 'funnel-run'],
      ['nav-retention', '#/retention', 'retention-run'],
      ['nav-persons', '#/persons', 'persons-search'],
      ['nav-sql', '#/sql', 'sql-editor'],
      ['nav-insights', '#/insights', 'insight-item'],
      ['nav-dashboards', '#/dashboards', 'dashboard-name'],
      ['nav-overview', '#/', 'overview-events'],
    ];
    for (const [nav, hash, shown] of navs) {
      // The phone layout may fold the navigation away; this is the desktop one.
      await page.locator(tid(nav)).click();
      await page.locator(tid(shown)).first().waitFor({ timeout: 10_000 });
      const at = await page.evaluate(() => location.hash);
      assert.ok(at === hash || at.startsWith(`${hash}?`) || (hash === '#/' && at === ''), `${nav} went to ${at}`);
    }
    assertClean(problems);
  });

  test('the overview numbers and top lists are the API answers to the documented queries', TEST, async () => {
    const { page, problems } = await openPage('/');
    const columns = ['url', 'country', 'browser', 'os', 'device'];
    await until(
      'the overview equals POST /v1/trends and /v1/sql for the last 24 h',
      async () => {
        const w = overviewWindow(Date.now());
        const body = (from, to) => ({
          series: [{ math: 'total' }, { math: 'unique_users' }],
          interval: 'hour',
          from,
          to,
        });
        const current = await api.trends(Q(), body(w.from, w.to));
        const previous = await api.trends(Q(), body(w.prevFrom, w.prevTo));
        const [events, persons] = current.series.map((s) => s.aggregated);
        const [prevEvents, prevPersons] = previous.series.map((s) => s.aggregated);
        // The seed puts events in both periods, so every number below is tested.
        assert.ok(events > 0 && prevEvents > 0, `seeded data in both periods: ${events}, ${prevEvents}`);
        const value = (id) => page.locator(tid(id)).getAttribute('data-value', { timeout: 1_000 });
        assert.equal(num(await value('overview-events')), events, 'overview-events');
        assert.equal(num(await value('overview-persons')), persons, 'overview-persons');
        const change = (cur, prev) => (prev === 0 ? null : cur / prev - 1);
        for (const [id, expected] of [
          ['overview-events-change', change(events, prevEvents)],
          ['overview-persons-change', change(persons, prevPersons)],
        ]) {
          const got = num(await value(id));
          if (expected === null) assert.equal(got, null, id);
          else assert.ok(got !== null && Math.abs(got - expected) < 1e-9, `${id}: ${got}, expected ${expected}`);
        }
        for (const column of columns) {
          const sql =
            `SELECT ${column} AS key, count(*) AS n FROM events ` +
            `WHERE timestamp >= '${w.from}' AND timestamp < '${w.to}' AND ${column} IS NOT NULL ` +
            `GROUP BY ${column} ORDER BY n DESC, key LIMIT 10`;
          const { rows } = await api.sql(Q(), sql);
          // Country is set only at the edge: serve has none to list.
          if (column !== 'country') assert.ok(rows.length > 0, `${column}: the seed has rows`);
          const shown = (await readTopList(page, column)).map(([k, v]) => [k, num(v)]);
          assert.deepEqual(shown, rows.map((r) => [r.key, r.n]), `top-${column}`);
        }
      },
      { timeout: 15_000, interval: 250 },
    );
    assert.ok(await page.locator(tid('overview-hourly')).isVisible(), 'the hourly chart');
    assertClean(problems);
  });

  test('the live feed shows a new event within 5 s', TEST, async () => {
    const { page, problems } = await openPage(null);
    const stream = page.waitForResponse((r) => r.url().includes('/v1/events/live'), { timeout: 15_000 });
    await page.goto(`${server.base}/#/`);
    const response = await stream; // open: every event received from now on is the feed's
    assert.equal(response.status(), 200);
    await page.locator(tid('live-feed')).waitFor();
    const name = `Live Check ${tag}`;
    const who = `live-${tag}`;
    await api.ingest(server.keys.write, [
      { type: 'track', event: name, userId: who, messageId: `live-${tag}`, timestamp: new Date().toISOString() },
    ]);
    const item = page.locator(`${tid('live-feed')} ${tid('live-item')}[data-event="${name}"]`);
    await item.waitFor({ timeout: 5_000 });
    assert.equal(await item.count(), 1, 'shown once');
    assert.equal(await item.getAttribute('data-distinct-id'), who);
    assertClean(problems);
  });

  test('trends from the URL and from the builder equal POST /v1/trends', TEST, async () => {
    const q = trendsQuery();
    const { page, problems } = await openPage(`/trends?q=${enc(q)}`);
    await assertTrendsMatch(page, q, 'the trends table from the URL equals POST /v1/trends');
    const firstRows = await readTrends(page);
    assert.equal(firstRows.length, 2, 'one row per series');
    assert.ok(await page.locator(tid('trends-chart')).isVisible(), 'the chart');

    // Hourly: pick the interval, run, compare; the URL carries the new query.
    const hourly = { ...q, interval: 'hour', from: utcDate(now - 2 * time.DAY) };
    await setField(page.locator(tid('trends-from')), hourly.from);
    await setField(page.locator(tid('trends-interval')), 'hour');
    await page.locator(tid('trends-run')).click();
    await until('the URL holds the hourly query', async () => {
      const u = await urlJson(page);
      assert.equal(u.interval, 'hour');
      assert.ok(String(u.from).startsWith(hourly.from), `from ${u.from}`);
      assert.deepEqual(u.series.map((s) => [s.event, s.math ?? 'total']), q.series.map((s) => [s.event, s.math]));
    });
    await assertTrendsMatch(page, await urlJson(page), 'the hourly table equals POST /v1/trends');
    assert.ok((await readTrends(page))[0].cells.length >= 48, 'hourly buckets');

    // Maths: the first series counts persons instead of events.
    await setField(page.locator(tid('trends-math-0')), 'unique_users');
    await page.locator(tid('trends-run')).click();
    await until('the URL holds unique_users for series 0', async () =>
      assert.equal((await urlJson(page)).series[0].math, 'unique_users'),
    );
    const byPersons = await urlJson(page);
    assert.equal(byPersons.interval, 'hour');
    await assertTrendsMatch(page, byPersons, 'the unique-persons table equals POST /v1/trends');
    const a = await api.trends(Q(), byPersons);
    const b = await api.trends(Q(), { ...byPersons, series: [{ ...byPersons.series[0], math: 'total' }, byPersons.series[1]] });
    assert.notDeepEqual(a.series[0].aggregated, b.series[0].aggregated, 'the seed tells the two maths apart');
    assertClean(problems);
  });

  test('a funnel built by clicking equals POST /v1/funnels; who dropped and their timeline equal the API', TEST, async () => {
    const { page, problems } = await openPage('/funnels');
    await page.locator(tid('funnel-step-event-0')).waitFor({ timeout: 10_000 });
    const wanted = funnelQuery();
    for (let i = 0; i < FUNNEL.length; i++) {
      const input = page.locator(tid(`funnel-step-event-${i}`));
      if ((await input.count()) === 0) {
        await page.locator(tid('funnel-add-step')).click();
        await input.waitFor({ timeout: 2_000 });
      }
      await setField(input, FUNNEL[i]);
    }
    assert.equal(await page.locator(tid(`funnel-step-event-${FUNNEL.length}`)).count(), 0, 'exactly three steps');
    await setField(page.locator(tid('funnel-from')), wanted.from);
    await setField(page.locator(tid('funnel-to')), wanted.to);
    await page.locator(tid('funnel-run')).click();

    await until('the URL holds the funnel that ran', async () => {
      const u = await urlJson(page);
      assert.deepEqual(u.steps.map((s) => s.event), FUNNEL);
      assert.ok(String(u.from).startsWith(wanted.from), `from ${u.from}, typed ${wanted.from}`);
      assert.ok(String(u.to).startsWith(wanted.to), `to ${u.to}, typed ${wanted.to}`);
    });
    const body = await urlJson(page);
    const answer = await api.funnels(Q(), body);
    assert.ok(answer.steps[2].count > 0 && answer.steps[0].count > answer.steps[1].count, 'the seed drops and converts');
    await until('the funnel steps equal POST /v1/funnels', async () =>
      assert.deepEqual(funnelPage(await readFunnel(page)), funnelApi(answer)),
    { timeout: 10_000 });

    await page.locator(tid('funnel-dropped-0')).click();
    const dropped = await api.funnelPersons(Q(), { funnel: body, step: 0, dropped: true });
    assert.ok(dropped.persons.length > 0, 'someone dropped after step 1');
    const links = page.locator(`${tid('funnel-persons')} ${tid('person-link')}`);
    await until('the dropped persons equal POST /v1/funnels/persons', async () => {
      const hrefs = await links.evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      assert.deepEqual(hrefs.map(personIdOf).sort(), dropped.persons);
    });

    const who = dropped.persons[0];
    const timeline = await api.timeline(Q(), who);
    await page.locator(`${tid('person-link')}[href*="${encodeURIComponent(who)}"]`).first().click();
    await until('the person link opens their timeline', async () => {
      assert.equal(
        await page.evaluate(() => new URLSearchParams(location.hash.split('?')[1] ?? '').get('id')),
        who,
      );
      const shown = await page.$$eval(tid('person-event'), (rows) => rows.map((r) => r.getAttribute('data-event')));
      assert.deepEqual(shown, timeline.events.map((e) => e.event), 'newest first, as GET /v1/users/{id}/events');
    });
    assertClean(problems);
  });

  test('the retention matrix equals POST /v1/retention, from the URL and after a change in the builder', TEST, async () => {
    const q = retentionQuery();
    const { page, problems } = await openPage(`/retention?q=${enc(q)}`);
    const answer = await api.retention(Q(), q);
    assert.ok(answer.cohorts.some((c) => c.counts.slice(1).some((n) => n > 0)), 'the seed returns');
    await until('the matrix equals POST /v1/retention', async () =>
      assert.deepEqual(retentionPage(await readRetention(page)), retentionApi(answer)),
    { timeout: 10_000 });

    await setField(page.locator(tid('retention-periods')), '3');
    await page.locator(tid('retention-run')).click();
    await until('the URL holds 3 periods', async () => assert.equal(Number((await urlJson(page)).periods), 3));
    const shorter = await api.retention(Q(), await urlJson(page));
    await until('the 3-period matrix equals POST /v1/retention', async () =>
      assert.deepEqual(retentionPage(await readRetention(page)), retentionApi(shorter)),
    { timeout: 10_000 });
    assertClean(problems);
  });

  test('persons: a search shows the timeline, and an event opens to its properties', TEST, async () => {
    const { page, problems } = await openPage('/persons');
    await setField(page.locator(tid('persons-search')), seed.searchPerson);
    await page.locator(tid('persons-submit')).click();
    const timeline = await api.timeline(Q(), seed.searchPerson);
    assert.ok(timeline.events.length > 3);
    await until('the timeline equals GET /v1/users/{id}/events', async () => {
      const shown = await page.$$eval(tid('person-event'), (rows) => rows.map((r) => r.getAttribute('data-event')));
      assert.deepEqual(shown, timeline.events.map((e) => e.event));
    }, { timeout: 10_000 });
    // The person started anonymously: the identify linked both ids into one timeline.
    assert.ok(timeline.events.some((e) => e.distinct_id !== seed.searchPerson), 'the anonymous events are there');
    const purchase = page.locator(`${tid('person-event')}[data-event="${FUNNEL[2]}"]`).first();
    await purchase.locator(tid('person-event-toggle')).click();
    await until('the purchase shows its properties', async () => {
      const details = await page.$$eval(tid('person-event-detail'), (ds) => ds.map((d) => d.textContent));
      assert.ok(details.some((d) => d.includes(seed.orderId)), `no detail holds ${seed.orderId}: ${JSON.stringify(details)}`);
    });
    const id = await page.evaluate(() => new URLSearchParams(location.hash.split('?')[1] ?? '').get('id'));
    assert.equal(id, seed.searchPerson, 'the person is in the URL');
    assertClean(problems);
  });

  test('SQL: results equal POST /v1/sql; a bad query shows the API error message', TEST, async () => {
    const { page, problems } = await openPage(`/sql?q=${enc(sqlQuery)}`);
    const editor = page.locator(tid('sql-editor'));
    await editor.waitFor({ timeout: 10_000 });
    const prefilled = await editor.evaluate((el) => ('value' in el ? el.value : el.textContent));
    assert.equal(prefilled.trim(), sqlQuery, 'the URL fills the editor');
    await page.locator(tid('sql-run')).click();
    const answer = await api.sql(Q(), sqlQuery);
    await until('the SQL results equal POST /v1/sql', async () => {
      const table = await readSqlTable(page);
      assert.ok(table, 'a table in sql-results');
      assert.deepEqual(table.head, answer.columns.map((c) => c.name));
      assert.equal(table.body.length, answer.rows.length, 'row count');
      answer.rows.forEach((row, i) =>
        answer.columns.forEach((c, j) =>
          assert.ok(cellMatches(table.body[i][j], row[c.name]), `row ${i} ${c.name}: "${table.body[i][j]}" vs ${JSON.stringify(row[c.name])}`),
        ),
      );
    }, { timeout: 10_000 });

    const bad = 'SELECT nope FROM events';
    const refused = await api.call('POST', '/v1/sql', { key: Q(), body: { sql: bad } });
    assert.equal(refused.status, 400);
    await setField(editor, bad);
    await page.locator(tid('sql-run')).click();
    const error = page.locator(tid('sql-error'));
    await error.waitFor({ timeout: 10_000 });
    await until('sql-error shows the API message', async () => {
      const text = (await error.textContent()) ?? '';
      assert.ok(text.includes(refused.body.error.message), `"${text}" lacks "${refused.body.error.message}"`);
    });
    assert.equal(await urlQuery(page), bad, 'the URL holds the query that ran');
    assertClean(problems, { allow: [400] });
  });

  test('an empty project shows how to send a first event, with its own write key', TEST, async () => {
    const project = `empty-${tag}`;
    const key = mintKey(BIN, 'query', project, path.join(dataDir, 'data'));
    const { projects } = await api.ok('GET', '/v1/projects', key);
    assert.deepEqual(projects.map((p) => p.name), [project]);
    const { page, problems } = await openPage(null, { key });
    const stream = page.waitForResponse((r) => r.url().includes('/v1/events/live'), { timeout: 15_000 });
    await page.goto(`${server.base}/#/`);
    await page.locator(tid('empty-project')).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator(tid('overview-events')).count(), 0, 'no numbers for an empty project');
    const curl = await page.locator(tid('snippet-curl')).textContent();
    assert.ok(curl.includes(projects[0].write_key), `the curl snippet carries the write key: ${curl}`);
    assert.ok(curl.includes(server.base), `the curl snippet sends to this server (${server.base}): ${curl}`);
    const sdk = await page.locator(tid('snippet-sdk')).textContent();
    assert.ok(sdk.includes(projects[0].write_key), `the SDK snippet carries the write key: ${sdk}`);
    await screenshot(page, 'empty-project-desktop');

    // The curl snippet, run as printed, sends the first event: it shows in
    // the live feed, and the overview turns to the project's numbers.
    assert.equal((await stream).status(), 200, 'the live stream is open');
    const sent = JSON.parse(execFileSync('sh', ['-c', curl], { encoding: 'utf8', timeout: 10_000 }));
    assert.equal(sent.error, undefined, `the snippet's request was refused: ${JSON.stringify(sent)}`);
    const live = page.locator(`${tid('live-feed')} ${tid('live-item')}`);
    await live.first().waitFor({ timeout: 5_000 });
    const { rows } = await api.sql(key, 'SELECT event, distinct_id FROM events');
    assert.equal(rows.length, 1, 'one event in the project');
    assert.deepEqual(
      await live.evaluateAll((items) => items.map((i) => [i.getAttribute('data-event'), i.getAttribute('data-distinct-id')])),
      [[rows[0].event, rows[0].distinct_id]],
    );
    await page.locator(`${tid('overview-events')}[data-value="${rows.length}"]`).waitFor({ timeout: 10_000 });
    assert.equal(await page.locator(tid('empty-project')).count(), 0, 'the first-event help is gone');
    assertClean(problems);
  });

  test('insights and dashboards API: CRUD, versions, tenants and malformed bodies', TEST, async () => {
    const call = (method, p, opts = {}) => api.call(method, p, { key: Q(), ...opts });
    const isError = (r, status, code, what) => {
      assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
      assert.equal(typeof r.body?.error?.code, 'string', `${what}: {"error":{"code","message"}}, got ${r.text}`);
      assert.ok(r.body.error.message.length > 0, `${what}: a message`);
      if (code) assert.equal(r.body.error.code, code, what);
      return r.body.error.message;
    };
    const query = { series: [{ event: FUNNEL[1], math: 'total' }], interval: 'day' };

    // Create, read (ETag), list newest update first, replace, stale replace, delete.
    const created = await call('POST', '/v1/insights', {
      body: { name: `Sign-ups ${tag}`, kind: 'trends', query, description: 'daily' },
    });
    assert.equal(created.status, 201, created.text);
    const one = created.body;
    assert.match(one.id, /^[0-9a-f]{20}$/);
    assert.equal(one.version, 1);
    assert.deepEqual([one.name, one.kind, one.description], [`Sign-ups ${tag}`, 'trends', 'daily']);
    assert.deepEqual(one.query, query);
    assert.ok(Date.parse(one.created_at) && Date.parse(one.updated_at), 'RFC 3339 times');
    const read = await call('GET', `/v1/insights/${one.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, one);
    assert.equal(read.headers.get('etag'), '"1"');
    const two = (await call('POST', '/v1/insights', {
      body: { name: `Funnel ${tag}`, kind: 'funnels', query: { steps: FUNNEL.map((event) => ({ event })) } },
    })).body;
    const order = async () => (await call('GET', '/v1/insights')).body.insights.map((i) => i.id).filter((id) => id === one.id || id === two.id);
    assert.deepEqual(await order(), [two.id, one.id], 'newest update first');

    const renamed = await call('PUT', `/v1/insights/${one.id}`, {
      body: { name: `Sign-ups renamed ${tag}`, kind: 'trends', query, version: 1 },
    });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.body.version, 2);
    assert.equal(renamed.body.name, `Sign-ups renamed ${tag}`);
    assert.equal(renamed.body.created_at, one.created_at);
    assert.deepEqual(await order(), [one.id, two.id], 'the replaced one first');
    const stale = await call('PUT', `/v1/insights/${one.id}`, {
      body: { name: 'lost update', kind: 'trends', query, version: 1 },
    });
    isError(stale, 409, 'conflict', 'a stale PUT');
    assert.equal((await call('GET', `/v1/insights/${one.id}`)).body.name, `Sign-ups renamed ${tag}`, 'the stale PUT changed nothing');
    isError(await call('PUT', `/v1/insights/${one.id}`, { body: { name: 'x', kind: 'trends', query } }), 400, null, 'a PUT without version');
    isError(await call('DELETE', `/v1/insights/${one.id}?version=1`), 409, 'conflict', 'a stale DELETE');
    assert.equal((await call('DELETE', `/v1/insights/${one.id}?version=2`)).status, 204);
    isError(await call('GET', `/v1/insights/${one.id}`), 404, 'not_found', 'a deleted insight');
    assert.deepEqual(await order(), [two.id]);

    // Dashboards: the same, and pinning by PUT.
    const board = await call('POST', '/v1/dashboards', { body: { name: `Board ${tag}` } });
    assert.equal(board.status, 201, board.text);
    assert.deepEqual([board.body.version, board.body.insights], [1, []]);
    const pinned = await call('PUT', `/v1/dashboards/${board.body.id}`, {
      body: { name: `Board ${tag}`, insights: [two.id], version: 1 },
    });
    assert.equal(pinned.status, 200, pinned.text);
    assert.deepEqual([pinned.body.version, pinned.body.insights], [2, [two.id]]);
    isError(await call('PUT', `/v1/dashboards/${board.body.id}`, { body: { name: 'late', version: 1 } }), 409, 'conflict', 'a stale dashboard PUT');
    assert.ok((await call('GET', '/v1/dashboards')).body.dashboards.some((d) => d.id === board.body.id && d.version === 2));
    // An insight deleted later stays listed on the dashboard (the UI shows it as deleted).
    isError(await call('DELETE', `/v1/insights/${two.id}`), 400, 'invalid_query', 'a DELETE that names no version');
    assert.equal((await call('DELETE', `/v1/insights/${two.id}`, { headers: { 'if-match': `"${two.version}"` } })).status, 204);
    assert.deepEqual((await call('GET', `/v1/dashboards/${board.body.id}`)).body.insights, [two.id]);
    assert.equal((await call('DELETE', `/v1/dashboards/${board.body.id}?version=2`)).status, 204);
    isError(await call('GET', `/v1/dashboards/${board.body.id}`), 404, 'not_found', 'a deleted dashboard');

    // Tenants: another project's key, and the admin token naming a project.
    const otherKey = mintKey(BIN, 'query', 'other', path.join(dataDir, 'data'));
    const mine = (await call('POST', '/v1/insights', { body: { name: `Demo only ${tag}`, kind: 'trends', query } })).body;
    const admin = (method, p, opts = {}) => api.call(method, p, { key: server.keys.admin, ...opts });
    const otherList = await admin('GET', '/v1/insights?project=other');
    assert.equal(otherList.status, 200, otherList.text);
    assert.ok(!otherList.body.insights.some((i) => i.id === mine.id), "the admin sees no demo insight in project other");
    const theirs = await admin('POST', '/v1/insights?project=other', { body: { name: `Other only ${tag}`, kind: 'trends', query } });
    assert.equal(theirs.status, 201, theirs.text);
    const asOther = await api.call('GET', '/v1/insights', { key: otherKey });
    assert.deepEqual(asOther.body.insights.map((i) => i.id), [theirs.body.id], "other's key sees other's insights only");
    assert.ok(!(await call('GET', '/v1/insights')).body.insights.some((i) => i.id === theirs.body.id), "demo's key does not see other's");
    isError(await call('GET', '/v1/insights?project=other'), 403, 'forbidden', "demo's key naming project other");
    isError(await call('GET', `/v1/insights/${theirs.body.id}`), 404, 'not_found', "other's insight read with demo's key");
    isError(await api.call('GET', `/v1/insights/${mine.id}`, { key: otherKey }), 404, 'not_found', "demo's insight read with other's key");
    isError(
      await api.call('PUT', `/v1/insights/${mine.id}`, { key: otherKey, body: { name: 'hijack', kind: 'trends', query, version: 1 } }),
      404,
      'not_found',
      "demo's insight replaced with other's key",
    );
    isError(await api.call('DELETE', `/v1/insights/${mine.id}?version=1`, { key: otherKey }), 404, 'not_found', "demo's insight deleted with other's key");
    assert.equal((await call('GET', `/v1/insights/${mine.id}`)).body.name, `Demo only ${tag}`, 'still there, unchanged');
    isError(await admin('GET', '/v1/insights'), 400, null, 'the admin token without ?project=');
    isError(await api.call('GET', '/v1/insights'), 401, 'unauthorized', 'no key');
    isError(await api.call('GET', '/v1/insights', { key: server.keys.write }), 403, 'forbidden', 'a write key');

    // Projects.
    assert.deepEqual((await call('GET', '/v1/projects')).body.projects, [{ name: 'demo', write_key: server.keys.write }]);
    const all = (await admin('GET', '/v1/projects')).body.projects.map((p) => p.name);
    assert.ok(all.includes('demo') && all.includes('other'), `the admin lists demo and other: ${all}`);
    isError(await api.call('GET', '/v1/projects', { key: 'cq_bad' }), 401, 'unauthorized', 'GET /v1/projects with a bad key');

    // Malformed bodies and unknown ids.
    const post = (body, raw) => call('POST', '/v1/insights', raw === undefined ? { body } : { raw, headers: { 'content-type': 'application/json' } });
    isError(await post(undefined, 'not json'), 400, null, 'a body that is not JSON');
    assert.match(isError(await post({ kind: 'trends', query }), 400, null, 'no name'), /name/);
    assert.match(isError(await post({ name: '  ', kind: 'trends', query }), 400, null, 'a blank name'), /name/);
    assert.match(isError(await post({ name: 'x', kind: 'pie', query }), 400, null, 'an unknown kind'), /kind/);
    const badQuery = isError(await post({ name: 'x', kind: 'trends', query: { series: [] } }), 400, 'invalid_query', 'an empty series');
    assert.match(badQuery, /series/);
    assert.match(isError(await post({ name: 'x', kind: 'funnels', query: { steps: [{ event: 'a' }], window: '-1d' } }), 400, 'invalid_query', 'a bad funnel'), /query/);
    assert.match(isError(await call('POST', '/v1/dashboards', { body: { insights: [] } }), 400, null, 'a dashboard without name'), /name/);
    for (const p of ['/v1/insights/0123456789abcdef0123', '/v1/insights/nope', '/v1/dashboards/0123456789abcdef0123']) {
      isError(await call('GET', p), 404, 'not_found', `GET ${p}`);
    }
    isError(
      await call('PUT', '/v1/insights/0123456789abcdef0123', { body: { name: 'x', kind: 'trends', query, version: 1 } }),
      404,
      'not_found',
      'a PUT of an unknown id',
    );
  });

  test('an insight saved and pinned in the UI is there after a restart', TEST, async () => {
    const q = trendsQuery();
    const name = `Saved in the browser ${tag}`;
    const boardName = `Browser board ${tag}`;
    const { page, problems } = await openPage(`/trends?q=${enc(q)}`);
    await page.locator(tid('trends-row')).first().waitFor({ timeout: 10_000 });
    await page.locator(tid('insight-save')).click();
    await setField(page.locator(tid('insight-name')), name);
    await page.locator(tid('insight-save-confirm')).click();
    const insight = await until('POST /v1/insights stored the insight', async () => {
      const found = (await api.ok('GET', '/v1/insights', Q())).insights.find((i) => i.name === name);
      assert.ok(found, `no insight named ${name}`);
      return found;
    });
    assert.equal(insight.kind, 'trends');
    assert.deepEqual(
      [insight.query.interval, insight.query.from, insight.query.to, insight.query.series.map((s) => [s.event, s.math ?? 'total'])],
      [q.interval, q.from, q.to, q.series.map((s) => [s.event, s.math])],
      'the saved query is the one on screen',
    );

    await page.goto(`${server.base}/#/dashboards`);
    await setField(page.locator(tid('dashboard-name')), boardName);
    await page.locator(tid('dashboard-create')).click();
    const board = await until('POST /v1/dashboards stored the dashboard', async () => {
      const found = (await api.ok('GET', '/v1/dashboards', Q())).dashboards.find((d) => d.name === boardName);
      assert.ok(found, `no dashboard named ${boardName}`);
      return found;
    });
    await page.locator(`${tid('dashboard-item')}[data-id="${board.id}"]`).waitFor({ timeout: 5_000 });

    await page.goto(`${server.base}/#/insights`);
    const item = page.locator(`${tid('insight-item')}[data-id="${insight.id}"]`);
    await item.waitFor({ timeout: 10_000 });
    const pin = item.locator(tid('insight-pin'));
    const options = await pin.evaluate((el) => (el.tagName === 'SELECT' ? [...el.options].map((o) => [o.value, o.label]) : null));
    assert.ok(options, 'insight-pin is a select of dashboards');
    const option = options.find(([value]) => value === board.id) ?? options.find(([, label]) => label === boardName);
    assert.ok(option, `the dashboard is offered: ${JSON.stringify(options)}`);
    await pin.selectOption(option[0]);
    await until('PUT /v1/dashboards/{id} pinned the insight', async () => {
      const d = await api.ok('GET', `/v1/dashboards/${board.id}`, Q());
      assert.deepEqual(d.insights, [insight.id]);
    });
    assertClean(problems);

    // Restart on the same data directory and port: keys come from the same
    // secret. Every tab is closed first: a tab following the live feed while
    // serve stops is the next test's subject.
    for (const c of contexts.splice(0)) await c.close().catch(() => {});
    const before = { ...server.keys };
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, 'serve exits cleanly on SIGTERM');
    server = await startServe({
      bin: BIN,
      data: path.join(dataDir, 'data'),
      port: server.port,
      env: { CONTRAIL_COMPACT_EVERY_SECS: COMPACT_EVERY_SECS },
      logFile: path.join(ARTIFACTS, 'serve.log'),
    });
    assert.deepEqual(server.keys, before, 'the same keys after a restart');

    const after = await openPage('/insights');
    const again = after.page.locator(`${tid('insight-item')}[data-id="${insight.id}"]`);
    await again.waitFor({ timeout: 10_000 });
    assert.ok((await again.textContent()).includes(name), 'the insight is listed by name');
    await after.page.goto(`${server.base}/#/dashboards/${board.id}`);
    const card = after.page.locator(`${tid('dashboard-card')}[data-insight-id="${insight.id}"]`);
    await card.waitFor({ timeout: 10_000 });
    await until('the card names the insight', async () => assert.ok((await card.textContent()).includes(name), await card.textContent()));
    // The card runs the saved query: its headline is the first series' total (the app's card-value).
    const answer = await api.trends(Q(), insight.query);
    await until('the card shows POST /v1/trends of the saved query', async () =>
      assert.equal(num(await card.locator(tid('card-value')).getAttribute('data-value', { timeout: 1_000 })), answer.series[0].aggregated),
    { timeout: 10_000 });
    await screenshot(after.page, 'dashboard-after-restart-desktop');
    assertClean(after.problems);
  });

  test('serve stops on SIGTERM within 10 s while a tab follows the live feed', TEST, async () => {
    const { page } = await openPage(null);
    const stream = page.waitForResponse((r) => r.url().includes('/v1/events/live'), { timeout: 15_000 });
    await page.goto(`${server.base}/#/`);
    assert.equal((await stream).status(), 200, 'the live stream is open');
    const exit = await server.terminate(10_000);
    assert.deepEqual(
      exit,
      { code: 0, signal: null },
      'a clean exit within 10 s of SIGTERM (null: still running, waiting for the open live stream to end)',
    );
  });
});
