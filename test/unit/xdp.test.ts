// The xdp LB's pure parts (maglev, map encoding, bpftool argv), its BPF object against the layout
// user space writes, and the program itself run on crafted packets with `bpftool prog run` (no
// network needed: BPF_PROG_TEST_RUN returns the verdict and the rewritten frame).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maglevTable, MAGLEV_EMPTY, isPrime, nameHash } from '../../harness/datapath/xdp/maglev.ts';
import {
  LAYOUT,
  LBB,
  XDP_SRC_DIR,
  attachArgv,
  backendValue,
  batchScript,
  buildXdp,
  configValue,
  detachArgv,
  flowIndex,
  hexArgs,
  inNetns,
  ipv6Bytes,
  jhash3words,
  loadallArgv,
  macBytes,
  mapLookupArgs,
  mapUpdateArgs,
  parseEthtoolStats,
  slotTable,
  sumPerCpu,
  tableUpdates,
  u32le,
  xdpStatsDelta,
} from '../../harness/lb/xdp.ts';
import { LocalHost } from '../../harness/host/local.ts';

const names = (n: number) => Array.from({ length: n }, (_, i) => `be${i}`);
const counts = (table: number[], n: number) => {
  const c = new Array(n).fill(0);
  for (const e of table) c[e]++;
  return c;
};

// --- maglev --------------------------------------------------------------------------------------

test('maglev: every entry names a backend, and shares differ by at most one entry', () => {
  for (const [n, size] of [
    [1, 7],
    [3, 997],
    [10, 997],
    [7, 65537],
    [189, 65537],
  ] as const) {
    const t = maglevTable(names(n), size);
    assert.equal(t.length, size);
    assert.ok(t.every((e) => Number.isInteger(e) && e >= 0 && e < n), `${n}/${size}: entry out of range`);
    const c = counts(t, n);
    assert.ok(Math.max(...c) - Math.min(...c) <= 1, `${n}/${size}: shares ${Math.min(...c)}..${Math.max(...c)}`);
  }
});

test('maglev: removing one of K backends moves few entries of the others', () => {
  // Measured: worst case over every removed backend 4.0% (K=10, 997 entries), 0.4% (K=10, 65537).
  for (const [k, size, bound] of [
    [10, 997, 0.06],
    [10, 65537, 0.01],
    [3, 997, 0.02],
  ] as const) {
    const all = names(k);
    const full = maglevTable(all, size);
    for (let gone = 0; gone < k; gone++) {
      const rest = all.filter((_, i) => i !== gone);
      const less = maglevTable(rest, size);
      let survivors = 0;
      let moved = 0;
      for (let i = 0; i < size; i++) {
        if (full[i] === gone) {
          assert.notEqual(rest[less[i]!], all[gone], 'removed backend still in the table');
          continue;
        }
        survivors++;
        if (all[full[i]!] !== rest[less[i]!]) moved++;
      }
      assert.ok(moved / survivors <= bound, `K=${k} size=${size} without ${all[gone]}: ${moved}/${survivors} survivor entries moved`);
    }
  }
});

test('maglev: a table depends on the set of names, not their order, and is stable', () => {
  const a = maglevTable(['be0', 'be1', 'be2'], 251);
  const b = maglevTable(['be2', 'be0', 'be1'], 251);
  assert.deepEqual(
    a.map((i) => ['be0', 'be1', 'be2'][i]),
    b.map((i) => ['be2', 'be0', 'be1'][i]),
  );
  // Pinned values: a change of hash or fill order would silently reshuffle every deployment.
  assert.deepEqual(maglevTable(['be0', 'be1', 'be2'], 13), [1, 2, 0, 2, 1, 0, 0, 1, 2, 0, 1, 2, 0]);
  assert.equal(nameHash('be0', 0), 1536932166);
});

test('maglev: empty list, bad sizes, duplicate names', () => {
  assert.deepEqual(maglevTable([], 7), new Array(7).fill(MAGLEV_EMPTY));
  assert.throws(() => maglevTable(['a'], 10), /prime/);
  assert.throws(() => maglevTable(['a'], 1), /prime/);
  assert.throws(() => maglevTable(['a', 'a'], 7), /unique/);
  assert.throws(() => maglevTable(names(8), 7), /cannot hold/);
  assert.ok(isPrime(997) && isPrime(1_000_003) && !isPrime(1_000_001) && !isPrime(1));
});

// --- encoding and argv ---------------------------------------------------------------------------

test('map keys and values are the C structs, byte for byte', () => {
  assert.deepEqual(hexArgs(u32le(1)), ['01', '00', '00', '00']);
  assert.deepEqual(hexArgs(u32le(0xffffffff)), ['ff', 'ff', 'ff', 'ff']);
  assert.deepEqual(hexArgs(u32le(997)), ['e5', '03', '00', '00']);
  assert.deepEqual(
    hexArgs(
      configValue({ vip: '198.18.100.1', port: 80, proto: 'tcp', egressIfindex: 3, egressMac: '96:17:8a:51:f9:1c', tableSize: 997 }),
    ).join(' '),
    // vip (network order) | port (network order) | proto | pad | ifindex LE | mac | pad | table size LE | vip6 (zero: IPv6 passes)
    'c6 12 64 01 00 50 06 00 03 00 00 00 96 17 8a 51 f9 1c 00 00 e5 03 00 00' + ' 00'.repeat(16),
  );
  assert.equal(
    hexArgs(configValue({ vip: '2001:2:0:100::1', port: 80, proto: 'tcp', egressIfindex: 3, egressMac: '96:17:8a:51:f9:1c', tableSize: 997 })).join(' '),
    // an IPv6 deployment: the IPv4 VIP zero (IPv4 passes), vip6 in network order
    '00 00 00 00 00 50 06 00 03 00 00 00 96 17 8a 51 f9 1c 00 00 e5 03 00 00 20 01 00 02 00 00 01 00 00 00 00 00 00 00 00 01',
  );
  assert.deepEqual(hexArgs(ipv6Bytes('2001:2::2')).join(''), '20010002000000000000000000000002');
  assert.deepEqual(hexArgs(ipv6Bytes('fe80::1:2')).join(''), 'fe800000000000000000000000010002');
  assert.deepEqual(hexArgs(ipv6Bytes('1:2:3:4:5:6:7:8')).join(''), '00010002000300040005000600070008');
  for (const bad of ['1::2::3', '1:2:3', '12345::', '1:2:3:4:5:6:7:8::', 'g::1']) assert.throws(() => ipv6Bytes(bad), /IPv6/, bad);
  assert.equal(hexArgs(backendValue('42:9c:f2:95:27:b3', '2001:2:0:1::11')).join(' '), '42 9c f2 95 27 b3 01 00 00 00 00 00', 'an IPv6 backend: no dump address');
  assert.equal(configValue({ vip: '1.2.3.4', port: 8080, proto: 'any', egressIfindex: 0x01020304, egressMac: '00:00:00:00:00:01', tableSize: 1_000_003 })[6], 0);
  assert.equal(
    hexArgs(backendValue('42:9C:f2:95:27:b3', '198.18.1.11')).join(' '),
    // mac | valid | pad | ip (network order)
    '42 9c f2 95 27 b3 01 00 c6 12 01 0b',
  );
  assert.throws(() => macBytes('42:9c:f2:95:27'), /MAC/);
  assert.throws(() => configValue({ vip: '198.18.100.256', port: 80, proto: 'tcp', egressIfindex: 1, egressMac: '00:00:00:00:00:01', tableSize: 7 }), /IPv4/);
});

test('bpftool commands', () => {
  assert.deepEqual(mapUpdateArgs('/w/bpffs/maps/lbb_table', u32le(5), u32le(2)), [
    'map', 'update', 'pinned', '/w/bpffs/maps/lbb_table', 'key', 'hex', '05', '00', '00', '00', 'value', 'hex', '02', '00', '00', '00',
  ]);
  assert.deepEqual(mapLookupArgs('/w/m', u32le(256)), ['map', 'lookup', 'pinned', '/w/m', 'key', 'hex', '00', '01', '00', '00']);
  assert.equal(
    batchScript([mapUpdateArgs('/p', u32le(0), u32le(1)), mapLookupArgs('/p', u32le(0))]),
    'map update pinned /p key hex 00 00 00 00 value hex 01 00 00 00\nmap lookup pinned /p key hex 00 00 00 00\n',
  );
  assert.throws(() => batchScript([['map', 'lookup', 'pinned', '/a b']]), /blanks/);
  assert.deepEqual(loadallArgv('/src/lbbench_xdp.o', '/w/bpffs'), [
    'bpftool', 'prog', 'loadall', '/src/lbbench_xdp.o', '/w/bpffs/progs', 'pinmaps', '/w/bpffs/maps',
  ]);
  assert.deepEqual(attachArgv('native', '/w/bpffs/progs/lbb_xdp', 'eth0', 'lbb-ab12-lb0'), [
    'nsenter', '--net=/run/netns/lbb-ab12-lb0', 'bpftool', 'net', 'attach', 'xdpdrv', 'pinned', '/w/bpffs/progs/lbb_xdp', 'dev', 'eth0',
  ]);
  assert.deepEqual(attachArgv('generic', '/p', 'eth0'), ['bpftool', 'net', 'attach', 'xdpgeneric', 'pinned', '/p', 'dev', 'eth0']);
  assert.deepEqual(detachArgv('generic', 'eth0', 'ns1'), ['nsenter', '--net=/run/netns/ns1', 'bpftool', 'net', 'detach', 'xdpgeneric', 'dev', 'eth0']);
  assert.deepEqual(detachArgv('native', 'lb0'), ['bpftool', 'net', 'detach', 'xdpdrv', 'dev', 'lb0']);
  assert.deepEqual(inNetns(undefined, ['ip', 'link']), ['ip', 'link']);
});

test('table diffs, slots and counters', () => {
  assert.deepEqual(tableUpdates(undefined, [3, 4]), [[0, 3], [1, 4]]);
  assert.deepEqual(tableUpdates([3, 4, 5], [3, 7, 5]), [[1, 7]]);
  assert.deepEqual(tableUpdates([1, 2], [1, 2]), []);
  const slot = new Map([['be0', 0], ['be1', 1], ['be2', 2], ['be7', 7]]);
  const t = slotTable(['be7', 'be1'], (n) => slot.get(n)!, 13);
  assert.ok(t.every((s) => s === 7 || s === 1));
  assert.deepEqual(slotTable([], () => 0, 7), new Array(7).fill(LBB.noBackend));
  // Two CPUs of struct lbb_counter {packets, bytes}: 0x0102 + 1 packets, 2^32 + 10 bytes.
  const cpu = (p: number[], b: number[]) => [...p, ...b].map((x) => `0x${x.toString(16).padStart(2, '0')}`);
  assert.deepEqual(
    sumPerCpu([
      { cpu: 0, value: cpu([2, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0]) },
      { cpu: 1, value: cpu([1, 0, 0, 0, 0, 0, 0, 0], [10, 0, 0, 0, 0, 0, 0, 0]) },
    ]),
    [259n, 4294967306n],
  );
});

test('veth statistics: per-queue XDP counters summed, as deltas', () => {
  const before = parseEthtoolStats('NIC statistics:\n     peer_ifindex: 2\n     rx_queue_0_xdp_packets: 10\n     rx_queue_0_drops: 0\n');
  assert.deepEqual(before, { peer_ifindex: 2, rx_queue_0_xdp_packets: 10, rx_queue_0_drops: 0 });
  const now = parseEthtoolStats(
    'NIC statistics:\n     peer_ifindex: 2\n     rx_queue_0_xdp_packets: 25\n     rx_queue_1_xdp_packets: 5\n     rx_queue_0_drops: 15\n     tx_queue_0_xdp_xmit_errors: 0\n',
  );
  assert.deepEqual(xdpStatsDelta(before, now), { rx_xdp_packets: 20, rx_drops: 15, tx_xdp_xmit_errors: 0 });
});

test('flow hash is the kernel jhash_3words over the packet words', () => {
  // Reference values from the kernel's linux/jhash.h compiled natively.
  assert.equal(jhash3words(0, 0, 0, 0), 459859287);
  assert.equal(jhash3words(1, 2, 3, 4), 2164462655);
  assert.equal(jhash3words(0xffffffff, 0x80000000, 0x12345678, 6), 2710828503);
  assert.equal(flowIndex({ src: '198.18.128.7', dst: '198.18.100.1', proto: 'tcp', sport: 40000, dport: 80 }, 997), 918);
  // IPv6: each address folded to one word by XOR of its four (as loaded little-endian).
  const fold = (b: Uint8Array) => [0, 4, 8, 12].reduce((x, i) => (x ^ (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))) >>> 0, 0);
  assert.equal(
    flowIndex({ src: '2001:2:0:80::7', dst: '2001:2:0:100::1', proto: 'tcp', sport: 40000, dport: 80 }, 997),
    jhash3words(fold(ipv6Bytes('2001:2:0:80::7')), fold(ipv6Bytes('2001:2:0:100::1')), (0x9c | (0x40 << 8) | (0x00 << 16) | (0x50 << 24)) >>> 0, 6) % 997,
  );
});

// --- the BPF object ------------------------------------------------------------------------------

const source = readFileSync(join(XDP_SRC_DIR, 'lbbench_xdp.c'), 'utf8');

test('user space and lbbench_xdp.c agree on constants and names', () => {
  const define = (n: string) => Number(new RegExp(`#define ${n} (\\w+?)u?\\b`).exec(source)?.[1]);
  assert.equal(define('LBB_TABLE_MAX'), LBB.tableMax);
  assert.equal(define('LBB_BACKENDS_MAX'), LBB.backendsMax);
  assert.equal(define('LBB_NO_BACKEND'), LBB.noBackend);
  assert.deepEqual([...source.matchAll(/\} (lbb_\w+) SEC\("\.maps"\)/g)].map((m) => m[1]).sort(), Object.values(LBB.maps).sort());
  assert.deepEqual([...source.matchAll(/^int (lbb_\w+)\(struct xdp_md/gm)].map((m) => m[1]).sort(), Object.values(LBB.progs).sort());
  const drops = [...source.matchAll(/LBB_DROP_(\w+) = (\d+)/g)].filter((m) => m[1] !== 'MAX');
  assert.deepEqual(
    drops.map((m) => [m[1]!.toLowerCase(), Number(m[2])]),
    LBB.drops.map((d, i) => [d, i]),
  );
  assert.ok(isPrime(LBB.tableMax), 'the largest table must itself be usable');
});

const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const noClang = has('clang') ? undefined : 'needs clang and libbpf-dev (apt-get install -y clang llvm libbpf-dev, or: lbbench setup)';
const noRun =
  noClang ??
  (!has('bpftool') ? 'needs bpftool (apt-get install -y bpftool)' : process.getuid?.() !== 0 ? 'needs root (bpf syscall, mounting a bpffs)' : undefined);

describe('compiled program', { skip: noClang }, () => {
  let out: string;
  let obj: string;
  before(async () => {
    out = mkdtempSync(join(tmpdir(), 'lbbench-xdp-test-'));
    obj = await buildXdp(new LocalHost(), out);
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  test('clang builds an eBPF object', () => {
    const elf = readFileSync(obj);
    assert.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
    assert.equal(elf.readUInt16LE(18), 247, 'e_machine is EM_BPF');
  });

  test('struct layouts in BTF match what user space writes', { skip: has('bpftool') ? undefined : 'needs bpftool' }, () => {
    const btf = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', obj], { encoding: 'utf8' })) as {
      types: { kind: string; name: string; size?: number; members?: { name: string; bits_offset: number }[] }[];
    };
    for (const [name, { size, fields }] of Object.entries(LAYOUT)) {
      const t = btf.types.find((x) => x.kind === 'STRUCT' && x.name === name);
      assert.ok(t, `struct ${name} in BTF`);
      assert.equal(t.size, size, `sizeof(struct ${name})`);
      for (const [field, offset] of Object.entries(fields)) {
        assert.equal(t.members!.find((m) => m.name === field)?.bits_offset, offset * 8, `${name}.${field}`);
      }
    }
  });

  describe('bpftool prog run', { skip: noRun }, () => {
    let fs: string;
    let mounted = false;
    const TABLE = 251;
    const VIP = '198.18.100.1';
    const EGRESS_MAC = '02:00:00:00:00:e1';
    const MACS = ['02:00:00:00:00:b0', '02:00:00:00:00:b1', '02:00:00:00:00:b2'];
    const LB_MAC = '02:00:00:00:00:10';
    const CLIENT_MAC = '02:00:00:00:00:c0';
    let slots: number[];
    const map = (m: keyof typeof LBB.maps) => join(fs, 'maps', LBB.maps[m]);
    const bpftool = (args: string[], input?: string) => execFileSync('bpftool', args, { encoding: 'utf8', input });

    before(() => {
      fs = mkdtempSync(join(tmpdir(), 'lbbench-xdp-bpffs-'));
      execFileSync('mount', ['-t', 'bpf', 'bpf', fs]);
      mounted = true;
      execFileSync(loadallArgv(obj, fs)[0]!, loadallArgv(obj, fs).slice(1));
      slots = slotTable(['be0', 'be1', 'be2'], (n) => Number(n.slice(2)), TABLE);
      bpftool(
        ['batch', 'file', '-'],
        batchScript([
          ...MACS.map((mac, i) => mapUpdateArgs(map('backends'), u32le(i), backendValue(mac, `198.18.1.${11 + i}`))),
          ...slots.map((s, i) => mapUpdateArgs(map('table'), u32le(i), u32le(s))),
          mapUpdateArgs(map('config'), u32le(0), configValue({ vip: VIP, port: 80, proto: 'tcp', egressIfindex: 1, egressMac: EGRESS_MAC, tableSize: TABLE })),
        ]),
      );
    });
    after(() => {
      if (mounted) execFileSync('umount', [fs]);
      rmSync(fs, { recursive: true, force: true });
    });

    const ip = (s: string) => s.split('.').map(Number);
    function ipv4(o: { dst?: string; src?: string; proto?: number; sport?: number; dport?: number; frag?: number; cut?: number }): Buffer {
      const eth = [...macBytes(LB_MAC), ...macBytes(CLIENT_MAC), 0x08, 0x00];
      const l4 = [o.sport ?? 40000, o.dport ?? 80].flatMap((p) => [p >> 8, p & 0xff]);
      const ipHdr = [0x45, 0, 0, 40, 0, 1, (o.frag ?? 0) >> 8, (o.frag ?? 0) & 0xff, 64, o.proto ?? 6, 0, 0, ...ip(o.src ?? '198.18.128.7'), ...ip(o.dst ?? VIP)];
      const pkt = Buffer.from([...eth, ...ipHdr, ...l4, ...new Array(16).fill(0)]);
      return o.cut ? pkt.subarray(0, o.cut) : pkt;
    }
    /** Runs every packet through the program in one bpftool process. */
    function run(pkts: Buffer[]): { retval: number; out: Buffer }[] {
      const files = pkts.map((p, i) => {
        writeFileSync(join(out, `in${i}`), p);
        return [join(out, `in${i}`), join(out, `out${i}`)] as const;
      });
      const res = JSON.parse(
        bpftool(['-j', 'batch', 'file', '-'], batchScript(files.map(([i, o]) => ['prog', 'run', 'pinned', join(fs, 'progs', LBB.progs.lb), 'data_in', i, 'data_out', o]))),
      ) as { output: { retval: number } }[];
      return res.map((r, i) => ({ retval: r.output.retval, out: readFileSync(files[i]![1]) }));
    }
    const XDP = { DROP: 1, PASS: 2, REDIRECT: 4 };
    const counter = (m: keyof typeof LBB.maps, key: number) =>
      sumPerCpu((JSON.parse(bpftool(['-j', ...mapLookupArgs(map(m), u32le(key))])) as { values: { cpu: number; value: string[] }[] }).values);

    test('VIP:port flows are redirected to the maglev-chosen backend with rewritten MACs', () => {
      const flows = Array.from({ length: 60 }, (_, i) => ({ src: `198.18.128.${1 + (i % 7)}`, sport: 30000 + i * 17 }));
      const before = [0, 1, 2].map((s) => counter('bestats', s)[0]!);
      const res = run(flows.map((f) => ipv4({ src: f.src, sport: f.sport })));
      const hit = [0, 0, 0];
      res.forEach((r, i) => {
        const f = flows[i]!;
        const slot = slots[flowIndex({ src: f.src, dst: VIP, proto: 'tcp', sport: f.sport, dport: 80 }, TABLE)]!;
        hit[slot]!++;
        assert.equal(r.retval, XDP.REDIRECT, `flow ${i}`);
        assert.deepEqual([...r.out.subarray(0, 6)], [...macBytes(MACS[slot]!)], `flow ${i} goes to be${slot}`);
        assert.deepEqual([...r.out.subarray(6, 12)], [...macBytes(EGRESS_MAC)], 'source MAC is the egress interface');
        assert.ok(r.out.subarray(12).equals(ipv4({ src: f.src, sport: f.sport }).subarray(12)), 'IP header and payload untouched');
      });
      assert.ok(hit.every((n) => n > 5), `flows spread over the backends: ${hit}`);
      assert.deepEqual(
        [0, 1, 2].map((s) => counter('bestats', s)[0]! - before[s]!),
        hit.map(BigInt),
        'per-backend packet counters',
      );
    });

    test('everything else passes untouched: ARP, IPv6, other port/address/protocol, truncated', () => {
      const arp = Buffer.from([...macBytes('ff:ff:ff:ff:ff:ff'), ...macBytes(CLIENT_MAC), 0x08, 0x06, ...new Array(28).fill(1)]);
      const v6 = Buffer.from([...macBytes(LB_MAC), ...macBytes(CLIENT_MAC), 0x86, 0xdd, 0x60, ...new Array(59).fill(0)]);
      const pkts = [arp, v6, ipv4({ dport: 81 }), ipv4({ dst: '198.18.100.2' }), ipv4({ proto: 17 }), ipv4({ proto: 1 }), ipv4({ cut: 14 + 20 + 2 })];
      const res = run(pkts);
      res.forEach((r, i) => {
        assert.equal(r.retval, XDP.PASS, `packet ${i}`);
        assert.ok(r.out.equals(pkts[i]!), `packet ${i} unchanged`);
      });
    });

    const ip6 = (s: string) => [...ipv6Bytes(s)];
    const VIP6 = '2001:2:0:100::1';
    function ipv6(o: { dst?: string; src?: string; next?: number; sport?: number; dport?: number; cut?: number }): Buffer {
      const eth = [...macBytes(LB_MAC), ...macBytes(CLIENT_MAC), 0x86, 0xdd];
      const l4 = [o.sport ?? 40000, o.dport ?? 80].flatMap((p) => [p >> 8, p & 0xff]);
      const hdr = [0x60, 0, 0, 0, 0, 20, o.next ?? 6, 64, ...ip6(o.src ?? '2001:2:0:80::7'), ...ip6(o.dst ?? VIP6)];
      const pkt = Buffer.from([...eth, ...hdr, ...l4, ...new Array(16).fill(0)]);
      return o.cut ? pkt.subarray(0, o.cut) : pkt;
    }

    test('IPv6: with an IPv6 VIP configured its flows go to the maglev-chosen backend, the rest (IPv4 now) passes', () => {
      const config = (vip: string) => bpftool(mapUpdateArgs(map('config'), u32le(0), configValue({ vip, port: 80, proto: 'tcp', egressIfindex: 1, egressMac: EGRESS_MAC, tableSize: TABLE })));
      config(VIP6);
      try {
        const flows = Array.from({ length: 60 }, (_, i) => ({ src: `2001:2:0:80::${(1 + (i % 7)).toString(16)}`, sport: 30000 + i * 17 }));
        const hit = [0, 0, 0];
        run(flows.map((f) => ipv6({ src: f.src, sport: f.sport }))).forEach((r, i) => {
          const f = flows[i]!;
          const slot = slots[flowIndex({ src: f.src, dst: VIP6, proto: 'tcp', sport: f.sport, dport: 80 }, TABLE)]!;
          hit[slot]!++;
          assert.equal(r.retval, XDP.REDIRECT, `flow ${i}`);
          assert.deepEqual([...r.out.subarray(0, 6)], [...macBytes(MACS[slot]!)], `flow ${i} goes to be${slot}`);
          assert.ok(r.out.subarray(12).equals(ipv6({ src: f.src, sport: f.sport }).subarray(12)), 'IPv6 header and payload untouched');
        });
        assert.ok(hit.every((n) => n > 5), `IPv6 flows spread over the backends: ${hit}`);
        // Hop-by-hop (0) and fragment (44) headers, ICMPv6 (58: neighbour discovery), another port
        // or address, a cut header, and IPv4 to the old VIP: all the kernel's.
        const pass = [ipv6({ next: 0 }), ipv6({ next: 44 }), ipv6({ next: 58 }), ipv6({ dport: 81 }), ipv6({ dst: '2001:2:0:100::2' }), ipv6({ cut: 14 + 40 + 2 }), ipv6({ cut: 14 + 39 }), ipv4({})];
        run(pass).forEach((r, i) => {
          assert.equal(r.retval, XDP.PASS, `packet ${i}`);
          assert.ok(r.out.equals(pass[i]!), `packet ${i} unchanged`);
        });
      } finally {
        config(VIP);
      }
    });

    test('fragments of one datagram stay together (addresses-only hash)', () => {
      const first = ipv4({ frag: 0x2000 }); // MF, offset 0: has ports
      const later = ipv4({ frag: 0x0005, sport: 1, dport: 2 }); // offset 40: bytes there are payload
      const le = (b: number[]) => (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
      const slot = slots[jhash3words(le(ip('198.18.128.7')), le(ip(VIP)), 0, 6) % TABLE]!;
      for (const r of run([first, later])) {
        assert.equal(r.retval, XDP.REDIRECT);
        assert.deepEqual([...r.out.subarray(0, 6)], [...macBytes(MACS[slot]!)]);
      }
    });

    test('an empty table entry drops and counts', () => {
      const idx = flowIndex({ src: '198.18.128.9', dst: VIP, proto: 'tcp', sport: 5555, dport: 80 }, TABLE);
      const before = counter('drops', 0)[0]!;
      bpftool(mapUpdateArgs(map('table'), u32le(idx), u32le(LBB.noBackend)));
      try {
        const [r] = run([ipv4({ src: '198.18.128.9', sport: 5555 })]);
        assert.equal(r!.retval, XDP.DROP);
        assert.equal(counter('drops', LBB.drops.indexOf('no_backend'))[0]! - before, 1n);
      } finally {
        bpftool(mapUpdateArgs(map('table'), u32le(idx), u32le(slots[idx]!)));
      }
    });
  });
});
