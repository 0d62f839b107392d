// The pure parts of the VM image and the qemu provisioner: recipe hash and cache paths, the qemu
// argv, console parsing (excerpts of real serial logs from this machine: a TCG boot, an initrd
// failure, a KVM guest stuck after the firmware), the initrd's cpio and module order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../harness/errors.ts';
import {
  bootProgress,
  buildQemuArgv,
  consoleTail,
  dgramPair,
  kernelCmdline,
  macFor,
  parseConsole,
  qemuEscape,
  type QemuArgvInput,
} from '../../harness/topology/qemu.ts';
import { cacheRoot, loadRecipe, recipeHash, vmCacheDir, type Recipe } from '../../vm-images/recipe.ts';
import { S_IFCHR, S_IFDIR, S_IFREG, cpioNewc, moduleLoadOrder, moduleName, parseDpkgStatus, parseModulesDep } from '../../vm-images/initrd.ts';

// ---------------------------------------------------------------------------------------------
// Recipe

test('recipe hash: stable, 16 hex digits, independent of package order', async () => {
  const r = await loadRecipe();
  const h = recipeHash(r);
  assert.match(h, /^[0-9a-f]{16}$/);
  assert.equal(recipeHash(await loadRecipe()), h);
  assert.equal(recipeHash({ ...r, packages: [...r.packages].reverse() }), h);
  assert.equal(recipeHash({ ...r, packages: [...r.packages, r.packages[0]!] }), h, 'a duplicate package changes nothing');
});

test('recipe hash changes with packages, guest files, build version and disk size', async () => {
  const r = await loadRecipe();
  const h = recipeHash(r);
  const variants: [string, Recipe][] = [
    ['a package more', { ...r, packages: [...r.packages, 'tcpdump'] }],
    ['a package less', { ...r, packages: r.packages.slice(1) }],
    ['init script', { ...r, files: { ...r.files, rc: r.files.rc + '\n# changed\n' } }],
    ['initrd init', { ...r, files: { ...r.files, 'initrd-init': r.files['initrd-init'].replace('sleep 0.1', 'sleep 0.2') } }],
    ['sshd config', { ...r, files: { ...r.files, sshd_config: r.files.sshd_config + 'X11Forwarding no\n' } }],
    ['build version', { ...r, buildVersion: r.buildVersion + 1 }],
    ['disk size', { ...r, diskSize: '2G' }],
    ['suite', { ...r, suite: 'trixie' }],
  ];
  const seen = new Set([h]);
  for (const [what, v] of variants) {
    const hv = recipeHash(v);
    assert.notEqual(hv, h, what);
    assert.ok(!seen.has(hv), `${what} collides with another variant`);
    seen.add(hv);
  }
});

test('the recipe asks for what the drivers and the brief need', async () => {
  const r = await loadRecipe();
  for (const p of ['linux-image-cloud-amd64', 'ipvsadm', 'iproute2', 'nginx-light', 'libnginx-mod-stream', 'wrk', 'openssh-server', 'iperf3', 'iptables', 'conntrack', 'busybox-static']) {
    assert.ok(r.packages.includes(p), p);
  }
  for (const m of ['ip_vs', 'ip_vs_rr', 'ip_vs_wrr', 'ip_vs_lc', 'ip_vs_sh', 'ip_vs_mh', 'ipip', 'sch_netem']) assert.ok(r.requiredModules.includes(m), m);
  assert.match(r.files.inittab, /::respawn:\/usr\/sbin\/sshd -D/, 'sshd supervised in the foreground');
  assert.match(r.files.rc, /lbbench-init: \$\*"[\s\S]*say "ready"/, 'rc prints the ready marker the provisioner waits for');
});

test('cache dir: $LBBENCH_CACHE, else $XDG_CACHE_HOME/lbbench, else ~/.cache/lbbench', () => {
  assert.equal(cacheRoot({ LBBENCH_CACHE: '/c', XDG_CACHE_HOME: '/x' }, '/home/u'), '/c');
  assert.equal(cacheRoot({ XDG_CACHE_HOME: '/x' }, '/home/u'), '/x/lbbench');
  assert.equal(cacheRoot({ XDG_CACHE_HOME: 'relative/path' }, '/home/u'), '/home/u/.cache/lbbench', 'a relative XDG path is invalid');
  assert.equal(cacheRoot({}, '/home/u'), '/home/u/.cache/lbbench');
  assert.equal(vmCacheDir({}, '/home/u'), '/home/u/.cache/lbbench/vm');
});

// ---------------------------------------------------------------------------------------------
// qemu argv

const base: QemuArgvInput = {
  name: 'lb0',
  accel: 'tcg',
  kernel: '/c/vmlinuz',
  initrd: '/c/initrd.img',
  disk: '/c/disk.raw',
  sshPort: 40022,
  consolePath: '/w/lb0.console.log',
};

/** The value following a flag (the first occurrence, or the n-th). */
function opt(argv: string[], flag: string, nth = 0): string | undefined {
  const at = argv.map((a, i) => (a === flag ? i : -1)).filter((i) => i >= 0)[nth];
  return at === undefined ? undefined : argv[at + 1];
}

test('argv: snapshot disk, restricted management NIC on 127.0.0.1, console to a file, no reboot', () => {
  const a = buildQemuArgv(base);
  assert.equal(a[0], 'qemu-system-x86_64');
  assert.equal(opt(a, '-drive'), 'file=/c/disk.raw,format=raw,if=virtio,snapshot=on');
  assert.equal(opt(a, '-netdev'), 'user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22');
  assert.match(opt(a, '-device')!, /^virtio-net-pci,netdev=mgmt,mac=52:54:00(:[0-9a-f]{2}){3},romfile=$/);
  assert.equal(opt(a, '-serial'), 'file:/w/lb0.console.log');
  assert.equal(opt(a, '-monitor'), 'none');
  assert.ok(a.includes('-no-reboot') && a.includes('-nographic') && a.includes('-nodefaults'));
  assert.equal(opt(a, '-kernel'), '/c/vmlinuz');
  assert.equal(opt(a, '-initrd'), '/c/initrd.img');
  assert.equal(opt(a, '-append'), 'console=ttyS0 root=/dev/vda rw panic=-1 lbbench.hostname=lb0');
  assert.equal(opt(a, '-m'), '1024');
  assert.equal(opt(a, '-smp'), '1');
});

test('argv: accelerator and CPU model go together', () => {
  const tcg = buildQemuArgv(base);
  assert.deepEqual([opt(tcg, '-accel'), opt(tcg, '-cpu')], ['tcg', 'max']);
  const kvm = buildQemuArgv({ ...base, accel: 'kvm' });
  assert.deepEqual([opt(kvm, '-accel'), opt(kvm, '-cpu')], ['kvm', 'host']);
});

test('argv: memory, cpus, no initrd, extra kernel arguments, another qemu binary', () => {
  const a = buildQemuArgv({ ...base, memoryMb: 2048, cpus: 2, initrd: undefined, appendCmdline: 'init=/bin/sh', qemuBinary: '/opt/q' });
  assert.equal(a[0], '/opt/q');
  assert.equal(opt(a, '-m'), '2048');
  assert.equal(opt(a, '-smp'), '2');
  assert.ok(!a.includes('-initrd'));
  assert.match(opt(a, '-append')!, / init=\/bin\/sh$/);
});

test('argv: a comma in the disk path is doubled, as qemu option syntax needs', () => {
  assert.equal(qemuEscape('/a,b/c,,d'), '/a,,b/c,,,,d');
  assert.equal(opt(buildQemuArgv({ ...base, disk: '/cache,x/disk.raw' }), '-drive'), 'file=/cache,,x/disk.raw,format=raw,if=virtio,snapshot=on');
});

test('argv: extra netdevs follow the management NIC in order, each with its own device and MAC', () => {
  const a = buildQemuArgv({ ...base, extraNetdevs: [{ id: 'l0', netdev: 'socket,listen=127.0.0.1:5000' }, { id: 'l1', netdev: 'dgram,x', mac: '52:54:00:00:00:09' }] });
  assert.equal(opt(a, '-netdev', 1), 'socket,listen=127.0.0.1:5000,id=l0');
  assert.equal(opt(a, '-netdev', 2), 'dgram,x,id=l1');
  assert.equal(opt(a, '-device', 1), `virtio-net-pci,netdev=l0,mac=${macFor('lb0', 'l0')},romfile=`);
  assert.equal(opt(a, '-device', 2), 'virtio-net-pci,netdev=l1,mac=52:54:00:00:00:09,romfile=');
});

test('argv: unusable netdev ids and an id inside the netdev string are ConfigErrors', () => {
  for (const id of ['mgmt', '0abc', 'a b', '']) {
    assert.throws(() => buildQemuArgv({ ...base, extraNetdevs: [{ id, netdev: 'socket,listen=:1' }] }), ConfigError, id);
  }
  assert.throws(() => buildQemuArgv({ ...base, extraNetdevs: [{ id: 'l0', netdev: 'socket,id=x,listen=:1' }] }), ConfigError);
});

test('MACs: locally administered qemu prefix, stable, distinct per guest and NIC', () => {
  assert.match(macFor('a', 'l0'), /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.equal(macFor('a', 'l0'), macFor('a', 'l0'));
  assert.notEqual(macFor('a', 'l0'), macFor('b', 'l0'));
  assert.notEqual(macFor('a', 'l0'), macFor('a', 'l1'));
});

test('dgramPair: each end sends to the other\'s socket', () => {
  const [a, b] = dgramPair('/w', 'lb-be');
  assert.equal(a.id, 'lb-be');
  assert.equal(a.netdev, 'dgram,local.type=unix,local.path=/w/lb-be.a.sock,remote.type=unix,remote.path=/w/lb-be.b.sock');
  assert.equal(b.netdev, 'dgram,local.type=unix,local.path=/w/lb-be.b.sock,remote.type=unix,remote.path=/w/lb-be.a.sock');
  assert.throws(() => dgramPair('/' + 'x'.repeat(110), 'l'), ConfigError, 'sun_path is 108 bytes');
});

test('kernel command line: extra arguments last (so they win)', () => {
  assert.equal(kernelCmdline('g', 'init=/x'), 'console=ttyS0 root=/dev/vda rw panic=-1 lbbench.hostname=g init=/x');
});

// ---------------------------------------------------------------------------------------------
// Console

const ESC = '\x1b';
const FIRMWARE = `${ESC}c${ESC}[?7l${ESC}[2J${ESC}[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\nBooting from ROM...\r\n`;
const TCG_BOOT =
  FIRMWARE +
  `Probing EDD (edd=off to disable)... o${ESC}c${ESC}[?7l${ESC}[2J[    0.000000] Linux version 6.1.0-50-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (2026-07-02)\r\n` +
  '[    0.000000] Command line: console=ttyS0 root=/dev/vda rw panic=-1 lbbench.hostname=try0\r\n' +
  '[    3.082705] Run /init as init process\r\n' +
  'lbbench-initrd: start\r\n' +
  '[    4.324077] virtio_blk virtio1: [vda] 2097152 512-byte logical blocks (1.07 GB/1.00 GiB)\r\n' +
  'lbbench-initrd: switching to /sbin/init\r\n' +
  'lbbench-init: rc start\r\n' +
  'lbbench-init: network up\r\n' +
  'lbbench-init: ready\r\n' +
  'Server listening on 0.0.0.0 port 22.\r\n';
const BAD_INIT =
  TCG_BOOT.slice(0, TCG_BOOT.indexOf('lbbench-initrd: switching')) +
  '[    4.939387] EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.\r\n' +
  'lbbench-initrd: FATAL: init /nonexistent not found on /dev/vda\r\n' +
  '[    4.946248] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n' +
  '[    4.946683] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-50-cloud-amd64 #1  Debian 6.1.176-1\r\n' +
  '[    4.947381] Call Trace:\r\n' +
  '[    4.947422]  <TASK>\r\n' +
  '[    4.947501]  dump_stack_lvl+0x44/0x5c\r\n' +
  '[    4.947612]  panic+0x118/0x2f4\r\n';
// KVM here: the firmware runs (each character doubled), the kernel never prints.
const KVM_STUCK = `${ESC}c${ESC}[?7l${ESC}[2J${ESC}[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\nBooting from ROM...\r\nPPrroobbiinngg  EEDDDD  ((eedddd==ooffff  ttoo  ddiissaabbllee))......  ookk\r\n${ESC}c${ESC}[?7l${ESC}[2J`;

test('console: a full boot reaches every stage', () => {
  assert.deepEqual(parseConsole(TCG_BOOT), { firmware: true, kernel: true, initrd: true, init: true, ready: true, failure: undefined });
});

test('console: every prefix of a boot is a consistent earlier state, never a failure', () => {
  const order = ['firmware', 'kernel', 'initrd', 'init', 'ready'] as const;
  let reached = 0;
  for (let cut = 0; cut <= TCG_BOOT.length; cut++) {
    const s = parseConsole(TCG_BOOT.slice(0, cut));
    assert.equal(s.failure, undefined);
    const n = order.filter((k) => s[k]).length;
    assert.ok(order.slice(0, n).every((k) => s[k]), `cut ${cut}: stages reached out of order`);
    assert.ok(n >= reached, `cut ${cut}: went backwards`);
    reached = n;
  }
  assert.equal(parseConsole('lbbench-init: ready').ready, false, 'a line still being written does not count');
  assert.equal(parseConsole('lbbench-init: rea').ready, false);
});

test('console: an initrd failure and the panic it causes are the failure', () => {
  const s = parseConsole(BAD_INIT);
  assert.equal(s.failure, 'init /nonexistent not found on /dev/vda; kernel panic: Attempted to kill init! exitcode=0x00000100');
  assert.equal(s.ready, false);
  assert.equal(bootProgress(s), "the initrd ran but did not reach the root disk's init");
});

test('console: a FATAL from the root disk\'s init (the guest keeps running) is a failure', () => {
  const text = TCG_BOOT.slice(0, TCG_BOOT.indexOf('lbbench-init: network up')) + 'lbbench-init: FATAL: management NIC eth0 not configured (lo UNKNOWN )\r\n';
  const s = parseConsole(text);
  assert.equal(s.failure, 'management NIC eth0 not configured (lo UNKNOWN )');
  assert.equal(s.ready, false);
});

test('console: a bare kernel panic is a failure too', () => {
  const s = parseConsole('[    1.0] Linux version 6.1.0\r\n[    2.0] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n');
  assert.equal(s.failure, 'kernel panic: VFS: Unable to mount root fs on unknown-block(0,0)');
  assert.equal(bootProgress(s), 'the kernel started but the initrd never ran');
});

test('console: KVM stuck after the firmware', () => {
  const s = parseConsole(KVM_STUCK);
  assert.deepEqual(s, { firmware: true, kernel: false, initrd: false, init: false, ready: false, failure: undefined });
  assert.equal(bootProgress(s), 'the firmware ran but the kernel printed nothing');
  assert.equal(bootProgress(parseConsole('')), 'the console stayed empty');
});

test('console tail: no escapes or carriage returns, ends at the panic line, at most n lines', () => {
  assert.equal(
    consoleTail(BAD_INIT, 3),
    [
      '[    4.939387] EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.',
      'lbbench-initrd: FATAL: init /nonexistent not found on /dev/vda',
      '[    4.946248] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100',
    ].join('\n'),
  );
  assert.doesNotMatch(consoleTail(TCG_BOOT), /[\x1b\r]/);
  assert.match(consoleTail(TCG_BOOT, 1), /^Server listening/);
  assert.equal(consoleTail(''), '');
});

// ---------------------------------------------------------------------------------------------
// initrd: cpio and modules

/** Minimal newc reader, independent of the writer's code. */
function readCpio(buf: Buffer): { name: string; mode: number; data: Buffer; rdev: [number, number]; offset: number }[] {
  const out = [];
  let off = 0;
  for (;;) {
    assert.equal(off % 4, 0, 'headers are 4-byte aligned');
    const h = buf.subarray(off, off + 110).toString('latin1');
    assert.equal(h.slice(0, 6), '070701');
    const f = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const [mode, size, rmaj, rmin, namesize] = [f(1), f(6), f(9), f(10), f(11)];
    const name = buf.subarray(off + 110, off + 110 + namesize - 1).toString();
    assert.equal(buf[off + 110 + namesize - 1], 0, 'name is NUL-terminated');
    const dataAt = Math.ceil((off + 110 + namesize) / 4) * 4;
    const data = buf.subarray(dataAt, dataAt + size);
    out.push({ name, mode, data, rdev: [rmaj, rmin] as [number, number], offset: off });
    off = Math.ceil((dataAt + size) / 4) * 4;
    if (name === 'TRAILER!!!') break;
  }
  assert.equal(off, buf.length, 'nothing after the trailer');
  return out;
}

test('cpio newc: entries, alignment, device numbers and trailer as the kernel expects', () => {
  const buf = cpioNewc([
    { path: 'dev', mode: S_IFDIR | 0o755 },
    { path: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] },
    { path: 'init', mode: S_IFREG | 0o755, data: '#!/bin/sh\n' },
    { path: 'odd', mode: S_IFREG | 0o644, data: Buffer.from([1, 2, 3]) },
  ]);
  const e = readCpio(buf);
  assert.deepEqual(e.map((x) => x.name), ['dev', 'dev/console', 'init', 'odd', 'TRAILER!!!']);
  assert.equal(e[0]!.mode, 0o040755);
  assert.deepEqual(e[1]!.rdev, [5, 1]);
  assert.equal(e[2]!.data.toString(), '#!/bin/sh\n');
  assert.deepEqual([...e[3]!.data], [1, 2, 3]);
  assert.deepEqual(cpioNewc([{ path: 'a', mode: S_IFREG | 0o644, data: 'x' }]), cpioNewc([{ path: 'a', mode: S_IFREG | 0o644, data: 'x' }]), 'deterministic');
  assert.throws(() => cpioNewc([{ path: '/abs', mode: S_IFREG }]));
});

// modules.dep lines as in Debian's 6.1 cloud kernel.
const MODULES_DEP = [
  'kernel/drivers/virtio/virtio.ko:',
  'kernel/drivers/virtio/virtio_ring.ko:',
  'kernel/drivers/virtio/virtio_pci_legacy_dev.ko:',
  'kernel/drivers/virtio/virtio_pci_modern_dev.ko:',
  'kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
  'kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko',
  'kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko',
  'kernel/net/netfilter/nf_conntrack.ko: kernel/lib/libcrc32c.ko',
  'kernel/lib/libcrc32c.ko:',
  'kernel/net/sched/sch-netem.ko:',
].join('\n');

test('module load order: dependencies first, each once, built-ins skipped', () => {
  const idx = parseModulesDep(MODULES_DEP, 'kernel/fs/ext4/ext4.ko\nkernel/fs/mbcache.ko\n');
  assert.deepEqual(moduleLoadOrder(idx, ['virtio_pci', 'virtio_blk', 'ext4']), [
    'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
    'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
    'kernel/drivers/virtio/virtio_ring.ko',
    'kernel/drivers/virtio/virtio.ko',
    'kernel/drivers/virtio/virtio_pci.ko',
    'kernel/drivers/block/virtio_blk.ko',
  ]);
  const ipvs = moduleLoadOrder(idx, ['ip_vs']);
  assert.deepEqual(ipvs, ['kernel/lib/libcrc32c.ko', 'kernel/net/netfilter/nf_conntrack.ko', 'kernel/net/netfilter/ipvs/ip_vs.ko']);
  assert.deepEqual(moduleLoadOrder(idx, ['sch-netem']), ['kernel/net/sched/sch-netem.ko'], 'dashes and underscores are one name');
});

test('module load order: every missing module is named; a cycle is an error, not a hang', () => {
  const idx = parseModulesDep(MODULES_DEP);
  assert.throws(() => moduleLoadOrder(idx, ['ip_vs', 'nope', 'ipip']), /no module nope, ipip/);
  const cyc = parseModulesDep('a.ko: b.ko\nb.ko: a.ko\n');
  assert.throws(() => moduleLoadOrder(cyc, ['a']), /cycle: a → b → a/);
  assert.equal(moduleName('kernel/x/ip_vs-mh.ko.xz'), 'ip_vs_mh');
});

test('dpkg status: installed packages only, with versions', () => {
  const status = [
    'Package: wrk\nStatus: install ok installed\nVersion: 4.1.0-3+b2\nDescription: x\n multi-line',
    'Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0',
    'Package: linux-image-cloud-amd64\nStatus: install ok installed\nPriority: optional\nVersion: 6.1.176-1',
  ].join('\n\n');
  assert.deepEqual(Object.fromEntries(parseDpkgStatus(status)), { wrk: '4.1.0-3+b2', 'linux-image-cloud-amd64': '6.1.176-1' });
});
