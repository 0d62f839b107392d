import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrafgen, trafgenSynConfig } from '../../harness/load/trafgen.ts';
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
