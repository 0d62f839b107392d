// npm run bench:ecmp — ECMP update delay: time from a backend change being issued (static: the
// route written; BGP: a speaker announcing or withdrawing) until the LB node's kernel route shows
// the new nexthop set, over many changes, as a histogram (the thesis' Fig. 6.3 method).
// Printed, never asserted: the delays are this machine's and bird's timers'.
import { Teardown } from '../harness/teardown.ts';
import { buildNetnsTopology } from '../harness/topology/netns.ts';
import { ecmp, type EcmpDeployed } from '../harness/lb/ecmp.ts';
import { LbSpec } from '../harness/scenario/schema.ts';
import { quantile } from '../harness/stats/descriptive.ts';

const CHANGES = Number(process.env.BENCH_CHANGES ?? 30);
const BACKENDS = 4;
const MODES = (process.env.BENCH_MODES ?? 'static/classic,static/resilient,bgp/classic').split(',');

function histogram(values: number[], buckets = 10): string[] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const width = Math.max((hi - lo) / buckets, 1e-9);
  const counts = new Array<number>(buckets).fill(0);
  for (const v of values) counts[Math.min(buckets - 1, Math.floor((v - lo) / width))]!++;
  const most = Math.max(...counts);
  return counts.map((c, i) => `  ${(lo + i * width).toFixed(1).padStart(8)}–${(lo + (i + 1) * width).toFixed(1).padEnd(8)} ms ${'#'.repeat(Math.round((c / most) * 40)).padEnd(40)} ${c}`);
}

const td = new Teardown();
try {
  const topo = await buildNetnsTopology({ backends: BACKENDS, backendWorkers: 1 }, td);
  for (const m of MODES) {
    const [mode, nexthops] = m.split('/');
    const spec = LbSpec.parse({ kind: 'ecmp', mode, nexthops }) as Extract<LbSpec, { kind: 'ecmp' }>;
    await ecmp.preflight(topo.root, spec);
    const ledger = new Teardown();
    try {
      const d = (await ecmp.apply({ topo, spec, backends: topo.backends, port: 80, teardown: ledger, workDir: `${topo.workDir}/ecmp-${mode}-${nexthops}`, log: () => {} })) as EcmpDeployed;
      // Alternate: withdraw the last backend, announce it again — an LB node leaving and coming back.
      for (let i = 0; i < CHANGES; i++) await d.setBackends(i % 2 === 0 ? topo.backends.slice(0, BACKENDS - 1) : topo.backends);
      const delays = d.updateDelays();
      const ms = delays.map((x) => x.ms);
      const sorted = [...ms].sort((a, b) => a - b);
      const by = (s: string) => delays.filter((x) => x.source === s).length;
      console.log(`\necmp ${mode}/${nexthops}: ${ms.length} changes between ${BACKENDS} and ${BACKENDS - 1} nexthops (timed by: monitor ${by('monitor')}, poll ${by('poll')})`);
      console.log(`  p50 ${quantile(ms, 0.5).toFixed(1)} ms  p90 ${quantile(ms, 0.9).toFixed(1)} ms  max ${sorted.at(-1)!.toFixed(1)} ms`);
      for (const line of histogram(ms)) console.log(line);
      await d.teardown();
    } finally {
      await ledger.unwind();
    }
  }
} finally {
  await td.unwind();
}
