// npm run bench — measured in one run, printed, never asserted (absolute timings are noisy here):
//  1. wrk req/s when the harness drives it vs the same argv run by hand (ip netns exec) on the
//     same topology, interleaved; the ratio should be ~1.
//  2. time to build and tear down a 40-backend topology.
import { spawnSync } from 'node:child_process';
import { Teardown } from '../harness/teardown.ts';
import { buildNetnsTopology } from '../harness/topology/netns.ts';
import { iptablesDnat } from '../harness/lb/iptables-dnat.ts';
import { IptablesDnatSpec, LoadSpec } from '../harness/scenario/schema.ts';
import { wrk } from '../harness/load/wrk.ts';
import { runLoad } from '../harness/load/run.ts';
import { median } from '../harness/stats/descriptive.ts';
import { cpuPlan } from '../harness/run/runner.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DURATION = Number(process.env.BENCH_DURATION ?? 3);

async function overhead(): Promise<void> {
  const td = new Teardown();
  try {
    const cpus = cpuPlan('auto');
    const topo = await buildNetnsTopology({ backends: 2, backendWorkers: 1, serverCpus: cpus.servers }, td);
    const ledger = new Teardown();
    td.add('lb', () => ledger.unwind());
    const d = await iptablesDnat.apply({
      topo,
      spec: IptablesDnatSpec.parse({ kind: 'iptables-dnat' }),
      backends: topo.backends,
      port: 80,
      teardown: ledger,
      workDir: `${topo.workDir}/lb`,
      log: () => {},
    });
    const load = LoadSpec.parse({ duration: DURATION, connections: 32, threads: 1 });
    const spec = { load, target: { ...d.endpoint, path: '/' }, durationS: DURATION, cpus: cpus.generator, workDir: `${topo.workDir}/load` };
    const harness: number[] = [];
    const byHand: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r = await runLoad(topo.client.host, wrk, spec);
      harness.push(r.metrics.requestsPerSec);
      // The same argv, started the way a person would from a shell.
      const argv = wrk.buildArgv(spec);
      const out = spawnSync('ip', ['netns', 'exec', topo.client.ns!, ...argv], { encoding: 'utf8', timeout: (DURATION + 20) * 1000 });
      byHand.push(wrk.parse(out.stdout, out.stderr).requestsPerSec);
    }
    const h = median(harness);
    const m = median(byHand);
    console.log(`wrk via harness: median ${h.toFixed(0)} req/s  (${harness.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`wrk by hand:     median ${m.toFixed(0)} req/s  (${byHand.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`harness / by hand: ${(h / m).toFixed(3)}   (${ROUNDS} interleaved rounds of ${DURATION}s, iptables-dnat, 2 backends)`);
  } finally {
    await td.unwind();
  }
}

async function buildTime(n = 40): Promise<void> {
  const td = new Teardown();
  const t0 = performance.now();
  await buildNetnsTopology({ backends: n, backendWorkers: 1 }, td);
  const t1 = performance.now();
  await td.unwind();
  const t2 = performance.now();
  console.log(`${n}-backend topology: build ${((t1 - t0) / 1000).toFixed(2)} s (incl. ${n} nginx), teardown ${((t2 - t1) / 1000).toFixed(2)} s`);
}

await overhead();
await buildTime(40);
