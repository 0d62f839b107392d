// The sampler's parsers on output recorded from real namespaces: a busy loop (one core of user
// time in one process) and an iperf3 stream at -b 200M (200 Mbit/s on the receiver's veth).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ParseError } from '../../harness/errors.ts';
import { parseConntrackStat, parseNetDev, parsePidStat, parseProcStat, parseSamplerOutput, parseSnmp } from '../../harness/sampler/proc.ts';
import { samplesOf } from '../../harness/sampler/series.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/sampler/${name}`, import.meta.url), 'utf8');
const BUSY = fixture('netns-busy-loop.txt');
const IPERF = fixture('netns-iperf3-200m.txt');

test('sampler: a busy loop is one core of user time, in its own process', () => {
  const ticks = parseSamplerOutput(BUSY);
  assert.equal(ticks.length, 3);
  const s = samplesOf(ticks);
  assert.equal(s.length, 2);
  for (const x of s) {
    const proc = Object.entries(x.procs);
    assert.equal(proc.length, 1, 'the PID that never existed is left out');
    assert.match(proc[0]![0], /^sh:\d+$/);
    assert.ok(proc[0]![1] > 0.8 && proc[0]![1] <= 1.05, `busy loop ${proc[0]![1]} cores`);
    assert.ok(x.cpu.user >= proc[0]![1] * 0.9, 'host user time includes the loop');
    assert.equal(x.cpu.cpus, 2);
    assert.ok(x.cpu.busy <= x.cpu.cpus);
    assert.deepEqual(x.ifaces, {}, 'lo is not a data-plane interface');
    assert.equal(x.conntrack?.entries, 0);
  }
  assert.ok(Math.abs(s[1]!.t - (ticks[2]!.atMs - ticks[0]!.atMs) / 1000) < 1e-9);
});

test('sampler: an iperf3 stream at 200 Mbit/s shows as 200 Mbit/s received on the veth', () => {
  const s = samplesOf(parseSamplerOutput(IPERF));
  assert.equal(s.length, 4);
  // The stream runs 2 s from just before the first snapshot: the middle intervals are full.
  for (const x of s.slice(0, 3)) {
    const v = x.ifaces['lbbvb']!;
    assert.ok(v.rxBitsPerSec > 180e6 && v.rxBitsPerSec < 220e6, `${v.rxBitsPerSec} bit/s`);
    assert.ok(v.rxPps > 100 && v.txPps > 0, 'TCP segments in, ACKs out');
    assert.equal(v.dropsPerSec, 0);
  }
});

test('sampler: a snapshot cut short by stopping the sampler is dropped; garbage is an error', () => {
  const whole = parseSamplerOutput(BUSY);
  const cut = BUSY.slice(0, BUSY.lastIndexOf('@@end'));
  assert.equal(parseSamplerOutput(cut).length, whole.length - 1);
  assert.throws(() => parseSamplerOutput(`garbage\n${BUSY}`), ParseError);
  assert.throws(() => parseSamplerOutput(BUSY.replace('@@end', '')), /has no @@end/);
  assert.throws(() => parseSamplerOutput('@@tick soon\n@@end\n'), /@@tick: expected a number/);
  assert.deepEqual(parseSamplerOutput(''), []);
  // A process that exited mid-snapshot (section header, then nothing) is simply absent from it.
  const vanished = BUSY.replace(/(@@pid (\d+)\n)[^\n]*\n/, '$1');
  const s = samplesOf(parseSamplerOutput(vanished));
  assert.equal(s.length, 2);
  assert.deepEqual(s[0]!.procs, {}, 'no rate for the interval it vanished from');
  assert.equal(Object.keys(s[1]!.procs).length, 1);
  // Half a stat line is still garbage.
  assert.throws(() => samplesOf(parseSamplerOutput(BUSY.replace(/(@@pid \d+\n)[^\n]*\n/, '$12555 (sh\n'))), ParseError);
  // A /proc file mangled in transit fails the interval rather than reading as zero.
  const mangled = BUSY.replace(/^cpu {2}\d+/m, 'cpu  x');
  assert.throws(() => samplesOf(parseSamplerOutput(mangled)), /\/proc\/stat cpu user: expected a number/);
});

test('sampler: /proc parsers on edge cases', () => {
  assert.deepEqual(parsePidStat('42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20'), { pid: 42, comm: 'my (odd) name', utime: 250, stime: 50 });
  assert.throws(() => parsePidStat('42 (x) S 1 2'), /fields/);
  assert.throws(() => parseProcStat('intr 1 2 3\n'), /no "cpu" line/);
  assert.deepEqual(parseSnmp('Tcp: A B\nTcp: 1 2\nUdp: C\nUdp: 3\n'), { 'Tcp.A': 1, 'Tcp.B': 2, 'Udp.C': 3 });
  assert.throws(() => parseSnmp('Tcp: A B\nTcp: 1\n'), /don't match/);
  assert.throws(() => parseNetDev('eth0: 1 2 3\n'), /missing header/);
  const ct = parseConntrackStat('entries  found drop\n0000000a  00000001 00000002\n0000000a  00000003 00000004\n');
  assert.deepEqual(ct, { entries: 10, found: 4, drop: 6 });
  // A counter that went backwards (an interface recreated) is no rate, not a negative one.
  const [a, b] = parseSamplerOutput(IPERF);
  const back = samplesOf([b!, { ...a!, atMs: b!.atMs + 500 }]);
  assert.equal(back[0]!.ifaces['lbbvb']!.rxPps, 0);
});
