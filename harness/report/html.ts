// The self-contained report page: inline CSS and SVG, no scripts, no external URL, so it opens
// offline, can be mailed or attached to CI, and can't phone home. Everything from the result file
// is escaped — LB config dumps and error messages are arbitrary text.
import type { RunResult } from '../results/types.ts';
import { fmtPct, rateUnit, type Chart, type SummaryRow } from './specs.ts';

export function escapeHtml(s: unknown): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function fmtNum(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** µs → ms with precision that suits sub-millisecond and multi-second latencies alike. */
export function fmtMs(us: number): string {
  if (!Number.isFinite(us)) return '–';
  const ms = us / 1000;
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}

export function scenarioName(result: RunResult): string {
  const n = result.scenario?.name;
  if (typeof n === 'string' && n) return n;
  if (result.scenarioFile) return result.scenarioFile.split('/').pop()!.replace(/\.ya?ml$/, '');
  return result.runId;
}

const STATUS_TEXT: Record<RunResult['status'], string> = {
  complete: 'Complete',
  interrupted: 'Interrupted — the results below are partial',
  failed: 'Failed — the results below are partial',
  running: 'Did not finish — the process stopped before recording an end (crash or kill?); results below are partial',
};

const CSS = `
:root { color-scheme: light; --fg:#1d2330; --muted:#5b6475; --line:#d9dde5; --bad:#b42318; --badbg:#fef3f2; --warn:#93370d; --warnbg:#fffaeb; --ok:#067647; --okbg:#ecfdf3; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0 auto; padding: 24px 32px 64px; max-width: 1200px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.status { display: inline-block; padding: 6px 12px; border-radius: 6px; font-weight: 600; margin: 8px 0; }
.status.complete { background: var(--okbg); color: var(--ok); }
.status.partial { background: var(--badbg); color: var(--bad); border: 1px solid var(--bad); }
.run-error { white-space: pre-wrap; background: var(--badbg); color: var(--bad); padding: 8px 12px; border-radius: 6px; }
dl.fp { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.fp dt { color: var(--muted); }
dl.fp dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; overflow-wrap: anywhere; }
figure { margin: 20px 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 14px; max-width: 80ch; }
table { border-collapse: collapse; font-size: 14px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.error td { background: var(--badbg); }
.tag-error { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-size: 13px; }
.note { color: var(--muted); font-size: 13px; }
pre { background: #f6f7f9; padding: 10px 12px; border-radius: 6px; overflow-x: auto; font-size: 12.5px; line-height: 1.4; }
details { margin: 6px 0; }
summary { cursor: pointer; }
.errors li { margin-bottom: 8px; }
.errors pre { background: var(--badbg); color: var(--bad); }
footer { color: var(--muted); font-size: 13px; margin-top: 48px; }
nav { font-size: 14px; margin-bottom: 12px; }
.verdict { display: inline-block; padding: 6px 12px; border-radius: 6px; font-weight: 600; margin: 8px 0; }
.v-improved { background: var(--okbg); color: var(--ok); }
.v-regressed { background: var(--badbg); color: var(--bad); border: 1px solid var(--bad); }
.v-inconclusive { background: var(--warnbg); color: var(--warn); }
.v-no-change { background: #f2f4f7; color: #344054; }
td .verdict { padding: 1px 8px; margin: 0; font-weight: 500; white-space: nowrap; }
`;

function fingerprintHtml(result: RunResult): string {
  const h = result.host;
  const git = h.git ? `${h.git.rev.slice(0, 12)}${h.git.dirty ? ' (dirty tree)' : ''}` : 'not a git checkout';
  const mem = h.memoryBytes > 0 ? `${(h.memoryBytes / 2 ** 30).toFixed(1)} GiB` : 'unknown';
  const rows: [string, string][] = [
    ['Host', h.hostname],
    ['Kernel', h.kernel],
    ['CPU', `${h.cpuModel} × ${h.cpus}`],
    ['Memory', mem],
    ['Node.js', h.node],
    ['lbbench', `${h.lbbenchVersion}, git ${git}`],
    ...Object.entries(h.tools ?? {}).map(([k, v]) => [`tool: ${k}`, v] as [string, string]),
  ];
  const sys = Object.entries(h.sysctls ?? {});
  const env = result.environment ? `<details><summary>Run environment</summary><pre>${escapeHtml(JSON.stringify(result.environment, null, 2))}</pre></details>` : '';
  return `<dl class="fp">${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>
${sys.length ? `<details><summary>Sysctls</summary><dl class="fp">${sys.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl></details>` : ''}
${env}`;
}

/** "generator" or "generator (2/3)" when the repetitions disagreed. */
export function limitText(r: SummaryRow): string {
  if (!r.limit) return '';
  return r.limit.count === r.limit.of ? r.limit.verdict : `${r.limit.verdict} (${r.limit.count}/${r.limit.of})`;
}

function tableHtml(rows: SummaryRow[], unit: string): string {
  if (!rows.length) return '<p>No points were recorded.</p>';
  const head = `<tr><th>Load balancer</th><th class="num">Backends</th><th class="num">${escapeHtml(unit === 'req/s' ? 'Req/s' : unit)} (median)</th><th class="num">Min–max</th><th class="num">CV %</th><th class="num">p50 ms</th><th class="num">p99 ms</th><th class="num">Errors</th><th class="num">Reps</th><th class="num" title="median rate as a share of the plain-router baseline at the same backends, this run">vs router</th><th title="what limited the point, from the samplers (repetitions with that verdict)">Limit</th><th class="num" title="CPU-seconds on the LB node per million">CPU-s/M</th><th>Notes</th></tr>`;
  const body = rows
    .map((r) => {
      const notes = [
        r.error !== undefined ? `<span class="tag-error">${r.skipped ? 'skipped' : 'failed'}: ${escapeHtml(r.error.split('\n')[0])}</span>` : '',
        ...r.warnings.map((w) => `<span class="warn">${escapeHtml(w)}</span>`),
        ...r.notes.map((n) => `<span class="note">${escapeHtml(n)}</span>`),
      ].filter(Boolean);
      return `<tr${r.error !== undefined ? ' class="error"' : ''}><td>${escapeHtml(r.series)}</td><td class="num">${r.backends}</td><td class="num">${fmtNum(r.rps.median, unit === 'Gbit/s' ? 2 : 0)}</td><td class="num">${fmtNum(r.rps.min, unit === 'Gbit/s' ? 2 : 0)}–${fmtNum(r.rps.max, unit === 'Gbit/s' ? 2 : 0)}</td><td class="num">${fmtNum(r.rps.cvPct, 1)}</td><td class="num">${fmtMs(r.latencyUs.p50)}</td><td class="num">${fmtMs(r.latencyUs.p99)}</td><td class="num">${fmtNum(r.errorsTotal)}</td><td class="num">${r.repetitions}</td><td class="num">${r.vsBaseline === undefined ? '' : fmtPct(r.vsBaseline)}</td><td>${limitText(r)}</td><td class="num">${r.cpuPerMillion === undefined ? '' : fmtNum(r.cpuPerMillion, 1)}</td><td>${notes.join('<br>')}</td></tr>`;
    })
    .join('\n');
  return `<table><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

function errorsHtml(result: RunResult): string {
  const failed = result.points.filter((p) => p.error !== undefined);
  if (!failed.length) return '';
  return `<h2 id="errors">Point errors</h2><ul class="errors">${failed
    .map((p) => `<li><strong>${escapeHtml(p.id)}</strong> (${p.repetitions.length} repetitions kept)<pre>${escapeHtml(p.error)}</pre></li>`)
    .join('')}</ul>`;
}

function configsHtml(result: RunResult): string {
  const described = result.points.filter((p) => p.lbDescribe);
  const scenario = `<details><summary>Resolved scenario</summary><pre>${escapeHtml(JSON.stringify(result.scenario, null, 2))}</pre></details>`;
  return `<h2 id="config">Load balancer configuration</h2>
${described
  .map(
    (p) =>
      `<details><summary>${escapeHtml(p.id)} — ${escapeHtml(p.lbDescribe!.version)}</summary><pre>${escapeHtml(p.lbDescribe!.config)}</pre></details>`,
  )
  .join('\n')}
${described.length ? '' : '<p>No configuration dumps were recorded.</p>'}
${scenario}`;
}

export interface RenderedChart {
  chart: Omit<Chart, 'id'> & { id: string };
  /** Trusted: produced by vega from our own spec (vega escapes the text it draws). */
  svg: string;
}

/**
 * How a page is published. Without it a page is one self-contained file with no script at all;
 * with it (lbbench publish) the same page also carries each chart's spec as inert JSON and loads
 * the site's vendored scripts, which turn the SVG into an interactive chart where JavaScript runs.
 */
export interface PageOptions {
  /** Relative URL of the site's assets/ directory, e.g. "../../assets". */
  assets?: string;
  /** Links shown above the title, e.g. back to the site's index. */
  nav?: { href: string; text: string }[];
}

/** JSON inside <script type="application/json">: only "</script" and "<!--" could end or confuse it. */
function inertJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

export function figureHtml(id: string, title: string, caption: string, svg: string, spec: unknown, opts: PageOptions = {}): string {
  const data = opts.assets ? `<script type="application/json" id="spec-${escapeHtml(id)}">${inertJson(spec)}</script>` : '';
  return `<figure id="chart-${escapeHtml(id)}"${opts.assets ? ` data-spec="spec-${escapeHtml(id)}"` : ''}><div class="chart">${svg}</div>${data}<figcaption><strong>${escapeHtml(title)}.</strong> ${escapeHtml(caption)}</figcaption></figure>`;
}

/** The shell every page shares: head, CSS, the content-security policy, and optional scripts. */
export function pageHtml(title: string, body: string, opts: PageOptions = {}): string {
  // Scripts only from the site itself ('self'); data blocks are not scripts, so no inline script
  // is needed. vega-embed runs with its expression interpreter, so no 'unsafe-eval' either.
  const csp = `default-src 'none'; style-src 'unsafe-inline'; img-src data:${opts.assets ? "; script-src 'self'" : ''}`;
  const scripts = opts.assets
    ? ['vega.min.js', 'vega-lite.min.js', 'vega-embed.min.js', 'charts.js'].map((f) => `<script src="${escapeHtml(`${opts.assets}/${f}`)}" defer></script>`).join('\n')
    : '';
  const nav = opts.nav?.length ? `<nav>${opts.nav.map((l) => `<a href="${escapeHtml(l.href)}">${escapeHtml(l.text)}</a>`).join(' · ')}</nav>\n` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
${scripts}
</head>
<body>
${nav}${body}
</body>
</html>
`;
}

export function statusHtml(result: RunResult): string {
  const partial = result.status !== 'complete';
  return `<div class="status ${partial ? 'partial' : 'complete'}" role="status">Status: ${escapeHtml(STATUS_TEXT[result.status] ?? result.status)}</div>`;
}

export function reportHtml(result: RunResult, rendered: RenderedChart[], rows: SummaryRow[], opts: PageOptions = {}): string {
  const name = scenarioName(result);
  const when = `started ${result.startedAt}${result.finishedAt ? `, finished ${result.finishedAt}` : ''}`;
  const figures = rendered.map(({ chart, svg }) => figureHtml(chart.id, chart.title, chart.caption, svg, chart.spec, opts)).join('\n');
  const body = `<header>
<h1>${escapeHtml(name)}</h1>
<p class="meta">Run <code>${escapeHtml(result.runId)}</code> · ${escapeHtml(when)}${result.scenarioFile ? ` · ${escapeHtml(result.scenarioFile)}` : ''}</p>
${statusHtml(result)}
${result.error ? `<pre class="run-error">${escapeHtml(result.error)}</pre>` : ''}
</header>
<h2 id="host">Host</h2>
${fingerprintHtml(result)}
<h2 id="charts">Charts</h2>
${figures || '<p>No measured points: nothing to chart.</p>'}
<h2 id="summary">Summary</h2>
${tableHtml(rows, rateUnit(result))}
${errorsHtml(result)}
${configsHtml(result)}
<footer>Generated by lbbench ${escapeHtml(result.host.lbbenchVersion)} from result format ${escapeHtml(result.formatVersion)}. ${opts.assets ? 'The result file and CSV are next to this page.' : "Raw tool output is in the run's <code>raw/</code> directory."}</footer>`;
  return pageHtml(`${name} — lbbench ${result.runId}`, body, opts);
}
