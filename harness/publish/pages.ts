// The published site's own pages: the index of runs and one page per comparison. Pure: results
// and comparisons in, HTML out (the run pages are the report's own, see report/html.ts).
import { allWarnings, fmtP, fmtValue, paramsText, pct, type CompareReport } from '../compare/format.ts';
import type { RunResult } from '../results/types.ts';
import { escapeHtml, figureHtml, fmtNum, pageHtml, scenarioName, statusHtml, type PageOptions, type RenderedChart } from '../report/html.ts';
import { largestBackends, rateUnit, summaryRows } from '../report/specs.ts';

export interface RunEntry {
  result: RunResult;
  /** Relative to the site root. */
  href: string;
}

export interface ComparisonEntry {
  base: RunResult;
  candidate: RunResult;
  href: string;
  /** Absent when the two runs could not be compared; then `problem` says why. */
  report?: CompareReport;
  problem?: string;
}

/** "router 12,345 · xdp 11,002 req/s at 4 backends": what a reader scans the index for. */
export function headline(result: RunResult): string {
  const n = largestBackends(result);
  if (n === undefined) return 'no measured points';
  const unit = rateUnit(result);
  const digits = unit === 'Gbit/s' ? 2 : 0;
  const rows = summaryRows(result).filter((r) => r.backends === n && r.error === undefined && r.repetitions > 0);
  return `${rows.map((r) => `${r.series} ${fmtNum(r.rps.median, digits)}`).join(' · ')} ${unit} at ${n} backend${n === 1 ? '' : 's'}`;
}

export function hostLine(result: RunResult): string {
  const h = result.host;
  return `${h.hostname} · Linux ${h.kernel} · ${h.cpuModel} × ${h.cpus}`;
}

const verdictClass = (v: string) => `verdict v-${v.replace(/\s+/g, '-')}`;

export function indexHtml(runs: RunEntry[], comparisons: ComparisonEntry[], opts: PageOptions & { generatedAt: string; version: string }): string {
  const newestFirst = [...runs].sort((a, b) => b.result.startedAt.localeCompare(a.result.startedAt));
  const runRows = newestFirst
    .map(({ result: r, href }) => {
      const lbs = [...new Set(r.points.map((p) => p.lb.name))];
      return `<tr><td><a href="${escapeHtml(href)}">${escapeHtml(scenarioName(r))}</a><br><code class="note">${escapeHtml(r.runId)}</code></td><td>${escapeHtml(r.startedAt)}</td><td>${statusHtml(r)}</td><td>${escapeHtml(hostLine(r))}</td><td>${escapeHtml(lbs.join(', '))}</td><td>${escapeHtml(headline(r))}</td></tr>`;
    })
    .join('\n');
  const cmpRows = comparisons
    .map((c) => {
      const v = c.report ? `<span class="${verdictClass(c.report.verdict)}">${escapeHtml(c.report.verdict)}</span>` : `<span class="warn">not compared: ${escapeHtml(c.problem ?? '')}</span>`;
      const link = c.report ? `<a href="${escapeHtml(c.href)}">${escapeHtml(c.candidate.runId)} vs ${escapeHtml(c.base.runId)}</a>` : `${escapeHtml(c.candidate.runId)} vs ${escapeHtml(c.base.runId)}`;
      return `<tr><td>${escapeHtml(scenarioName(c.candidate))}</td><td>${link}</td><td>${v}</td></tr>`;
    })
    .join('\n');
  const body = `<header><h1>lbbench results</h1><p class="meta">${runs.length} run${runs.length === 1 ? '' : 's'}, ${comparisons.length} comparison${comparisons.length === 1 ? '' : 's'} · generated ${escapeHtml(opts.generatedAt)} by lbbench ${escapeHtml(opts.version)}</p></header>
<h2 id="runs">Runs</h2>
<table><thead><tr><th>Scenario / run</th><th>Started</th><th>Status</th><th>Host</th><th>Load balancers</th><th>Headline (median)</th></tr></thead><tbody>
${runRows}
</tbody></table>
<h2 id="comparisons">Comparisons</h2>
${comparisons.length ? `<p class="note">Each run against the one before it of the same scenario (or against the chosen baseline).</p><table><thead><tr><th>Scenario</th><th>Candidate vs base</th><th>Verdict</th></tr></thead><tbody>\n${cmpRows}\n</tbody></table>` : '<p>No two runs of the same scenario: nothing to compare.</p>'}
<footer>Static pages: they work from a file or any web server, with no network. Charts are SVG; with JavaScript they gain tooltips and export.</footer>`;
  return pageHtml('lbbench results', body, opts);
}

export function comparisonHtml(
  entry: Required<Pick<ComparisonEntry, 'base' | 'candidate' | 'report'>> & { baseHref: string; candidateHref: string },
  charts: RenderedChart[],
  threshold: number,
  opts: PageOptions,
): string {
  const { base, candidate, report } = entry;
  const rows = report.comparisons
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.lb)}</td><td>${escapeHtml(paramsText(c.params))}</td><td>${escapeHtml(c.metric)}</td><td class="num">${escapeHtml(fmtValue(c.base))}</td><td class="num">${escapeHtml(fmtValue(c.candidate))}</td><td class="num">${pct(c.ratio)}</td><td class="num">${pct(c.ciLow)} … ${pct(c.ciHigh)}</td><td class="num">${fmtP(c.p)}</td><td class="num">${c.n.base} / ${c.n.candidate}</td><td><span class="${verdictClass(c.verdict)}">${escapeHtml(c.verdict)}</span></td></tr>`,
    )
    .join('\n');
  const warnings = allWarnings(report);
  const run = (r: RunResult, href: string) => `<a href="${escapeHtml(href)}">${escapeHtml(r.runId)}</a> (${escapeHtml(r.startedAt)}, ${escapeHtml(hostLine(r))})`;
  const body = `<header>
<h1>${escapeHtml(scenarioName(candidate))}: candidate vs base</h1>
<p class="meta">Base ${run(base, entry.baseHref)}<br>Candidate ${run(candidate, entry.candidateHref)}</p>
<div class="${verdictClass(report.verdict)}" role="status">Verdict: ${escapeHtml(report.verdict)}</div>
</header>
<h2 id="charts">Charts</h2>
${charts.map(({ chart, svg }) => figureHtml(chart.id, chart.title, chart.caption, svg, chart.spec, opts)).join('\n')}
<h2 id="table">Every comparison</h2>
<p class="note">Change: ratio of medians (candidate / base) with its 95% percentile-bootstrap interval; p: two-sided Mann-Whitney U, Holm-adjusted per metric over the points; n: repetitions. Noise threshold ±${(100 * threshold).toFixed(0)}%. Latency and loss: lower is better.</p>
<table><thead><tr><th>LB</th><th>Params</th><th>Metric</th><th class="num">Base</th><th class="num">Candidate</th><th class="num">Change</th><th class="num">95% CI</th><th class="num">p</th><th class="num">n</th><th>Verdict</th></tr></thead><tbody>
${rows}
</tbody></table>
${warnings.length ? `<h2 id="warnings">Warnings</h2><ul>${warnings.map((w) => `<li class="warn">${escapeHtml(w)}</li>`).join('')}</ul>` : ''}
<footer>Generated by lbbench ${escapeHtml(candidate.host.lbbenchVersion)}; the same comparison on the command line: <code>lbbench compare-reports BASE CANDIDATE --threshold ${threshold}</code>.</footer>`;
  return pageHtml(`${scenarioName(candidate)}: ${candidate.runId} vs ${base.runId} — lbbench`, body, opts);
}
