// topology.linkRate: the rate parsed from what a user writes, and the tc commands that shape both
// ends of every veth link of a netns topology.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLinkRate } from '../../harness/scenario/schema.ts';
import { formatRate, linkFacts, shapeLinks, shapingLines, tbfArgs, tbfBurstBytes } from '../../harness/topology/shaping.ts';
import { linkEnds, netnsLinks } from '../../harness/topology/netns.ts';
import { ProvisionError } from '../../harness/errors.ts';

test('parseLinkRate: SI units in bits, tc\'s byte units refused with the bit spelling', () => {
  assert.equal(parseLinkRate('1gbit'), 1e9);
  assert.equal(parseLinkRate('100mbit'), 100e6);
  assert.equal(parseLinkRate('20Mbit'), 20e6);
  assert.equal(parseLinkRate(' 500 kbit '), 500e3);
  assert.equal(parseLinkRate('1.5gbit'), 1.5e9);
  assert.equal(parseLinkRate('100000bit'), 100e3);
  assert.equal(parseLinkRate('100gbit'), 100e9);
  assert.match(parseLinkRate('12.5mbps') as string, /write the rate in bits: "100mbit"/);
  assert.match(parseLinkRate('0.3kbps') as string, /"2\.4kbit"/);
  assert.match(parseLinkRate('1g') as string, /unknown unit "g"/);
  assert.match(parseLinkRate('gbit') as string, /^expected a link rate like/);
  assert.match(parseLinkRate('-1mbit') as string, /^expected a link rate like/);
  assert.match(parseLinkRate('99kbit') as string, /between "100kbit" and "100gbit"/);
  assert.match(parseLinkRate('101gbit') as string, /between "100kbit" and "100gbit"/);
});

test('tbf bucket: 10 ms of the rate (rate/HZ for HZ ≥ 100), never under four full frames', () => {
  assert.equal(tbfBurstBytes(1e9), 1_250_000);
  assert.equal(tbfBurstBytes(100e6), 125_000);
  assert.equal(tbfBurstBytes(20e6), 25_000);
  assert.equal(tbfBurstBytes(500e3), 4 * 1514);
  for (const r of [100e3, 1e6, 20e6, 1e9, 100e9]) {
    assert.ok(tbfBurstBytes(r) >= r / 8 / 1000, `${r}: at least rate/HZ at HZ 1000`);
    assert.ok(tbfBurstBytes(r) >= 1514, `${r}: a full frame fits`);
  }
  assert.deepEqual(tbfArgs(20e6), ['tbf', 'rate', '20000000bit', 'burst', '25000', 'latency', '50ms']);
});

test('every link shaped at both ends: tc batch lines per namespace', () => {
  const ends = linkEnds(netnsLinks({ client: 'c', lb: 'l', sw: 's', be: ['b0', 'b1'] }));
  assert.deepEqual(Object.fromEntries(ends), { c: ['eth0'], l: ['eth0', 'eth1'], s: ['lb0', 'be0', 'be1'], b0: ['eth0'], b1: ['eth0'] });
  assert.deepEqual(shapingLines(ends.get('l')!, 100e6), [
    'qdisc replace dev eth0 root tbf rate 100000000bit burst 125000 latency 50ms',
    'qdisc replace dev eth1 root tbf rate 100000000bit burst 125000 latency 50ms',
  ]);
  // A standby LB node: the client and both LB nodes meet on the switch's client bridge ports.
  const standby = linkEnds(netnsLinks({ client: 'c', lb: 'l', lb1: 'l1', sw: 's', be: ['b0'] }));
  assert.deepEqual(Object.fromEntries(standby), { c: ['eth0'], l: ['eth0', 'eth1'], l1: ['eth0', 'eth1'], s: ['c0', 'l0c', 'l1c', 'lb0', 'lb1', 'be0'], b0: ['eth0'] });
  // Ends can be made into anything (the builder renames the temporary veth names with it).
  assert.deepEqual(Object.fromEntries(linkEnds([['x', 'eth0', 'y', 'p0']], (dev, i, end) => `${i}${end}:${dev}`)), { x: ['0a:eth0'], y: ['0b:p0'] });
});

test('shapeLinks: one tc batch per namespace; a failure names the devices and the fix', async () => {
  const calls: { argv: string[]; input?: string }[] = [];
  const host = (fail: boolean) =>
    ({
      name: 'fake',
      exec: async (argv: string[], o: { input?: string } = {}) => {
        calls.push({ argv, input: o.input });
        if (fail) throw new Error('RTNETLINK answers: No such file or directory');
        return { stdout: '', stderr: '', code: 0 };
      },
    }) as never;
  await shapeLinks(host(false), new Map([['lbb-x-lb0', ['eth0', 'eth1']]]), 20e6);
  assert.deepEqual(calls, [
    {
      argv: ['tc', '-n', 'lbb-x-lb0', '-b', '-'],
      input: 'qdisc replace dev eth0 root tbf rate 20000000bit burst 25000 latency 50ms\nqdisc replace dev eth1 root tbf rate 20000000bit burst 25000 latency 50ms\n',
    },
  ]);
  await assert.rejects(shapeLinks(host(true), new Map([['lbb-x-sw', ['be0']]]), 20e6), (e: unknown) => {
    assert.ok(e instanceof ProvisionError);
    assert.match(e.message, /^shaping be0 in lbb-x-sw to 20mbit failed: RTNETLINK/);
    assert.match(e.hint ?? '', /CONFIG_NET_SCH_TBF.*remove topology\.linkRate/);
    return true;
  });
});

test('the rate as results and reports show it', () => {
  assert.deepEqual([formatRate(1e9), formatRate(20e6), formatRate(1.5e9), formatRate(500e3), formatRate(123)], ['1gbit', '20mbit', '1500mbit', '500kbit', '123bit']);
  assert.deepEqual(linkFacts({ linkRate: 20e6 }), { linkRate: '20mbit' });
  assert.deepEqual(linkFacts({}), {});
});
