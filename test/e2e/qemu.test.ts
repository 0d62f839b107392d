// Real qemu guests from the real image: builds it on first use (~2 min, then cached per recipe
// hash), boots two guests at once linked point to point, runs IPVS in one, checks the management
// NIC reaches nothing outside, and that nothing survives teardown, a failed boot, or the harness
// being SIGKILLed. Under TCG a boot is ~10 s; the whole file stays well under 10 minutes cold.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreflightError, ProvisionError } from '../../harness/errors.ts';
import { Teardown } from '../../harness/teardown.ts';
import { bootGuests, dgramPair, type Guest } from '../../harness/topology/qemu.ts';
import { ensureImage, type VmImage } from '../../vm-images/build.ts';
import { missingCapability, processesMentioning } from './helpers.ts';

const REPO = new URL('../../', import.meta.url).pathname;
const skip = missingCapability(['qemu-system-x86_64', 'debootstrap', 'mkfs.ext4', 'ssh-keygen']);
const log = (s: string) => process.stderr.write(`# ${s}\n`);

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (!pidAlive(pid)) return true;
  return !pidAlive(pid);
}

/** 'open', or the error code of a TCP connect to 127.0.0.1:port. */
function probePort(port: number, host = '127.0.0.1', ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (v: string) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(ms, () => done('timeout'));
    s.once('connect', () => done('open'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

describe('qemu guests', { skip }, () => {
  let image: VmImage;
  let workDir: string;

  before(
    async () => {
      const t = Date.now();
      image = await ensureImage(log);
      log(`image ${image.recipeHash} (${image.kernelVersion}) ready after ${((Date.now() - t) / 1000).toFixed(1)} s`);
      workDir = await mkdtemp(join(tmpdir(), 'lbbench-qemu-test-'));
    },
    { timeout: 20 * 60_000 },
  );

  after(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  test('two guests boot at once, run IPVS, talk over their link, reach nothing outside, and are gone after teardown', { timeout: 5 * 60_000 }, async (t) => {
    const td = new Teardown();
    // A listener on the host's loopback: without restrict=on the guest would reach it as 10.0.2.2.
    let hostHits = 0;
    const server: Server = createServer((c) => {
      hostHits++;
      c.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const hostPort = (server.address() as { port: number }).port;
    // A public address the host itself can reach (the Debian mirror), so a failure in the guest
    // is the restriction and not this machine's network.
    const mirror = await lookup('deb.debian.org', { family: 4 }).then((a) => a.address, () => undefined);
    const mirrorFromHost = mirror ? await probePort(80, mirror) : 'no DNS';
    if (mirrorFromHost !== 'open') t.diagnostic(`host cannot reach deb.debian.org:80 (${mirrorFromHost}): the public-address check only shows the guest fails too`);

    let guests: Guest[] = [];
    try {
      const [a, b] = dgramPair(workDir, 'l0');
      guests = await bootGuests(
        [
          { name: 'qa', extraNetdevs: [a] },
          { name: 'qb', extraNetdevs: [b] },
        ],
        { image, workDir, log, teardown: td },
      );
      const [qa, qb] = guests as [Guest, Guest];
      for (const g of guests) {
        t.diagnostic(`${g.name}: ${g.accel} (${g.accelReason}), boot-to-SSH ${(g.bootMs / 1000).toFixed(1)} s, stages ${JSON.stringify(g.stages)}`);
        assert.ok(pidAlive(g.pid), `${g.name} qemu runs`);
        assert.ok(g.bootMs > 0 && g.stages.ssh === g.bootMs);
        assert.equal(await probePort(g.sshPort), 'open');
      }
      assert.notEqual(qa.sshPort, qb.sshPort);

      // One exec per guest and step: under TCG every command costs a login.
      const [ra, rb] = await Promise.all([
        qa.host.exec(
          [
            'sh',
            '-c',
            [
              'uname -r',
              'modprobe ip_vs && ipvsadm -Ln',
              'for m in ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_sh ip_vs_mh ipip sch_netem; do modprobe $m || echo "MISSING $m"; done',
              'ipvsadm -A -t 198.18.100.1:80 -s rr && ipvsadm -a -t 198.18.100.1:80 -r 198.18.1.3:80 -m && ipvsadm -Ln',
              'ip addr add 198.18.1.2/24 dev eth1',
            ].join('\n'),
          ],
          { timeoutMs: 60_000 },
        ),
        qb.host.exec(['sh', '-c', 'hostname; ip addr add 198.18.1.3/24 dev eth1'], { timeoutMs: 60_000 }),
      ]);
      const [kernel, ...rest] = ra.stdout.trim().split('\n');
      assert.equal(kernel, image.kernelVersion);
      assert.match(rest.join('\n'), /IP Virtual Server version/);
      assert.doesNotMatch(ra.stdout, /MISSING/);
      assert.match(ra.stdout, /TCP\s+198\.18\.100\.1:80 rr[\s\S]*198\.18\.1\.3:80\s+Masq/);
      assert.equal(rb.stdout.trim(), 'qb', 'hostname from the kernel command line');

      const checks = await qa.host.exec(
        [
          'sh',
          '-c',
          // The three checks run in parallel: each blocked connect waits out its timeout.
          `try() { if timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then echo "$3 open"; else echo "$3 blocked"; fi; }
           try 10.0.2.2 ${hostPort} host-loopback > /tmp/c1 &
           try ${mirror ?? '1.1.1.1'} 80 public > /tmp/c2 &
           busybox ping -c 1 -W 5 198.18.1.3 > /dev/null 2>&1 && echo "link ok" > /tmp/c3 || echo "link down" > /tmp/c3 &
           wait; cat /tmp/c1 /tmp/c2 /tmp/c3`,
        ],
        { timeoutMs: 60_000 },
      );
      assert.deepEqual(checks.stdout.trim().split('\n'), ['host-loopback blocked', 'public blocked', 'link ok']);
      assert.equal(hostHits, 0, 'the host listener saw no connection from the guest');
    } finally {
      server.close();
      const failures = await td.unwind();
      assert.deepEqual(failures, []);
    }
    assert.equal(guests.length, 2);
    for (const g of guests) {
      assert.ok(await waitGone(g.pid, 2000), `${g.name} qemu (pid ${g.pid}) is gone`);
      assert.equal(await probePort(g.sshPort), 'ECONNREFUSED', `${g.name} port ${g.sshPort} is closed`);
    }
    assert.deepEqual(processesMentioning(workDir), []);
  });

  test('a guest whose init does not exist fails fast with the console tail, leaving nothing running', { timeout: 3 * 60_000 }, async () => {
    const td = new Teardown();
    const started = Date.now();
    await assert.rejects(bootGuests([{ name: 'badinit', appendCmdline: 'init=/nonexistent' }], { image, workDir, log, teardown: td }), (e: unknown) => {
      assert.ok(e instanceof ProvisionError, String(e));
      assert.match(e.message, /guest "badinit" did not boot/);
      assert.match(e.message, /init \/nonexistent not found on \/dev\/vda/);
      assert.match(e.message, /console \(last lines of .*badinit\.console\.log\):\n[\s\S]*Kernel panic - not syncing/);
      assert.ok(e.hint && /console log/.test(e.hint));
      return true;
    });
    assert.ok(Date.now() - started < 60_000, 'a panic ends the VM at once instead of waiting for the boot deadline');
    assert.equal(td.size, 0, 'the failed guest removed its own ledger entries');
    assert.deepEqual(processesMentioning(join(workDir, 'badinit')), []);
  });

  test('a kernel that does not exist: qemu\'s own message, nothing running', { timeout: 60_000 }, async () => {
    const td = new Teardown();
    const kernel = join(workDir, 'no-such-vmlinuz');
    await assert.rejects(bootGuests([{ name: 'nokernel' }], { image: { ...image, kernel }, accel: 'tcg', workDir, log, teardown: td }), (e: unknown) => {
      assert.ok(e instanceof ProvisionError, String(e));
      assert.match(e.message, /guest "nokernel" did not boot .*qemu exited \(code 1\) — the console stayed empty/);
      assert.match(e.message, /qemu: .*no-such-vmlinuz/);
      return true;
    });
    assert.equal(td.size, 0);
    assert.deepEqual(processesMentioning(kernel), []);
  });

  test('no qemu binary: a PreflightError with the install command, before anything starts', async () => {
    const td = new Teardown();
    await assert.rejects(bootGuests([{ name: 'noqemu' }], { image, qemuBinary: '/nonexistent/qemu', workDir, log, teardown: td }), (e: unknown) => {
      assert.ok(e instanceof PreflightError, String(e));
      assert.match(e.hint ?? '', /apt-get install -y qemu-system-x86/);
      return true;
    });
    assert.equal(td.size, 0);
  });

  test('qemu dies with the harness even when the harness is SIGKILLed mid-boot', { timeout: 60_000 }, async () => {
    const dir = join(workDir, 'orphan');
    const script = join(workDir, 'orphan.mts');
    await writeFile(
      script,
      `import { bootGuests } from ${JSON.stringify(join(REPO, 'harness/topology/qemu.ts'))};
       import { readImage } from ${JSON.stringify(join(REPO, 'vm-images/build.ts'))};
       import { Teardown } from ${JSON.stringify(join(REPO, 'harness/teardown.ts'))};
       const image = await readImage(${JSON.stringify(image.dir)});
       await bootGuests([{ name: 'orphan' }], { image: image!, accel: 'tcg', workDir: ${JSON.stringify(dir)}, log: (s) => console.log(s), teardown: new Teardown() });
       console.log('booted');`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        const m = /booting orphan \(pid (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before starting qemu:\n${out}`)));
      setTimeout(() => reject(new Error(`no qemu pid from the child:\n${out}`)), 30_000);
    });
    assert.ok(pidAlive(pid), 'qemu started');
    child.kill('SIGKILL');
    assert.ok(await waitGone(pid, 5000), `qemu (pid ${pid}) outlived the harness`);
    assert.deepEqual(processesMentioning(dir), []);
  });
});
