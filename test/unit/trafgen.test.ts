import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSinkCounter, parseTrafgen, trafgen, trafgenSynConfig } from '../../harness/load/trafgen.ts';
import type { PacketMetrics } from '../../harness/results/types.ts';
import { ParseError } from '../../harness/errors.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'trafgen');
const real = readFileSync(join(FIX, 'syn-3s.stdout'), 'utf8');

test('trafgen exit summary recorded from a real 3 s run', () => {
  assert.deepEqual(parseTrafgen(real), { packets: 611584, bytes: 36695040, seconds: 2.990584 });
});

test('truncated trafgen output is a ParseError, never zero packets', () => {
  for (let cut = 0; cut < real.length - 1; cut += 7) {
    const head = real.slice(0, cut);
    if (/usec on CPU/.test(head)) continue;
    assert.throws(() => parseTrafgen(head), ParseError, `cut at ${cut}`);
  }
  assert.throws(() => parseTrafgen('Cannot set system socket memory in /proc/sys/net/core/rmem_default: Permission denied\n'), ParseError);
});

test('SYN config: header functions, random source port', () => {
  assert.equal(
    trafgenSynConfig({ dstMac: 'aa:bb:cc:dd:ee:ff', srcMac: '11:22:33:44:55:66', srcIp: '198.18.128.1', dstIp: '198.18.100.1', dstPort: 80 }),
    '{\n  eth(da=aa:bb:cc:dd:ee:ff, sa=11:22:33:44:55:66),\n  ipv4(saddr=198.18.128.1, daddr=198.18.100.1, ttl=64),\n  tcp(sp=drnd(), dp=80, syn),\n  fill(0x00, 6)\n}\n',
  );
});

test('sink counter read from a real raw-table listing; a missing sink is a ParseError', () => {
  const listing = readFileSync(join(FIX, 'raw-prerouting-sink.txt'), 'utf8');
  assert.equal(parseSinkCounter(listing), 3);
  assert.throws(() => parseSinkCounter(listing.split('\n').filter((l) => !l.includes('sink')).join('\n')), ParseError);
  assert.throws(() => parseSinkCounter(''), ParseError);
});

test('generator: what arrived at the backends against what trafgen sent', async () => {
  const gen = trafgen.parse(real, '');
  assert.deepEqual(gen.packets.sent, 611584);
  assert.equal(gen.packets.frameBytes, 60);
  assert.ok(Number.isNaN(gen.packets.received), 'nothing is known to have arrived before the sinks are read');
  // attach() on a host whose every command answers with the recorded listing.
  const listing = readFileSync(join(FIX, 'raw-prerouting-sink.txt'), 'utf8');
  const host = { name: 'fake', exec: async (argv: string[]) => ({ stdout: argv[0] === 'cat' ? 'aa:bb:cc:dd:ee:ff\n' : listing, stderr: '', code: 0 }) } as never;
  const be = (name: string) => ({ name, host, ip: '198.18.1.11', port: 80, statusPort: 8081 });
  const steps: string[] = [];
  const attached = await trafgen.attach!({
    topo: { lb: { host, clientIf: 'eth0' }, client: { host, ip: '198.18.0.2' } } as never,
    backends: [be('be0'), be('be1')],
    endpoint: { ip: '198.18.100.1', port: 80 },
    load: {} as never,
    teardown: { add: (label: string) => steps.push(label) } as never,
    workDir: '/w',
  });
  assert.deepEqual(steps, ['be0: remove the trafgen sink', 'be1: remove the trafgen sink', 'client0: eth0 back to noqueue']);
  assert.deepEqual(attached.extra, { dstMac: 'aa:bb:cc:dd:ee:ff', srcMac: 'aa:bb:cc:dd:ee:ff', srcIp: '198.18.0.2' });
  assert.deepEqual(await attached.counters(), { be0: 3, be1: 3 });
  const m = attached.metrics(gen, { be0: 300000, be1: 250000 }) as PacketMetrics;
  assert.equal(m.packets.received, 550000);
  assert.equal(m.packets.lossFraction, 1 - 550000 / 611584);
  assert.equal(m.packets.receivedPerSec, 550000 / 2.990584);
  assert.equal(m.packets.receivedBitsPerSec, (550000 * 60 * 8) / 2.990584);
  assert.deepEqual(m.perBackend, { be0: 300000, be1: 250000 });
});

test('attach: a FIFO on the client for the point; on a shaped topology the tbf comes back after', async () => {
  const attachOn = async (linkRate?: number) => {
    const cmds: string[] = [];
    const host = {
      name: 'fake',
      exec: async (argv: string[]) => {
        cmds.push(argv.join(' '));
        return { stdout: argv[0] === 'cat' ? 'aa:bb:cc:dd:ee:ff\n' : '', stderr: '', code: 0 };
      },
    } as never;
    const steps: [string, () => Promise<unknown>][] = [];
    await trafgen.attach!({
      topo: { lb: { host, clientIf: 'eth0' }, client: { host, ip: '198.18.0.2' }, linkRate } as never,
      backends: [],
      endpoint: { ip: '198.18.100.1', port: 80 },
      load: {} as never,
      teardown: { add: (label: string, undo: () => Promise<unknown>) => steps.push([label, undo]) } as never,
      workDir: '/w',
    });
    const attached = cmds.filter((c) => c.startsWith('tc '));
    cmds.length = 0;
    for (const [, undo] of steps) await undo();
    return { attached, labels: steps.map(([l]) => l), undone: cmds };
  };
  assert.deepEqual(await attachOn(), {
    attached: ['tc qdisc replace dev eth0 root pfifo limit 1000'],
    labels: ['client0: eth0 back to noqueue'],
    undone: ['tc qdisc del dev eth0 root'],
  });
  assert.deepEqual(await attachOn(20e6), {
    attached: ['tc qdisc replace dev eth0 root pfifo limit 1000'],
    labels: ['client0: eth0 shaped again'],
    undone: ['tc qdisc replace dev eth0 root tbf rate 20000000bit burst 25000 latency 50ms'],
  });
});

test('trafgen argv: bounded by timeout -s INT, one thread, pinned', () => {
  assert.deepEqual(trafgen.buildArgv({ load: {} as never, target: { ip: '198.18.100.1', port: 80, path: '/' }, durationS: 3, workDir: '/w', cpus: '1' }), [
    'taskset', '-c', '1', 'timeout', '-s', 'INT', '3', 'trafgen', '--dev', 'eth0', '--conf', '/w/trafgen-syn.cfg', '-P', '1', '-q',
  ]);
  assert.match(trafgen.unsupported!({ kind: 'baremetal' } as never, [2]) ?? '', /MoonGen on bare metal/);
  assert.equal(trafgen.unsupported!({ kind: 'netns' } as never, [2]), undefined);
});
