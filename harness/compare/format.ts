// compare-reports output: an aligned terminal table, markdown for PR comments and CI step
// summaries, and JSON for scripts ({verdict, comparisons[]} as documented in the README).
import type { Comparison, Verdict } from './compare.ts';

export interface CompareReport {
  base: string;
  candidate: string;
  verdict: Verdict;
  comparisons: Comparison[];
  /** Run-level warnings (environment differences, unmatched points). */
  warnings: string[];
}

/** A param's value as text: objects as JSON, the rest as written. */
export const paramValue = (v: unknown) => (typeof v === 'object' ? JSON.stringify(v) : String(v));

/** "backends=4 connections=32", as every output names a point. */
export const paramsText = (p: Record<string, unknown>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${paramValue(v)}`)
    .join(' ');

/** Values as a person reads them: 3 significant digits, thousands separated. */
export function fmtValue(x: number): string {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 1 || a === 0) return Number(x.toPrecision(3)).toString();
  return x.toPrecision(3);
}

/** A ratio as a change: 1.2 → "+20.0%". */
export const pct = (r: number) => (Number.isFinite(r) ? `${r >= 1 ? '+' : ''}${(100 * (r - 1)).toFixed(1)}%` : '–');
export const fmtP = (p: number) => (!Number.isFinite(p) ? '–' : p < 0.001 ? '<0.001' : p.toFixed(3));

function rows(r: CompareReport): string[][] {
  return r.comparisons.map((c) => [c.lb, paramsText(c.params), c.metric, fmtValue(c.base), fmtValue(c.candidate), pct(c.ratio), `${pct(c.ciLow)} … ${pct(c.ciHigh)}`, fmtP(c.p), c.verdict]);
}

const HEADER = ['LB', 'params', 'metric', 'base', 'candidate', 'change', '95% CI', 'p', 'verdict'];

export function formatTable(r: CompareReport): string {
  const all = [HEADER, ...rows(r)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((row) => [...row[i]!].length)));
  const right = new Set([3, 4, 5, 7]);
  const line = (row: string[]) => row.map((cell, i) => (right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [
    `${r.candidate} vs ${r.base}: ${r.verdict.toUpperCase()}`,
    line(HEADER),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...all.slice(1).map(line),
    ...warningLines(r),
  ].join('\n');
}

/** Run-level warnings, then each comparison's (once each, named by LB and metric). */
export function allWarnings(r: CompareReport): string[] {
  return [...r.warnings, ...new Set(r.comparisons.flatMap((c) => c.warnings.map((w) => `${c.lb} ${c.metric}: ${w}`)))];
}

function warningLines(r: CompareReport): string[] {
  const all = allWarnings(r);
  return all.length ? ['', 'warnings:', ...all.map((w) => `  - ${w}`)] : [];
}

const ICON: Record<Verdict, string> = { improved: '🟢', regressed: '🔴', 'no change': '⚪', inconclusive: '🟡' };

export function formatMarkdown(r: CompareReport): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const body = rows(r).map((row, i) => `| ${row.slice(0, 8).map(esc).join(' | ')} | ${ICON[r.comparisons[i]!.verdict]} ${row[8]} |`);
  const warnings = warningLines(r).slice(2);
  return [
    `### lbbench: ${ICON[r.verdict]} ${r.verdict}`,
    '',
    `Candidate \`${r.candidate}\` vs base \`${r.base}\` — ratio of medians with a 95% bootstrap interval; p: Mann-Whitney U, Holm-adjusted per metric over the points.`,
    '',
    `| ${HEADER.join(' | ')} |`,
    `|${HEADER.map((_, i) => ([3, 4, 5, 7].includes(i) ? '---:' : '---')).join('|')}|`,
    ...body,
    ...(warnings.length ? ['', '<details><summary>Warnings</summary>', '', ...warnings.map((w) => w.replace(/^ {2}/, '')), '', '</details>'] : []),
    '',
  ].join('\n');
}

export function formatJson(r: CompareReport): string {
  return JSON.stringify(
    {
      verdict: r.verdict,
      base: r.base,
      candidate: r.candidate,
      comparisons: r.comparisons.map((c) => ({
        lb: c.lb,
        params: c.params,
        metric: c.metric,
        base: c.base,
        candidate: c.candidate,
        ratio: c.ratio,
        ciLow: c.ciLow,
        ciHigh: c.ciHigh,
        p: c.p,
        verdict: c.verdict,
        n: c.n,
        warnings: c.warnings,
      })),
      warnings: r.warnings,
    },
    null,
    2,
  );
}
