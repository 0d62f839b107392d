import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { diffCommands, parseMethods, parseStats, restoreInput } from '../../harness/lb/ipvs.ts';
import { ParseError } from '../../harness/errors.ts';

const VIP = '198.18.100.1';
const rs = (i: number, weight = 1) => ({ ip: `198.18.1.${11 + i}`, port: 80, weight });

test('restoreInput: one service, real servers with the mode flag and weight; dr/tun keep the VIP port', () => {
  assert.equal(
    restoreInput(VIP, 80, { mode: 'nat', scheduler: 'rr' }, [rs(0), rs(1, 3)]),
    `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r 198.18.1.11:80 -m -w 1\n-a -t ${VIP}:80 -r 198.18.1.12:80 -m -w 3\n`,
  );
  assert.match(restoreInput(VIP, 80, { mode: 'dr', scheduler: 'mh' }, [{ ip: '198.18.1.11', port: 8080, weight: 1 }]), /-r 198\.18\.1\.11:80 -g -w 1/);
  assert.match(restoreInput(VIP, 80, { mode: 'tun', scheduler: 'wrr' }, [rs(0)]), /-s wrr\n.* -i -w 1/);
});

test('diffCommands: delete removed, add new, edit changed weights; nothing for no change', () => {
  assert.deepEqual(diffCommands(VIP, 80, 'nat', [rs(0), rs(1), rs(2)], [rs(0), rs(1)]), [['-d', '-t', `${VIP}:80`, '-r', '198.18.1.13:80']]);
  assert.deepEqual(diffCommands(VIP, 80, 'dr', [rs(0)], [rs(0, 5), rs(3)]), [
    ['-a', '-t', `${VIP}:80`, '-r', '198.18.1.14:80', '-g', '-w', '1'],
    ['-e', '-t', `${VIP}:80`, '-r', '198.18.1.11:80', '-g', '-w', '5'],
  ]);
  assert.deepEqual(diffCommands(VIP, 80, 'tun', [rs(0), rs(1)], [rs(1), rs(0)]), []);
});

test('parseStats/parseMethods: garbled or truncated output is an error, never zeros', () => {
  assert.throws(() => parseStats(''), ParseError);
  assert.throws(() => parseStats('IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n'), ParseError);
  assert.throws(() => parseStats(`TCP  ${VIP}:80   10   20\n`), ParseError);
  assert.throws(() => parseStats(`TCP  ${VIP}:80   10   20  30  40  50\n  -> 198.18.1.11:80   1 2 x 4 5\n`), ParseError);
  assert.deepEqual(parseMethods(''), {});
});

// Recorded in the Debian guest (ipvsadm v1.31, kernel 6.1) right after 1 s wrk runs. Kernel 6.1
// publishes the counters from its 2 s estimator timer, so stats-nat.txt (read at once) is still all
// zeros and stats-dr.txt shows the revived destinations' totals: both are what ipvsadm printed.
const fixture = (name: string) => readFileSync(new URL(`../fixtures/ipvs/${name}`, import.meta.url), 'utf8');

test('parseStats on recorded ipvsadm --stats --exact output; a truncated copy is an error', () => {
  assert.deepEqual(parseStats(fixture('stats-nat.txt')).service, { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 });
  const s = parseStats(fixture('stats-dr.txt'));
  assert.deepEqual(Object.keys(s.servers), ['198.18.1.11', '198.18.1.12']);
  for (const c of Object.values(s.servers)) assert.ok(c.inPkts > 0 && c.outPkts > 0 && c.inBytes > 0, JSON.stringify(c));
  assert.ok(s.service.conns >= 0);
  const text = fixture('stats-dr.txt');
  const cut = text.slice(0, text.lastIndexOf('  -> ') + 30);
  assert.throws(() => parseStats(cut), ParseError);
});

test('parseMethods on recorded ipvsadm -Ln output: Masq → nat, Route → dr', () => {
  assert.deepEqual(parseMethods(fixture('list-nat.txt')), { '198.18.1.11': 'nat', '198.18.1.12': 'nat' });
  assert.deepEqual(parseMethods(fixture('list-dr.txt')), { '198.18.1.11': 'dr', '198.18.1.12': 'dr' });
});

test('IPv6: bracketed service and real servers in ipvsadm input; the recorded IPv6 pages parse to bare addresses', () => {
  const rs = (i: number) => ({ ip: `2001:2:0:1::${11 + i}`, port: 80, weight: 1 });
  assert.equal(restoreInput('2001:2:0:100::1', 80, { mode: 'nat', scheduler: 'rr' }, [rs(0)]), '-A -t [2001:2:0:100::1]:80 -s rr\n-a -t [2001:2:0:100::1]:80 -r [2001:2:0:1::11]:80 -m -w 1\n');
  assert.deepEqual(diffCommands('2001:2:0:100::1', 80, 'nat', [rs(0), rs(1)], [rs(1)]), [['-d', '-t', '[2001:2:0:100::1]:80', '-r', '[2001:2:0:1::11]:80']]);
  const stats = parseStats(fixture('stats-nat6.txt'));
  assert.deepEqual(stats.service, { conns: 845, inPkts: 4220, outPkts: 4210, inBytes: 365200, outBytes: 445960 });
  assert.deepEqual(Object.keys(stats.servers), ['2001:2:0:1::11', '2001:2:0:1::12']);
  assert.equal(stats.servers['2001:2:0:1::12']!.conns, 423);
  assert.deepEqual(parseMethods(fixture('list-nat6.txt')), { '2001:2:0:1::11': 'nat', '2001:2:0:1::12': 'nat' });
  assert.throws(() => parseStats(fixture('stats-nat6.txt').replace('4108', 'x').replace('2108', 'lots')), ParseError);
});
