import { test } from 'node:test';
import assert from 'node:assert/strict';
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
