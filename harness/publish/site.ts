// `lbbench publish`: results in, a static site out —
//
//   site/index.html                      every run, newest first, and every comparison
//   site/runs/<run-id>/index.html        the run's report, plus result.json and samples.csv
//   site/compare/<base>--<cand>/index.html
//   site/assets/                         vega, vega-lite, vega-embed (from node_modules), charts.js
//
// Every link is relative and nothing is fetched from the network, so the site works from file://,
// a CI artifact or any static web server. Pages are written whole, each in one write.
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareReport, DEFAULT_COMPARE, type CompareOptions } from '../compare/compare.ts';
import type { CompareReport } from '../compare/format.ts';
import { ConfigError, PreflightError } from '../errors.ts';
import { PACKAGE_ROOT, readPackageVersion } from '../results/fingerprint.ts';
import { readResult, RESULT_FILE } from '../results/reader.ts';
import type { RunResult } from '../results/types.ts';
import { CSV_FILE } from '../results/writer.ts';
import { latencyCdfOverlaySpec, ratioSpec, throughputOverlaySpec } from '../report/compare-specs.ts';
import { reportHtml, scenarioName, type RenderedChart } from '../report/html.ts';
import { renderCharts, renderSvg, safeRunId } from '../report/index.ts';
import { summaryRows } from '../report/specs.ts';
import { comparisonHtml, indexHtml, type ComparisonEntry, type RunEntry } from './pages.ts';

export interface PublishOptions {
  out: string;
  /** Compare every other run of its scenario with this run id; default: each run with the one before it. */
  baseline?: string;
  compare?: Partial<CompareOptions>;
  /** Comparisons made already with these options, by "<base run id>--<candidate run id>". */
  reports?: ReadonlyMap<string, CompareReport>;
  log?: (line: string) => void;
  /** Fixed in tests so that two builds of the same results are byte-identical. */
  now?: Date;
}

export interface PublishedSite {
  index: string;
  runs: string[];
  comparisons: { base: string; candidate: string; file?: string; verdict?: string; problem?: string }[];
}

interface Loaded {
  result: RunResult;
  /** Where it came from: the result.json path, and its run directory when it has one. */
  file: string;
  dir?: string;
}

/** Each input is a run directory, a result.json, or a directory of run directories (results/). */
export async function loadRuns(inputs: string[]): Promise<Loaded[]> {
  const out: Loaded[] = [];
  for (const input of inputs) {
    let st;
    try {
      st = await stat(input);
    } catch {
      throw new ConfigError(`${input}: no such file or directory`, [], 'pass results/, results/<run-id> or a result.json');
    }
    if (st.isFile()) {
      out.push({ result: await readResult(input), file: input });
      continue;
    }
    if (await exists(join(input, RESULT_FILE))) {
      out.push({ result: await readResult(input), file: join(input, RESULT_FILE), dir: input });
      continue;
    }
    const dirs = (await readdir(input, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => join(input, d.name)).sort();
    const runs = [];
    for (const d of dirs) if (await exists(join(d, RESULT_FILE))) runs.push(d);
    if (!runs.length) throw new ConfigError(`${input}: no ${RESULT_FILE} in it or in its subdirectories`, [], 'pass results/ or results/<run-id>');
    for (const d of runs) out.push({ result: await readResult(d), file: join(d, RESULT_FILE), dir: d });
  }
  const seen = new Map<string, string>();
  for (const l of out) {
    const id = safeRunId(l.result, l.file);
    if (seen.has(id)) throw new ConfigError(`run ${id} given twice: ${seen.get(id)} and ${l.file}`, [], 'pass each run once');
    seen.set(id, l.file);
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** The pairs to compare: per scenario in start order, each run with its predecessor or the baseline. */
export function pairs(results: RunResult[], baseline?: string): [RunResult, RunResult][] {
  const byScenario = new Map<string, RunResult[]>();
  for (const r of results) {
    const k = scenarioName(r);
    byScenario.set(k, [...(byScenario.get(k) ?? []), r]);
  }
  const out: [RunResult, RunResult][] = [];
  if (baseline !== undefined) {
    const base = results.find((r) => r.runId === baseline);
    if (!base) throw new ConfigError(`--baseline ${baseline}: no such run among the inputs`, [], `one of: ${results.map((r) => r.runId).join(', ')}`);
    for (const r of byScenario.get(scenarioName(base))!) if (r !== base) out.push([base, r]);
    return out;
  }
  for (const runs of byScenario.values()) {
    const sorted = [...runs].sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.runId.localeCompare(b.runId));
    for (let i = 1; i < sorted.length; i++) out.push([sorted[i - 1]!, sorted[i]!]);
  }
  return out;
}

const require_ = createRequire(import.meta.url);

/** Browser builds shipped inside the npm packages (UMD, so they load from file:// without modules). */
const VENDORED: { pkg: string; file: string }[] = [
  { pkg: 'vega', file: 'vega.min.js' },
  { pkg: 'vega-lite', file: 'vega-lite.min.js' },
  { pkg: 'vega-embed', file: 'vega-embed.min.js' },
];

async function writeAssets(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const licenses: string[] = [];
  for (const { pkg, file } of VENDORED) {
    // Each package's main entry sits in its build/ directory, next to the browser bundle.
    const build = dirname(require_.resolve(pkg));
    const src = join(build, file);
    if (!(await exists(src))) throw new PreflightError(`${src} is missing`, 'run `npm ci` (the site vendors it from node_modules)');
    await copyFile(src, join(dir, file));
    const license = await readFile(join(build, '..', 'LICENSE'), 'utf8').catch(() => '');
    licenses.push(`${pkg}\n${'='.repeat(pkg.length)}\n${license || 'see the package on npm'}\n`);
  }
  await writeFile(join(dir, 'LICENSES.txt'), licenses.join('\n'));
  await copyFile(fileURLToPath(new URL('./charts.js', import.meta.url)), join(dir, 'charts.js'));
}

async function comparisonCharts(base: RunResult, cand: RunResult, report: NonNullable<ComparisonEntry['report']>, threshold: number): Promise<RenderedChart[]> {
  const defs = [
    { id: 'change', title: 'Change per point and metric', caption: "Every comparison's change (dot) with its 95% interval (line), coloured by verdict; the grey band is the noise threshold. A line wholly outside the band on the worse side, with a significant test, is a regression.", spec: ratioSpec(report.comparisons, threshold) },
    { id: 'throughput', title: 'Throughput vs. number of backends, both runs', caption: 'Median over repetitions per load balancer; the base run dashed, the candidate solid, the band each run\'s min–max.', spec: throughputOverlaySpec(base, cand) },
    { id: 'latency-cdf', title: 'Latency CDF, both runs', caption: 'Share of requests (y) completed within a latency (x, log scale), each percentile the median over repetitions; base dashed, candidate solid. A curve further right is slower.', spec: latencyCdfOverlaySpec(base, cand) },
  ];
  const out: RenderedChart[] = [];
  for (const d of defs) if (d.spec) out.push({ chart: { ...d, spec: d.spec }, svg: await renderSvg(d.spec) });
  return out;
}

export async function publishSite(inputs: string[], opts: PublishOptions): Promise<PublishedSite> {
  const log = opts.log ?? (() => {});
  const cmp = { ...DEFAULT_COMPARE, ...opts.compare };
  const loaded = await loadRuns(inputs);
  const out = opts.out;
  await mkdir(out, { recursive: true });
  await writeAssets(join(out, 'assets'));
  const nav = [{ href: '../../index.html', text: '← all runs' }];
  const page = { assets: '../../assets', nav };

  const runs: RunEntry[] = [];
  for (const l of loaded) {
    const id = l.result.runId;
    const dir = join(out, 'runs', id);
    await mkdir(dir, { recursive: true });
    const extra = [
      { href: 'result.json', text: 'result.json' },
      ...(l.dir && (await exists(join(l.dir, CSV_FILE))) ? [{ href: CSV_FILE, text: CSV_FILE }] : []),
    ];
    await writeFile(join(dir, 'index.html'), reportHtml(l.result, await renderCharts(l.result), summaryRows(l.result), { ...page, nav: [...nav, ...extra] }));
    await copyFile(l.file, join(dir, 'result.json'));
    if (extra.length > 1) await copyFile(join(l.dir!, CSV_FILE), join(dir, CSV_FILE));
    runs.push({ result: l.result, href: `runs/${id}/index.html` });
    log(`run ${id}: runs/${id}/index.html`);
  }

  const comparisons: ComparisonEntry[] = [];
  const summary: PublishedSite['comparisons'] = [];
  for (const [base, cand] of pairs(loaded.map((l) => l.result), opts.baseline)) {
    const name = `${base.runId}--${cand.runId}`;
    const href = `compare/${name}/index.html`;
    let report;
    try {
      report = opts.reports?.get(name) ?? compareReport({ label: base.runId, result: base }, { label: cand.runId, result: cand }, cmp);
    } catch (e) {
      // Two runs of a scenario that was edited in between may share no point: say so on the index.
      if (!(e instanceof ConfigError)) throw e;
      comparisons.push({ base, candidate: cand, href, problem: e.message });
      summary.push({ base: base.runId, candidate: cand.runId, problem: e.message });
      log(`compare ${name}: not compared: ${e.message}`);
      continue;
    }
    const charts = await comparisonCharts(base, cand, report, cmp.threshold);
    const html = comparisonHtml({ base, candidate: cand, report, baseHref: `../../runs/${base.runId}/index.html`, candidateHref: `../../runs/${cand.runId}/index.html` }, charts, cmp.threshold, page);
    await mkdir(join(out, 'compare', name), { recursive: true });
    await writeFile(join(out, href), html);
    comparisons.push({ base, candidate: cand, href, report });
    summary.push({ base: base.runId, candidate: cand.runId, file: join(out, href), verdict: report.verdict });
    log(`compare ${name}: ${report.verdict}`);
  }

  const index = join(out, 'index.html');
  const version = readPackageVersion(PACKAGE_ROOT);
  await writeFile(index, indexHtml(runs, comparisons, { assets: 'assets', generatedAt: (opts.now ?? new Date()).toISOString(), version }));
  return { index, runs: runs.map((r) => join(out, r.href)), comparisons: summary };
}
