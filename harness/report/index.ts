// Entry points for `lbbench report` and the end of `lbbench run`. Both go through result files
// (never in-memory state of a run), so a report can always be regenerated from results/<run-id>/.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { readResult } from '../results/reader.ts';
import type { RunResult } from '../results/types.ts';
import { fmtMs, fmtNum, limitText, reportHtml, scenarioName, type RenderedChart } from './html.ts';
import { renderSvg } from './render.ts';
import { charts, fmtPct, rateUnit, summaryRows } from './specs.ts';

export { renderSvg } from './render.ts';
export { charts, summaryRows, type Chart, type SummaryRow } from './specs.ts';

/** Writes `outDir/index.html` and returns its path. */
export async function renderReport(result: RunResult, outDir: string): Promise<string> {
  const html = reportHtml(result, await renderCharts(result), summaryRows(result));
  await mkdir(outDir, { recursive: true });
  const file = join(outDir, 'index.html');
  await writeFile(file, html);
  return file;
}

/** Reads results/<run-id>/ (or its result.json) and writes `reportsRoot/<runId>/index.html`. */
export async function reportFromResultDir(resultDir: string, reportsRoot: string): Promise<string> {
  const result = await readResult(resultDir);
  return renderReport(result, join(reportsRoot, safeRunId(result, resultDir)));
}

/** The run id becomes a path component; a hand-edited file must not write outside the output. */
export function safeRunId(result: RunResult, file: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(result.runId)) {
    throw new ConfigError(`${file}: run id ${JSON.stringify(result.runId)} is not usable as a directory name`);
  }
  return result.runId;
}

/** Every chart this result has, drawn as static SVG. */
export async function renderCharts(result: RunResult): Promise<RenderedChart[]> {
  const rendered: RenderedChart[] = [];
  for (const chart of charts(result)) rendered.push({ chart, svg: await renderSvg(chart.spec) });
  return rendered;
}

/** Gbit/s needs decimals; counts of requests and packets do not. */
function fmtRate(n: number): string {
  return Number.isFinite(n) && n < 100 && !Number.isInteger(n) ? n.toFixed(2) : fmtNum(n);
}

/** Plain-text summary for the terminal: aligned columns, numbers right-aligned. */
export function summaryTable(result: RunResult): string {
  const rows = summaryRows(result);
  const header = ['LB', 'backends', rateUnit(result), 'min–max', 'CV%', 'p50 ms', 'p99 ms', 'errors', 'reps', 'vs router', 'limit', 'CPU-s/M', 'notes'];
  const right = [false, true, true, true, true, true, true, true, true, true, false, true, false];
  const body = rows.map((r) => [
    r.series,
    String(r.backends),
    fmtRate(r.rps.median),
    `${fmtRate(r.rps.min)}–${fmtRate(r.rps.max)}`,
    fmtNum(r.rps.cvPct, 1),
    fmtMs(r.latencyUs.p50),
    fmtMs(r.latencyUs.p99),
    fmtNum(r.errorsTotal),
    String(r.repetitions),
    r.vsBaseline === undefined ? '' : fmtPct(r.vsBaseline),
    limitText(r),
    r.cpuPerMillion === undefined ? '' : fmtNum(r.cpuPerMillion, 1),
    [r.error !== undefined ? `${r.skipped ? 'SKIPPED' : 'FAILED'}: ${r.error.split('\n')[0]}` : '', ...r.warnings, ...r.notes].filter(Boolean).join('; '),
  ]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => [...row[i]!].length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => {
        const pad = ' '.repeat(widths[i]! - [...cell].length);
        return right[i] ? pad + cell : i === row.length - 1 ? cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  const title = `${scenarioName(result)} · run ${result.runId} · ${result.status}`;
  const out = [title, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  if (result.status !== 'complete') out.push(`(run ${result.status}: results are partial)`);
  return out.join('\n');
}
