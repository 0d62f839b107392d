// publish and the comparison page, on recorded results: which pages exist, that every link and
// script resolves inside the site (so it works from file:// with no network), that the charts'
// specs compile, escaping, and the choice of pairs. The browser check is test/e2e/browser.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { compile, type TopLevelSpec } from 'vega-lite';
import { compareRuns } from '../../harness/compare/compare.ts';
import { latencyCdfOverlaySpec, ratioData, ratioSpec, throughputOverlaySpec } from '../../harness/report/compare-specs.ts';
import { readResult } from '../../harness/results/reader.ts';
import type { RunResult } from '../../harness/results/types.ts';
import { main } from '../../harness/cli.ts';
import { headline } from '../../harness/publish/pages.ts';
import { pairs, publishSite } from '../../harness/publish/site.ts';
import { scaledRun } from './helpers/scaled-run.ts';

const FIXTURES = new URL('../fixtures/results/', import.meta.url).pathname;
const SYNTHETIC = join(FIXTURES, 'synthetic-run.json');

async function tmp(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'lbb-publish-'));
}

/** Every file under dir, relative paths. */
async function files(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, e.name);
    if (e.isDirectory()) out.push(...(await files(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

/** A base run and a candidate of the same scenario where haproxy-http lost 20% (and the rest is noise). */
async function pair(dir: string): Promise<{ base: string; cand: string }> {
  const recorded = await readResult(SYNTHETIC);
  const base = scaledRun(recorded, { factor: () => 1 });
  const cand = scaledRun(recorded, { runId: '20250614-101203-beef', startedAt: '2025-06-14T10:12:03.000Z', factor: (lb) => (lb === 'haproxy-http' ? 0.8 : 1) });
  await mkdir(join(dir, 'in', base.runId), { recursive: true });
  await mkdir(join(dir, 'in', cand.runId), { recursive: true });
  await writeFile(join(dir, 'in', base.runId, 'result.json'), JSON.stringify(base));
  await writeFile(join(dir, 'in', base.runId, 'samples.csv'), 'point,repetition\n');
  await writeFile(join(dir, 'in', cand.runId, 'result.json'), JSON.stringify(cand));
  return { base: join(dir, 'in', base.runId), cand: join(dir, 'in', cand.runId) };
}

test('publish: index, a page per run and per comparison, assets vendored, every link inside the site', async () => {
  const dir = await tmp();
  try {
    const { base, cand } = await pair(dir);
    const out = join(dir, 'site');
    const site = await publishSite([join(dir, 'in'), join(FIXTURES, 'events-run.json')], { out, now: new Date('2026-01-01T00:00:00Z') });
    const all = await files(out);
    assert.deepEqual(
      all.filter((f) => !f.startsWith('runs/') || f.endsWith('index.html')),
      [
        'assets/LICENSES.txt',
        'assets/charts.js',
        'assets/vega-embed.min.js',
        'assets/vega-lite.min.js',
        'assets/vega.min.js',
        'compare/20250614-091203-7f3a--20250614-101203-beef/index.html',
        'index.html',
        ...site.runs.map((r) => r.slice(out.length + 1)).sort(),
      ].sort(),
    );
    assert.equal(site.runs.length, 3);
    assert.ok(all.includes('runs/20250614-091203-7f3a/samples.csv'), 'the CSV travels with its run');
    assert.ok(all.includes('runs/20250614-101203-beef/result.json'));
    assert.deepEqual(site.comparisons.map((c) => c.verdict), ['regressed']);
    for (const vendored of ['vega.min.js', 'vega-lite.min.js', 'vega-embed.min.js']) {
      assert.ok((await stat(join(out, 'assets', vendored))).size > 50_000, `${vendored} is the real bundle`);
    }

    for (const page of all.filter((f) => f.endsWith('.html'))) {
      const html = await readFile(join(out, page), 'utf8');
      assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'self'">/, page);
      for (const [, attr, url] of html.matchAll(/\b(href|src)="([^"]*)"/g)) {
        assert.doesNotMatch(url!, /^[a-z]+:|^\/\//i, `${page}: ${attr}=${url} leaves the site`);
        const target = resolve(dirname(join(out, page)), url!.split('#')[0]!);
        assert.ok(target.startsWith(out), `${page}: ${url} points outside the site`);
        await stat(target).catch(() => assert.fail(`${page}: ${attr}=${url} does not exist`));
      }
      // Every figure carries its spec, and the spec is valid vega-lite.
      const figures = [...html.matchAll(/<figure id="chart-([^"]+)" data-spec="([^"]+)">/g)];
      for (const [, id, specId] of figures) {
        const json = html.match(new RegExp(`<script type="application/json" id="${specId}">(.*?)</script>`, 's'))?.[1];
        assert.ok(json, `${page}: spec of ${id}`);
        compile(JSON.parse(json!) as TopLevelSpec);
      }
      if (page.startsWith('runs/') || page.startsWith('compare/')) assert.ok(figures.length >= 3, `${page}: ${figures.length} charts`);
    }

    const index = await readFile(join(out, 'index.html'), 'utf8');
    assert.match(index, /3 runs, 1 comparison/);
    assert.match(index, /router [\d,]+ · nginx-l7 [\d,]+ · haproxy-http [\d,]+ req\/s at 4 backends/);
    assert.match(index, /<a href="compare\/20250614-091203-7f3a--20250614-101203-beef\/index.html">20250614-101203-beef vs 20250614-091203-7f3a<\/a><\/td><td><span class="verdict v-regressed">regressed/);
    const cmp = await readFile(join(out, 'compare/20250614-091203-7f3a--20250614-101203-beef/index.html'), 'utf8');
    assert.match(cmp, /Verdict: regressed/);
    assert.match(cmp, /<td>haproxy-http<\/td><td>backends=4 connections=32 threads=1<\/td><td>req_per_s<\/td><td class="num">[\d,]+<\/td><td class="num">[\d,]+<\/td><td class="num">-20.0%/);
    assert.match(cmp, /href="..\/..\/runs\/20250614-091203-7f3a\/index.html"/);

    // Same inputs, same clock: the same bytes (a site can be rebuilt and diffed).
    const again = join(dir, 'again');
    await publishSite([base, cand, join(FIXTURES, 'events-run.json')], { out: again, now: new Date('2026-01-01T00:00:00Z') });
    for (const f of all) assert.ok((await readFile(join(out, f))).equals(await readFile(join(again, f))), `${f} differs between two builds`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('publish: pairs are consecutive runs of one scenario, or every run against --baseline', async () => {
  const a = await readResult(SYNTHETIC);
  const mk = (runId: string, startedAt: string, name = a.scenario.name) => ({ ...a, runId, startedAt, scenario: { ...a.scenario, name } }) as RunResult;
  const r1 = mk('r1', '2025-01-01T00:00:00Z');
  const r2 = mk('r2', '2025-01-02T00:00:00Z');
  const r3 = mk('r3', '2025-01-03T00:00:00Z');
  const other = mk('o1', '2025-01-02T12:00:00Z', 'other');
  const ids = (ps: [RunResult, RunResult][]) => ps.map(([b, c]) => `${b.runId}→${c.runId}`);
  assert.deepEqual(ids(pairs([r3, other, r1, r2])), ['r1→r2', 'r2→r3']);
  assert.deepEqual(ids(pairs([r3, other, r1, r2], 'r2')), ['r2→r3', 'r2→r1']);
  assert.throws(() => pairs([r1, r2], 'nope'), /--baseline nope: no such run among the inputs/);
});

test('publish: runs with nothing in common are listed as not compared; bad inputs are named', async () => {
  const dir = await tmp();
  try {
    const base = await readResult(SYNTHETIC);
    const renamed = { ...base, runId: '20250615-000000-0001', startedAt: '2025-06-15T00:00:00.000Z', points: base.points.map((p) => ({ ...p, lb: { ...p.lb, name: `${p.lb.name}-x` } })) };
    await writeFile(join(dir, 'b.json'), JSON.stringify(renamed));
    const site = await publishSite([SYNTHETIC, join(dir, 'b.json')], { out: join(dir, 'site') });
    assert.equal(site.comparisons.length, 1);
    assert.match(site.comparisons[0]!.problem!, /no point in common/);
    assert.match(await readFile(join(dir, 'site/index.html'), 'utf8'), /not compared: .*no point in common/);

    await assert.rejects(publishSite([join(dir, 'nothing-here')], { out: join(dir, 's2') }), /nothing-here: no such file or directory/);
    await mkdir(join(dir, 'empty'));
    await assert.rejects(publishSite([join(dir, 'empty')], { out: join(dir, 's3') }), /empty: no result.json in it or in its subdirectories/);
    await assert.rejects(publishSite([SYNTHETIC, SYNTHETIC], { out: join(dir, 's4') }), /run 20250614-091203-7f3a given twice/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('publish: text from the result is escaped on every page', async () => {
  const dir = await tmp();
  try {
    const base = await readResult(SYNTHETIC);
    const evil = '<img src=x onerror=alert(1)></script>';
    const r = { ...base, scenario: { ...base.scenario, name: evil }, points: base.points.map((p) => ({ ...p, lb: { ...p.lb, name: `${p.lb.name}${evil}` } })) };
    const c = scaledRun(r, { runId: '20250614-101203-beef', startedAt: '2025-06-14T10:12:03.000Z', factor: () => 1 });
    await writeFile(join(dir, 'a.json'), JSON.stringify(r));
    await writeFile(join(dir, 'b.json'), JSON.stringify(c));
    await publishSite([join(dir, 'a.json'), join(dir, 'b.json')], { out: join(dir, 'site') });
    for (const f of (await files(join(dir, 'site'))).filter((x) => x.endsWith('.html'))) {
      const html = await readFile(join(dir, 'site', f), 'utf8');
      assert.doesNotMatch(html, /<img src=x/, f);
      // Inside the inert JSON blocks "</script" must not appear either.
      assert.equal(html.split('</script>').length - 1, html.split('<script').length - 1, `${f}: a script block was closed early`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('comparison charts: both runs overlaid, the change of every point with its interval', async () => {
  const recorded = await readResult(SYNTHETIC);
  const base = scaledRun(recorded, { factor: () => 1 });
  const cand = scaledRun(recorded, { runId: 'c', factor: (lb) => (lb === 'router' ? 1.3 : 1) });
  const { comparisons } = compareRuns(base, cand);
  const t = throughputOverlaySpec(base, cand)!;
  const tv = (t.data as { values: { run: string; series: string }[] }).values;
  assert.deepEqual([...new Set(tv.map((v) => v.run))], ['base', 'candidate']);
  assert.equal(tv.length, 2 * base.points.length);
  const cdf = latencyCdfOverlaySpec(base, cand)!;
  assert.deepEqual([...new Set((cdf.data as { values: { run: string }[] }).values.map((v) => v.run))], ['base', 'candidate']);
  const rd = ratioData(comparisons);
  const router4 = rd.find((d) => d.point === 'router · backends=4' && d.metric === 'req_per_s')!;
  assert.ok(Math.abs(router4.changePct - 30) < 0.01, `router +30%, got ${router4.changePct}`);
  assert.ok(router4.lowPct <= router4.changePct && router4.changePct <= router4.highPct);
  for (const spec of [t, cdf, ratioSpec(comparisons, 0.05)!]) compile(spec);
  // A pps run against a req/s run: no common axis, no throughput overlay.
  const pps = await readResult(join(FIXTURES, 'pps-run.json'));
  assert.equal(throughputOverlaySpec(base, pps), null);
  assert.equal(ratioSpec([], 0.05), null);
  assert.match(headline(pps), /pps at \d+ backends?$/);
});

test('compare-reports --html writes the comparison page; stdout keeps the chosen format', async () => {
  const dir = await tmp();
  try {
    const { base, cand } = await pair(dir);
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(['compare-reports', base, cand, '--format', 'json', '--html', join(dir, 'html')], { out: (s) => out.push(s), err: (s) => err.push(s) });
    assert.equal(code, 10, err.join('\n'));
    assert.equal(JSON.parse(out.join('\n')).verdict, 'regressed');
    const page = join(dir, 'html/compare/20250614-091203-7f3a--20250614-101203-beef/index.html');
    assert.deepEqual(err, [`comparison page: ${page}`]);
    const html = await readFile(page, 'utf8');
    assert.match(html, /Verdict: regressed/);
    assert.doesNotMatch(html, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the page names runs by id, not by the paths given');
    // The page is made from the comparison given, not a second bootstrap of its own.
    const report = JSON.parse(out.join('\n'));
    const name = '20250614-091203-7f3a--20250614-101203-beef';
    await publishSite([base, cand], { out: join(dir, 'again'), baseline: '20250614-091203-7f3a', reports: new Map([[name, { ...report, verdict: 'improved' }]]) });
    assert.match(await readFile(join(dir, 'again/compare', name, 'index.html'), 'utf8'), /Verdict: improved/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
