// topology kind qemu: the netns topology inside one Debian guest, so a host without ip_vs, ipip
// or netem (this one) runs the LBs that need them. The image is built once per recipe and cached;
// the guest boots with snapshot=on and is always stopped by the teardown ledger.
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../host/types.ts';
import type { Teardown } from '../teardown.ts';
import type { Scenario } from '../scenario/schema.ts';
import { ensureImage } from '../../vm-images/build.ts';
import { bootGuests } from './qemu.ts';
import { buildNetnsTopology } from './netns.ts';
import { WORK_ROOT } from './leftovers.ts';
import type { Site } from './site.ts';

type QemuTopology = Extract<Scenario['topology'], { kind: 'qemu' }>;

export async function openQemuSite(
  topology: QemuTopology,
  teardown: Teardown,
  opts: { log?: (msg: string) => void; signal?: AbortSignal; root?: Host },
): Promise<Site> {
  const log = opts.log ?? (() => {});
  const image = await ensureImage(log);
  const workDir = join(WORK_ROOT, `qemu-${randomBytes(3).toString('hex')}`);
  await mkdir(workDir, { recursive: true });
  teardown.add(`remove ${workDir}`, () => rm(workDir, { recursive: true, force: true }));
  const [guest] = await bootGuests([{ name: 'lbbench', memoryMb: topology.guest.memoryMb, cpus: topology.guest.cpus }], {
    image,
    accel: topology.guest.accel,
    workDir,
    log,
    teardown,
    signal: opts.signal,
  });
  const g = guest!;
  log(`guest ${g.name}: ${g.accel} (${g.accelReason}), SSH after ${(g.bootMs / 1000).toFixed(1)} s`);
  return {
    root: g.host,
    cpus: topology.guest.cpus,
    facts: {
      topology: 'qemu',
      guest: {
        accel: g.accel,
        accelReason: g.accelReason,
        bootMs: Math.round(g.bootMs),
        memoryMb: topology.guest.memoryMb,
        cpus: topology.guest.cpus,
        kernel: image.kernelVersion,
        imageRecipe: image.recipeHash,
        imageBuiltAt: image.builtAt,
      },
    },
    build: (o, td) => buildNetnsTopology({ ...o, backendWorkers: topology.backendWorkers, root: g.host }, td),
  };
}
