// The harness of dashboard.test.mjs: a real `contrail serve` child process,
// a small client for its HTTP API, a seeded dataset, and polling helpers.
// Nothing here knows what the dashboard shows: the test compares the page
// with the API's own answers.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** The secret every start uses, so keys stay the same across a restart. */
export const SECRET = 'dashboard-browser-test-secret-0123456789abcdef';

// ------------------------------------------------------------------ polling

/**
 * Calls `fn` until it returns without throwing (an assertion inside it
 * passing), every `interval` ms for at most `timeout` ms; then rethrows its
 * last error, prefixed with `what`. Waiting is never the assertion itself.
 */
export async function until(what, fn, { timeout = 5_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) {
        const why = `${what} (still failing after ${timeout} ms)`;
        err.message = `${why}: ${err.message}`;
        // The reporter prints the stack, made when the error was: name the wait there too.
        if (typeof err.stack === 'string') err.stack = `${why}:\n${err.stack}`;
        throw err;
      }
    }
    await sleep(interval);
  }
}

// ------------------------------------------------------------------ the server

/** A port free right now on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Where the server's output goes (appended across restarts). */
function logStream(file) {
  return file ? fs.createWriteStream(file, { flags: 'a' }) : null;
}

/**
 * Starts `contrail serve` on `port` with `data`, reads the keys from its
 * banner, and waits for /readyz. Returns a handle with `stop()` (SIGTERM,
 * then wait for the exit, SIGKILL after 30 s).
 */
export async function startServe({ bin, data, port, env = {}, logFile }) {
  const proc = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, '--data', data], {
    env: { ...process.env, CONTRAIL_KEYS_SECRETS: SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = logStream(logFile);
  log?.write(`\n===== contrail serve --listen 127.0.0.1:${port} (pid ${proc.pid}) ${new Date().toISOString()}\n`);
  let stdout = '';
  let exited = null;
  const exit = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  proc.stdout.on('data', (chunk) => {
    stdout += chunk;
    log?.write(chunk);
  });
  proc.stderr.on('data', (chunk) => log?.write(chunk));
  const base = `http://127.0.0.1:${port}`;
  const handle = {
    proc,
    port,
    base,
    get stdout() {
      return stdout;
    },
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
        await exit;
        clearTimeout(timer);
      }
      log?.end();
      return exited;
    },
    /** SIGTERM, and the exit if it comes within `ms` (else null; the process still runs). */
    async terminate(ms) {
      if (!exited) proc.kill('SIGTERM');
      return Promise.race([exit, sleep(ms).then(() => null)]);
    },
  };
  try {
    // The banner is one println: wait for its last part (or for the keys
    // and a moment more, should the wording of the end change).
    await until(
      'the serve banner',
      () => {
        if (exited) throw new Error(`contrail serve exited early (${JSON.stringify(exited)}):\n${stdout}`);
        if (!/admin token\s+ca_/.test(stdout)) throw new Error(`no keys in the banner yet:\n${stdout}`);
      },
      { timeout: 30_000, interval: 50 },
    );
    await until('the end of the banner', () => assertTrue(/Try it:/.test(stdout), 'no "Try it:"'), {
      timeout: 1_000,
      interval: 50,
    }).catch(() => {});
    const key = (re) => re.exec(stdout)?.[1] ?? null;
    handle.keys = {
      write: key(/^\s*write key\s+(ck_\S+)/m),
      query: key(/^\s*query key\s+(cq_\S+)/m),
      admin: key(/^\s*admin token\s+(ca_\S+)/m),
    };
    handle.dashboardLink = key(/^\s*dashboard\s+(http\S+)/m);
    await until(
      'GET /readyz answers 200',
      async () => {
        if (exited) throw new Error(`contrail serve exited (${JSON.stringify(exited)})`);
        const r = await fetch(`${base}/readyz`);
        assertTrue(r.status === 200, `/readyz answered ${r.status}`);
      },
      { timeout: 30_000, interval: 100 },
    );
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}

function assertTrue(cond, message) {
  if (!cond) throw new Error(message);
}

/** `contrail keys <kind> --project <project>` under the same secret. */
export function mintKey(bin, kind, project, data) {
  const args = ['keys', kind, '--data', data];
  if (project) args.push('--project', project);
  return execFileSync(bin, args, { env: { ...process.env, CONTRAIL_KEYS_SECRETS: SECRET } })
    .toString()
    .trim();
}

// ------------------------------------------------------------------ the API

/**
 * A JSON client for one server: `call(method, path, {key, body, raw,
 * headers})` → {status, body (parsed JSON, or null), text, headers}.
 */
export function apiClient(getBase) {
  async function call(method, path, { key, body, raw, headers = {} } = {}) {
    const h = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    const r = await fetch(`${getBase()}${path}`, { method, headers: h, body: payload });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: the test says so where it matters */
    }
    return { status: r.status, body: json, text, headers: r.headers };
  }
  /** POST to a query endpoint, failing unless it answers 200. */
  async function ok(method, path, key, body) {
    const r = await call(method, path, { key, body });
    if (r.status !== 200) throw new Error(`${method} ${path} answered ${r.status}: ${r.text}`);
    return r.body;
  }
  return {
    call,
    ok,
    sql: async (key, sql) => ok('POST', '/v1/sql', key, { sql }),
    trends: (key, body) => ok('POST', '/v1/trends', key, body),
    funnels: (key, body) => ok('POST', '/v1/funnels', key, body),
    retention: (key, body) => ok('POST', '/v1/retention', key, body),
    funnelPersons: (key, body) => ok('POST', '/v1/funnels/persons', key, body),
    timeline: (key, id) => ok('GET', `/v1/users/${encodeURIComponent(id)}/events?limit=1000`, key),
    /** Sends Segment messages with the write key; fails unless all are accepted. */
    async ingest(writeKey, batch) {
      const r = await call('POST', '/v1/batch', { body: { batch }, headers: { 'x-write-key': writeKey } });
      if (r.status !== 200 || r.body?.accepted !== batch.length) {
        throw new Error(`POST /v1/batch answered ${r.status}: ${r.text}`);
      }
      return r.body;
    },
  };
}

// ------------------------------------------------------------------ data

const HOUR = 3_600_000;
const MINUTE = 60_000;
const DAY = 24 * HOUR;

const USER_AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15',
  'Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1',
];
const SITE = 'https://shop.example';

/** The three funnel steps every person of the last day is seeded through. */
export const FUNNEL = ['Viewed Pricing', 'Signed Up', 'Purchased'];

/**
 * A small, realistic dataset around `now`: a funnel in the last 24 h (ten
 * persons view pricing, six sign up, three buy; two start anonymously and
 * are linked by identify), visitors in the 24 h before, page views of
 * several urls from several browsers and devices, and sign-up cohorts with
 * app opens over the past weeks. Returns the messages and what the test
 * needs to know about them (nothing that stands in for the API's answers).
 */
export function seedDataset(now, tag) {
  const batch = [];
  let n = 0;
  const iso = (ms) => new Date(Math.floor(ms)).toISOString();
  const context = (p, url) => ({
    userAgent: p.ua,
    sessionId: `sess-${p.id}`,
    ...(url ? { page: { url, path: new URL(url).pathname, referrer: 'https://search.example/' } } : {}),
  });
  const ids = (p, anonymous) => (anonymous ? { anonymousId: p.anon } : { userId: p.id, anonymousId: p.anon });
  const add = (m) => batch.push({ messageId: `seed-${tag}-${++n}`, ...m });
  const track = (p, event, ms, properties = {}, anonymous = false) =>
    add({ type: 'track', event, ...ids(p, anonymous), properties, context: context(p), timestamp: iso(ms) });
  const page = (p, path, ms, anonymous = false) =>
    add({
      type: 'page',
      name: path === '/' ? 'Home' : path,
      ...ids(p, anonymous),
      properties: { path },
      context: context(p, `${SITE}${path}`),
      timestamp: iso(ms),
    });
  const person = (id, i) => ({ id, anon: `anon-${tag}-${id}`, ua: USER_AGENTS[i % USER_AGENTS.length] });

  // Last 24 h: the funnel. Person i starts (2 + 2i) hours ago.
  for (let i = 1; i <= 10; i++) {
    const p = person(`u${String(i).padStart(2, '0')}`, i);
    const anonymous = i <= 2;
    const t = now - (2 + 2 * i) * HOUR - 7 * MINUTE;
    page(p, '/', t - 10 * MINUTE, anonymous);
    page(p, '/pricing', t, anonymous);
    track(p, FUNNEL[0], t + MINUTE, { source: ['ad', 'search', 'direct'][i % 3] }, anonymous);
    if (anonymous) {
      add({
        type: 'identify',
        userId: p.id,
        anonymousId: p.anon,
        traits: { email: `${p.id}@example.com` },
        context: context(p),
        timestamp: iso(t + 2 * MINUTE),
      });
    }
    if (i <= 6) track(p, FUNNEL[1], t + 5 * MINUTE, { plan: i % 2 ? 'pro' : 'free' });
    if (i <= 3) {
      track(p, FUNNEL[2], t + 20 * MINUTE, { plan: 'pro', amount: 49 * i, order_id: `ord-${tag}-${i}` });
    }
    if (i % 2 === 0) page(p, '/docs/start', t + 30 * MINUTE);
    // Some come back to the pricing page: events and persons then differ.
    if (i % 2 === 0) track(p, FUNNEL[0], t + 35 * MINUTE, { source: 'docs' });
    if (i % 3 === 0) page(p, '/blog/launch', t + 40 * MINUTE);
  }
  // The 24 h before: other visitors, fewer sign-ups, and returning ones.
  for (let i = 11; i <= 16; i++) {
    const p = person(`u${i}`, i);
    const t = now - (26 + 3 * (i - 11)) * HOUR;
    page(p, '/', t);
    page(p, '/pricing', t + 2 * MINUTE);
    track(p, FUNNEL[0], t + 3 * MINUTE, { source: 'ad' });
    if (i <= 12) track(p, FUNNEL[1], t + 9 * MINUTE, { plan: 'free' });
  }
  for (let i = 1; i <= 3; i++) page(person(`u0${i}`, i), '/blog/launch', now - (30 + i) * HOUR);
  // Past weeks: sign-up cohorts and their app opens, for retention.
  const signupDaysAgo = [38, 37, 31, 30, 29, 24, 17, 16];
  signupDaysAgo.forEach((days, j) => {
    const p = person(`r${String(j + 1).padStart(2, '0')}`, j);
    const t = now - days * DAY + 3 * HOUR;
    page(p, '/', t - 5 * MINUTE);
    track(p, FUNNEL[1], t, { plan: j % 2 ? 'pro' : 'free' });
    for (let k = 1; k <= 5; k++) {
      if ((j + k) % 3 !== 0 && days - 7 * k > 1) track(p, 'Opened App', t + k * 7 * DAY, { screen: 'home' });
    }
  });
  return {
    batch,
    total: batch.length,
    /** A person with a purchase, and a property value only that event carries. */
    searchPerson: 'u02',
    orderId: `ord-${tag}-2`,
  };
}

export const time = { HOUR, MINUTE, DAY };

/** `YYYY-MM-DD` of a UTC instant. */
export const utcDate = (ms) => new Date(ms).toISOString().slice(0, 10);

/**
 * The overview's periods (docs/dashboard.md): the 24 whole UTC hours ending
 * with the current hour, and the 24 h before.
 */
export function overviewWindow(nowMs) {
  const to = Math.floor(nowMs / HOUR) * HOUR + HOUR;
  const from = to - DAY;
  const fmt = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  return { from: fmt(from), to: fmt(to), prevFrom: fmt(from - DAY), prevTo: fmt(from), hour: to };
}
