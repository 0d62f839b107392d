// compare-reports is trustworthy by construction (issue 6): on real runs of this host, the same
// scenario twice is "no change", and a regression injected on purpose (every link shaped by
// topology.linkRate) is found — and, the other way round, reported as an improvement.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import type { Comparison } from '../../harness/compare/compare.ts';
import type { RunResult } from '../../harness/results/types.ts';
import { missingCapability, runScenarioCli } from './helpers.ts';

// Router (plain forwarding, the cheapest datapath) to one backend, so what varies is the host, not
// an LB. wrk (one thread, 4 connections), the backend's nginx and so the whole forwarding path
// share one CPU: spread over this VM's two, every request crosses vCPUs by IPI and the
// repetitions' CV doubles (6–12% against 3–7% measured here). No samplers: they would add a
// second per repetition, and the bottleneck verdicts they feed are not what is compared here.
const CHUNK = (topology: string, repetitions = 4) => [
  'name: compare-trust',
  `topology: ${topology}`,
  'loadBalancers: [{kind: router}]',
  'load: {generator: wrk, duration: 1s, warmup: 0.3s, connections: 4, threads: 1}',
  `repetitions: ${repetitions}`,
  'cpus: {generator: "1", servers: "1"}',
  'samplers: false',
];
// Each side is 16 repetitions, measured as four runs of 4, and the two sides' runs alternate
// (A B B A A B B A): this VM's speed drifts over tens of seconds (its neighbours, not its own
// load: stretches at 60–70% of its usual rate), so two runs measured one after the other differ
// by more than their repetitions vary — an A/A of back-to-back runs was "inconclusive" in most
// tries here. Interleaved, a slow stretch falls on both sides; ABBA cancels a steady drift as
// well. Each side's runs are then joined into one result (their repetitions, in the order
// measured) for compare-reports.
const ORDER = 'ABBAABBA';
// The default band is 5%; the repetitions vary by 3–7% (CV) on this 2-core VM when it is quiet,
// and 16 a side then leave an interval about ±5–10% wide around the median ratio. With a 10% band
// the A/A is "no change" when nothing changed, and the injected regression is still several bands
// away.
const THRESHOLD = '0.10';
// Small enough that wrk's short responses fill it: about a third of what the unshaped path carries.
const SHAPED = '{kind: netns, linkRate: 20mbit}';

type Run = Awaited<ReturnType<typeof runScenarioCli>>;

/** CPU 0's jiffies: nothing of these runs is pinned there, so its busy share is mostly someone else's work. */
const cpu0 = () => readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu0 '))!.trim().split(/\s+/).slice(1).map(Number);
const busySince = (from: number[]) => {
  const d = cpu0().map((x, i) => x - from[i]!);
  return 1 - (d[3]! + d[4]!) / d.reduce((a, b) => a + b, 0);
};

/** Several runs of one scenario as one result: the first run's header, every run's repetitions. */
async function joinRuns(runs: Run[], dir: string): Promise<string> {
  for (const r of runs) assert.equal(r.code, 0, r.out);
  const joined = structuredClone(runs[0]!.raw) as RunResult;
  joined.points[0]!.repetitions = runs.flatMap((r) => (r.raw as RunResult).points[0]!.repetitions).map((rep, index) => ({ ...rep, index }));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'result.json'), JSON.stringify(joined));
  return dir;
}

async function compare(base: string, cand: string): Promise<{ code: number; json: { verdict: string; comparisons: Comparison[]; warnings: string[] } }> {
  const out: string[] = [];
  const code = await main(['compare-reports', base, cand, '--format', 'json', '--threshold', THRESHOLD], { out: (s) => out.push(s), err: (s) => out.push(s) });
  return { code, json: JSON.parse(out.join('\n')) };
}

const show = (c: Comparison) => `${c.metric}: ratio ${c.ratio.toFixed(3)} [${c.ciLow.toFixed(3)}, ${c.ciHigh.toFixed(3)}] width ${(c.ciHigh - c.ciLow).toFixed(3)} p ${c.p.toFixed(3)} ${c.verdict}`;
const metric = (cs: Comparison[], name: string) => cs.find((c) => c.metric === name)!;

describe('compare-reports on real runs', { skip: missingCapability(['ip', 'tc', 'nginx', 'wrk']) }, () => {
  const runs: Run[] = [];
  const measure = async (topology: string, repetitions?: number) => {
    const r = await runScenarioCli(CHUNK(topology, repetitions));
    runs.push(r);
    return r;
  };
  let work: string;
  let a: string;
  let b: string;
  let since: number[];
  before(async () => {
    since = cpu0();
    work = await mkdtemp(join(tmpdir(), 'lbb-trust-'));
    const sides: Record<string, Run[]> = { A: [], B: [] };
    for (const side of ORDER) sides[side]!.push(await measure('{kind: netns}'));
    [a, b] = await Promise.all([joinRuns(sides.A!, join(work, 'a')), joinRuns(sides.B!, join(work, 'b'))]);
  }, { timeout: 120_000 });
  after(() => Promise.all([...runs.map((r) => r.work), work].filter(Boolean).map((d) => rm(d, { recursive: true, force: true }))));

  test('A/A: the same scenario twice is no change', { timeout: 30_000 }, async (t) => {
    const { code, json } = await compare(a, b);
    // When this fails, whether something else ran beside the runs is the first question.
    const busy = `CPU 0 busy ${(100 * busySince(since)).toFixed(0)}% of the time meanwhile`;
    t.diagnostic(busy);
    for (const c of json.comparisons) t.diagnostic(`A/A ${show(c)}`);
    // Never a false alarm: no metric regressed or improved, whatever the host did.
    assert.equal(code, 0, `${busy}\n${JSON.stringify(json, null, 2)}`);
    assert.deepEqual(json.comparisons.filter((c) => c.verdict === 'regressed' || c.verdict === 'improved').map(show), [], busy);
    assert.deepEqual(json.warnings, [], 'same host, same topology');
    // "no change" is a claim of confidence, which the numbers support only when the host held
    // still. For an hour and more at a time this VM's speed swings by a third within seconds
    // (its neighbours; nothing the guest sees, no steal time): repetitions then vary by 14–20%,
    // compare-reports says a side is noisy (CV > 10%) and answers "inconclusive". That is the
    // honest answer, and then the one accepted (the no-false-alarm checks above still hold).
    // Without that flag, the median ratio must sit inside the band, and the verdict be "no
    // change" — or "inconclusive" only in the narrow case where drift between the interleaved runs
    // made a small difference significant while its interval still lies within twice the band
    // (seen once in four CI runs: ratio 1.038 [0.991, 1.111], p 0.035). A median off by more than
    // the band, or a wide interval, fails.
    const rps = metric(json.comparisons, 'req_per_s');
    const noisy = rps.warnings.filter((w) => / CV [\d.]+% — noisy/.test(w));
    if (noisy.length) t.diagnostic(`req/s ${rps.verdict}: ${noisy.join('; ')}`);
    else {
      const band = Number(THRESHOLD);
      assert.ok(Math.abs(rps.ratio - 1) < band, `${show(rps)}; ${busy}`);
      if (rps.verdict !== 'no change') {
        assert.equal(rps.verdict, 'inconclusive', `${show(rps)}; ${busy}`);
        assert.ok(rps.p < 0.05 && rps.ciLow >= 1 - 2 * band && rps.ciHigh <= 1 + 2 * band, `inconclusive only for a small significant drift: ${show(rps)}; ${busy}`);
      }
    }
  });

  test('every link shaped: regressed as the candidate (exit 10), improved as the base (exit 0)', { timeout: 45_000 }, async (t) => {
    // One run of 6: the change is many bands wide, drift does not matter here.
    const shaped = await joinRuns([await measure(SHAPED, 6)], join(work, 'shaped'));

    const worse = await compare(a, shaped);
    for (const c of worse.json.comparisons) t.diagnostic(`shaped vs unshaped ${show(c)}`);
    assert.equal(worse.code, 10, JSON.stringify(worse.json, null, 2));
    assert.equal(worse.json.verdict, 'regressed');
    const rps = metric(worse.json.comparisons, 'req_per_s');
    assert.equal(rps.verdict, 'regressed', show(rps));
    assert.ok(rps.ciHigh < 0.9, `the whole interval beyond the band: ${show(rps)}`);
    // Requests wait in the shaper's queue: the median latency cannot have got better.
    assert.notEqual(metric(worse.json.comparisons, 'latency.p50').verdict, 'improved');
    assert.ok(worse.json.warnings.some((w) => w.startsWith('topology linkRate differs: unset vs 20000000')), worse.json.warnings.join('\n'));

    const better = await compare(shaped, a);
    for (const c of better.json.comparisons) t.diagnostic(`unshaped vs shaped ${show(c)}`);
    assert.equal(better.code, 0, JSON.stringify(better.json, null, 2));
    assert.equal(metric(better.json.comparisons, 'req_per_s').verdict, 'improved');
  });
});
