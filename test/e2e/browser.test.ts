// The published site in a real browser (Debian's chromium, driven by playwright-core): every page
// loads from file:// with no console error and no request leaving the site, every chart becomes
// interactive (vega-embed draws marks, tooltips answer the mouse), and with JavaScript off every
// chart is still there as SVG. The recorded results cover every chart kind the report draws.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { publishSite } from '../../harness/publish/site.ts';
import { readResult } from '../../harness/results/reader.ts';
import { scaledRun } from '../unit/helpers/scaled-run.ts';

const FIXTURES = new URL('../fixtures/results/', import.meta.url).pathname;

function chromiumPath(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}
const executable = chromiumPath();
const skip = executable ? undefined : 'needs chromium (run: lbbench setup --tests)';

let dir = '';
let pages: string[] = [];
let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'lbb-browser-'));
  const recorded = await readResult(join(FIXTURES, 'synthetic-run.json'));
  const base = scaledRun(recorded, { factor: () => 1 });
  const cand = scaledRun(recorded, { runId: '20250614-101203-beef', startedAt: '2025-06-14T10:12:03.000Z', factor: (lb) => (lb === 'haproxy-http' ? 0.8 : 1) });
  await writeFile(join(dir, 'base.json'), JSON.stringify(base));
  await writeFile(join(dir, 'cand.json'), JSON.stringify(cand));
  const site = await publishSite(
    [join(dir, 'base.json'), join(dir, 'cand.json'), ...['events-run.json', 'pps-run.json', 'udp-run.json'].map((f) => join(FIXTURES, f))],
    { out: join(dir, 'site') },
  );
  pages = [site.index, ...site.runs, ...site.comparisons.flatMap((c) => (c.file ? [c.file] : []))];
  assert.equal(pages.length, 1 + 5 + 1);
  // As root chromium refuses its sandbox; the pages are our own.
  browser = await chromium.launch({ executablePath: executable, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Opens a page and collects everything that would mean it is broken or not offline. */
async function open(page: Page, file: string): Promise<string[]> {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) problems.push(`request leaves the site: ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(pathToFileURL(file).href);
  return problems;
}

/** Marks actually drawn (paths with geometry), per figure. */
const drawnMarks = (page: Page) =>
  page.$$eval('figure', (figs) =>
    figs.map((f) => ({
      id: f.id,
      interactive: f.classList.contains('interactive'),
      embedded: f.querySelectorAll('.vega-embed svg.marks').length,
      svgs: f.querySelectorAll('svg.marks').length,
      marks: [...f.querySelectorAll('svg .role-mark path, svg .role-mark line, svg .role-mark rect')].filter((p) => (p.getAttribute('d') ?? 'x') !== '').length,
    })),
  );

test('published pages: no console errors, no network, every chart interactive', { skip, timeout: 180_000 }, async () => {
  for (const file of pages) {
    const page = await browser!.newPage();
    const problems = await open(page, file);
    await page.waitForFunction(() => document.documentElement.dataset.charts === 'ready', null, { timeout: 30_000 });
    const figs = await drawnMarks(page);
    const name = file.slice(dir.length);
    if (!file.endsWith('site/index.html')) assert.ok(figs.length >= 1, `${name}: no charts`);
    for (const f of figs) {
      assert.ok(f.interactive, `${name} ${f.id}: not made interactive`);
      assert.equal(f.embedded, 1, `${name} ${f.id}: ${f.embedded} vega-embed views (the static SVG should have been replaced)`);
      assert.ok(f.marks > 0, `${name} ${f.id}: no marks drawn`);
    }
    assert.deepEqual(problems, [], name);
    await page.close();
  }
});

test('published pages: a tooltip answers the mouse; links lead between pages', { skip, timeout: 60_000 }, async () => {
  const compare = pages.find((p) => p.includes('/compare/'))!;
  const page = await browser!.newPage();
  const problems = await open(page, compare);
  await page.waitForFunction(() => document.documentElement.dataset.charts === 'ready');
  await page.locator('#chart-throughput .vega-embed path[aria-roledescription="point"][aria-label*="Run: candidate"]').first().hover();
  await page.locator('#vg-tooltip-element.visible').waitFor({ timeout: 5_000 });
  assert.match(await page.locator('#vg-tooltip-element').innerText(), /median[\s\S]*candidate/);
  await page.getByRole('link', { name: '← all runs' }).click();
  await page.waitForURL(/site\/index\.html$/);
  assert.match(await page.locator('h1').innerText(), /lbbench results/);
  assert.deepEqual(problems, []);
  await page.close();
});

test('published pages: with JavaScript off every chart is still drawn as SVG', { skip, timeout: 120_000 }, async () => {
  const ctx = await browser!.newContext({ javaScriptEnabled: false });
  for (const file of pages) {
    const page = await ctx.newPage();
    const problems = await open(page, file);
    const name = file.slice(dir.length);
    for (const f of await drawnMarks(page)) {
      assert.ok(!f.interactive && f.embedded === 0, `${name} ${f.id}: scripts ran`);
      assert.equal(f.svgs, 1, `${name} ${f.id}: static SVG`);
      assert.ok(f.marks > 0, `${name} ${f.id}: no marks in the static SVG`);
    }
    assert.deepEqual(problems, [], name);
    await page.close();
  }
  await ctx.close();
  assert.ok((await readdir(join(dir, 'site', 'assets'))).includes('vega-embed.min.js'));
});
