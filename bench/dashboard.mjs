// Loads the dashboard's overview in headless Debian Chromium `runs` times and
// prints, per load, the first contentful paint and the time until every
// overview number (totals, hourly chart, top lists) is on the page, from
// navigation start. The first load is cold (empty cache); later loads reuse
// the cached assets, as a returning user does. Usage:
//   node bench/dashboard.mjs <base url> <query key> <runs> <events>
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../tests/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [base, key, runs = '5', events = '?'] = process.argv.slice(2);
const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'contrail-bench-')), {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = browser.pages()[0] ?? await browser.newPage();
const loads = [];
for (let run = 0; run < Number(runs); run++) {
  const url = run === 0 ? `${base}/#key=${key}` : `${base}/#/`;
  const started = Date.now();
  await page.goto(url, { waitUntil: 'commit' });
  await page.waitForSelector('[data-testid="overview-events"][data-value]', { timeout: 60_000 });
  await page.waitForSelector('[data-testid="top-url"] [data-testid="top-row"]', { timeout: 60_000 });
  const filled = Date.now() - started;
  const timing = await page.evaluate(() => {
    const paint = performance.getEntriesByName('first-contentful-paint')[0];
    return { fcp: paint ? paint.startTime : null };
  });
  const numbers = await page.evaluate(() => document.querySelector('[data-testid="overview-events"]').dataset.value);
  loads.push({ run, cold: run === 0, first_contentful_paint_ms: Math.round(timing.fcp), all_numbers_ms: filled, events_24h: Number(numbers) });
  await page.goto('about:blank');
}
await browser.close();
for (const load of loads) console.log(JSON.stringify(load));
const warm = loads.filter((l) => !l.cold).map((l) => l.all_numbers_ms).sort((a, b) => a - b);
const median = warm.length ? warm[Math.floor(warm.length / 2)] : null;
console.log(`overview on ${events} events: first paint ${loads[0].first_contentful_paint_ms} ms cold, ` +
  `every number ${loads[0].all_numbers_ms} ms cold, ${median} ms warm (median of ${warm.length})`);
