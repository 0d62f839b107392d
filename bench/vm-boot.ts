// npm run bench:vm — what a qemu guest costs here: the image build cold (empty cache, packages
// downloaded) and warm (cache hit), KVM's verdict, boot-to-SSH under TCG (one guest, then two at
// once), the cost of one SSH command, and a netns topology's build time on the host vs in a guest. Printed, never asserted: the numbers are this machine's.
//   BENCH_VM_COLD=0   skip the cold build (~2 min) and print the cached image's recorded build time
//   BENCH_BOOTS=N     single-guest boots per accelerator (default 3)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Teardown } from '../harness/teardown.ts';
import { bootGuests, chooseAccel, type Accel, type Guest } from '../harness/topology/qemu.ts';
import { quantile } from '../harness/stats/descriptive.ts';
import { ensureImage } from '../vm-images/build.ts';
import { LocalHost } from '../harness/host/local.ts';
import { buildNetnsTopology, newRunId } from '../harness/topology/netns.ts';

const BOOTS = Number(process.env.BENCH_BOOTS ?? 3);
const TOPO_BACKENDS = [4, 16];
const COLD = process.env.BENCH_VM_COLD !== '0';
const quiet = () => {};
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);

const work = await mkdtemp(join(tmpdir(), 'lbbench-bench-vm-'));
try {
  console.log('VM image');
  if (COLD) {
    const cache = join(work, 'cache');
    const t = Date.now();
    const img = await ensureImage(quiet, { cacheDir: cache });
    console.log(`  cold build (empty cache, packages downloaded): ${s(Date.now() - t)}  [debootstrap part recorded in ${img.dir}/image.json]`);
    await rm(cache, { recursive: true, force: true });
  }
  const t0 = Date.now();
  let image = await ensureImage(quiet);
  const first = Date.now() - t0;
  const t1 = Date.now();
  image = await ensureImage(quiet);
  console.log(`  ${first > 5000 ? `build (cache was empty): ${s(first)}; ` : ''}warm (cache hit): ${Date.now() - t1} ms`);
  if (!COLD) console.log(`  cached image's own build took ${s(image.buildSeconds * 1000)} (built ${image.builtAt})`);
  console.log(`  ${image.dir}: kernel ${image.kernelVersion}`);

  const td = new Teardown();
  const opts = { image, workDir: work, log: quiet, teardown: td };
  try {
    const auto = await chooseAccel({ ...opts, accel: 'auto' });
    console.log(`\nKVM: ${auto.accel === 'kvm' ? 'works' : 'not used'} — ${auto.reason}`);
    const accels: Accel[] = auto.accel === 'kvm' ? ['kvm', 'tcg'] : ['tcg'];

    for (const accel of accels) {
      console.log(`\nboot to SSH, ${accel}, one guest (${BOOTS}×):`);
      const times: number[] = [];
      for (let i = 0; i < BOOTS; i++) {
        const [g] = (await bootGuests([{ name: `bench${i}` }], { ...opts, accel })) as [Guest];
        times.push(g.bootMs);
        const st = g.stages;
        console.log(`  ${s(g.bootMs)}   kernel banner ${st.kernel ?? '?'} ms, initrd ${st.initrd ?? '?'} ms, init ${st.init ?? '?'} ms, ready ${st.ready ?? '?'} ms`);
        if (i === 0) {
          const lat: number[] = [];
          for (let j = 0; j < 10; j++) {
            const t = Date.now();
            await g.host.exec(['true']);
            lat.push(Date.now() - t);
          }
          console.log(`  one SSH command (\`true\`, 10×): median ${median(lat)} ms, max ${Math.max(...lat)} ms`);
        }
        await g.stop();
      }
      console.log(`  median ${s(median(times))}, min ${s(Math.min(...times))}, max ${s(Math.max(...times))}`);

      const [a, b] = (await bootGuests([{ name: 'pair-a' }, { name: 'pair-b' }], { ...opts, accel })) as [Guest, Guest];
      console.log(`  two at once: ${s(a.bootMs)} and ${s(b.bootMs)}`);
      await Promise.all([a.stop(), b.stop()]);
    }

    // The same netns topology (namespaces, links, backend nginx) built on this host and inside a
    // guest over SSH, then torn down: what a qemu topology adds before the first point.
    console.log('\nnetns topology build + teardown, host vs guest:');
    const [g] = (await bootGuests([{ name: 'topo', memoryMb: 1024 }], { ...opts, accel: auto.accel })) as [Guest];
    for (const backends of TOPO_BACKENDS) {
      const row: string[] = [];
      for (const [where, root] of [['host', new LocalHost()], [`guest (${auto.accel})`, g.host]] as const) {
        const ttd = new Teardown();
        const t = Date.now();
        await buildNetnsTopology({ backends, backendWorkers: 1, root, runId: newRunId() }, ttd);
        const built = Date.now() - t;
        const u = Date.now();
        await ttd.unwind();
        row.push(`${where} ${s(built)} + ${s(Date.now() - u)}`);
      }
      console.log(`  ${String(backends).padStart(2)} backends: ${row.join('   ')}   (build + teardown)`);
    }
    await g.stop();
  } finally {
    await td.unwind();
  }
  const load = (await import('node:os')).loadavg()[0]!;
  console.log(`\n(load average at the end: ${load.toFixed(2)} on ${(await import('node:os')).cpus().length} CPUs — other work on the host slows TCG)`);
} finally {
  await rm(work, { recursive: true, force: true });
}
