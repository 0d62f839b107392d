// npm run bench:pps — small-packet forwarding rate through several LBs, side by side in one run.
// trafgen (pinned to the last CPU) sends 60-byte TCP SYNs with random source ports through the LB
// node; each backend drops them in the raw table, and the DROP rule's counter is what arrived.
// Printed, never asserted: absolute rates are this machine's, the ratios are the point.
import { readFile } from 'node:fs/promises';
import { Teardown } from '../harness/teardown.ts';
import { buildNetnsTopology, type NetnsTopology } from '../harness/topology/netns.ts';
import { lbDrivers } from '../harness/lb/index.ts';
import type { LbDriver } from '../harness/lb/types.ts';
import { LbSpec, LoadSpec } from '../harness/scenario/schema.ts';
import { parseTrafgen, trafgen } from '../harness/load/trafgen.ts';
import { cpuPlan } from '../harness/run/runner.ts';
import { median } from '../harness/stats/descriptive.ts';
import { sleep } from '../harness/util/time.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const KINDS = (process.env.BENCH_LBS ?? 'router,iptables-dnat,nftables,nfqueue,xdp').split(',');
const CLK_TCK = 100;

async function hostBusySeconds(): Promise<number> {
  const v = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  return (v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + v[7]!) / CLK_TCK;
}

/** CPU seconds of every process in the LB namespace (user-space LBs); kernel datapaths show as 0. */
async function nsProcessSeconds(topo: NetnsTopology): Promise<number> {
  const pids = (await topo.root.exec(['ip', 'netns', 'pids', topo.lb.ns!])).stdout.split('\n').filter(Boolean);
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11] ?? 0) + Number(f[12] ?? 0);
  }
  return ticks / CLK_TCK;
}


async function main(): Promise<void> {
  const td = new Teardown();
  const cpus = cpuPlan('auto');
  const rows: { kind: string; pps: number; sentPps: number; hostCpuPerM: number; lbProcCpuPerM: number }[] = [];
  try {
    const topo = await buildNetnsTopology({ backends: 2, backendWorkers: 1, serverCpus: cpus.servers, log: (s) => console.log(s) }, td);
    const load = LoadSpec.parse({ generator: 'trafgen', duration: DURATION });

    for (const kind of KINDS) {
      const driver = (lbDrivers as unknown as Record<string, LbDriver>)[kind];
      if (!driver) {
        console.log(`${kind}: not registered, skipped`);
        continue;
      }
      const spec = LbSpec.parse({ kind });
      try {
        await driver.preflight(topo.root, spec as never);
      } catch (e) {
        console.log(`${kind}: skipped: ${(e as Error).message}`);
        continue;
      }
      const ledger = new Teardown();
      const release = td.add(`lb ${kind}`, () => ledger.unwind());
      try {
        const d = await driver.apply({ topo, spec: spec as never, backends: topo.backends, port: 80, teardown: ledger, workDir: `${topo.workDir}/lb-${kind}`, log: () => {}, cpus: cpus.servers });
        // The generator's own attach: sinks on the backends, the MACs, the client's FIFO qdisc.
        const sinks = await trafgen.attach!({ topo, backends: topo.backends, endpoint: d.endpoint, load, teardown: ledger, workDir: topo.workDir });
        const run = { load, target: { ...d.endpoint, path: '/' }, durationS: DURATION, cpus: cpus.generator, workDir: topo.workDir, extra: sinks.extra };
        await trafgen.prepare(topo.client.host, run);
        const dropped = async () => Object.values(await sinks.counters()).reduce((a, b) => a + b, 0);
        const pps: number[] = [];
        const sent: number[] = [];
        const hostCpu: number[] = [];
        const procCpu: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          await sleep(300);
          const [d0, h0, p0] = [await dropped(), await hostBusySeconds(), await nsProcessSeconds(topo)];
          const out = await topo.client.host.exec(trafgen.buildArgv(run), { check: false, timeoutMs: (DURATION + 15) * 1000 });
          await sleep(200); // let queued packets drain before reading the sinks
          const [d1, h1, p1] = [await dropped(), await hostBusySeconds(), await nsProcessSeconds(topo)];
          const t = parseTrafgen(out.stdout);
          const delivered = d1 - d0;
          pps.push(delivered / t.seconds);
          sent.push(t.packets / t.seconds);
          hostCpu.push(((h1 - h0) / Math.max(delivered, 1)) * 1e6);
          procCpu.push(((p1 - p0) / Math.max(delivered, 1)) * 1e6);
        }
        rows.push({ kind, pps: median(pps), sentPps: median(sent), hostCpuPerM: median(hostCpu), lbProcCpuPerM: median(procCpu) });
        console.log(`${kind.padEnd(14)} delivered ${median(pps).toFixed(0).padStart(8)} pps  (sent ${median(sent).toFixed(0)} pps; rounds ${pps.map((x) => x.toFixed(0)).join(', ')})`);
        await d.teardown();
      } catch (e) {
        console.log(`${kind}: failed: ${(e as Error).message}`);
      } finally {
        await release();
      }
    }
  } finally {
    await td.unwind();
  }
  console.log(`\n${ROUNDS} rounds × ${DURATION}s, 60-byte TCP SYNs, random source ports, 2 backends (raw-table DROP sinks)`);
  console.log('LB              delivered pps   host CPU-s/Mpkt   LB-process CPU-s/Mpkt');
  for (const r of rows) {
    console.log(`${r.kind.padEnd(15)} ${r.pps.toFixed(0).padStart(13)}   ${r.hostCpuPerM.toFixed(2).padStart(15)}   ${r.lbProcCpuPerM.toFixed(2).padStart(21)}`);
  }
  const by = Object.fromEntries(rows.map((r) => [r.kind, r.pps]));
  const ratio = (a: string, b: string) => (by[a] && by[b] ? `${a}/${b} = ${(by[a]! / by[b]!).toFixed(2)}` : `${a}/${b}: n/a`);
  console.log(['\nratios:', ratio('xdp', 'iptables-dnat'), ratio('xdp', 'nfqueue'), ratio('xdp', 'router'), ratio('iptables-dnat', 'router')].join('  '));
  console.log('host CPU includes the generator (trafgen) and all softirq work: the namespaces share the kernel.');
}

await main();
