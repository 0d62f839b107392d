import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MOONGEN_KILL_AFTER_S,
  MOONGEN_STARTUP_S,
  moongen,
  moongenArgv,
  moongenPreflightMessage,
  parseHistogramCsv,
  parseMoongen,
  parseMoongenCsv,
} from '../../harness/load/moongen.ts';
import { ConfigError, ParseError, PreflightError } from '../../harness/errors.ts';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'moongen');
const fixture = (name: string) => readFileSync(join(FIX, name), 'utf8');
const run = fixture('l3-load-latency.stdout');

/** assert.throws validator: a moongen ParseError whose message (and hint) match. */
function parseError(message: RegExp, hint?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ParseError, `not a ParseError: ${String(e)}`);
    assert.equal(e.tool, 'moongen');
    assert.match(e.message, message);
    if (hint) assert.match(e.hint ?? '', hint);
    return true;
  };
}

test('argv: l3-load-latency options, bounded by timeout with one SIGINT', () => {
  assert.deepEqual(
    moongenArgv({ moongen: '/opt/MoonGen/build/MoonGen', script: '/opt/MoonGen/examples/l3-load-latency.lua', txDev: 0, rxDev: 1, rate: 1000, size: 60, flows: 4, timeS: 10, extra: ['--dpdk-config=/etc/lbbench/dpdk-conf.lua'] }),
    [
      'timeout', '--foreground', '--preserve-status', '--signal=INT', `--kill-after=${MOONGEN_KILL_AFTER_S}`, String(10 + MOONGEN_STARTUP_S),
      '/opt/MoonGen/build/MoonGen', '/opt/MoonGen/examples/l3-load-latency.lua', '0', '1',
      '--rate', '1000', '--flows', '4', '--size', '60',
      '--dpdk-config=/etc/lbbench/dpdk-conf.lua',
    ],
  );
  // Unset options are left to the script's defaults; fractional seconds round up.
  assert.deepEqual(moongenArgv({ moongen: 'MoonGen', script: 'l3.lua', txDev: 2, rxDev: 3, timeS: 4.2 }).slice(5), [String(5 + MOONGEN_STARTUP_S), 'MoonGen', 'l3.lua', '2', '3']);
  assert.deepEqual(moongenArgv({ moongen: 'MoonGen', script: 'l3.lua', txDev: 0, rxDev: 1, timeS: 5, rate: 0 }).slice(-2), ['--rate', '0']);
  for (const bad of [{ txDev: -1 }, { rxDev: 0.5 }, { timeS: 0 }, { timeS: Infinity }, { rate: -5 }, { size: 59 }, { flows: 0 }]) {
    assert.throws(() => moongenArgv({ moongen: 'MoonGen', script: 'l3.lua', txDev: 0, rxDev: 1, timeS: 5, ...bad }), ConfigError, JSON.stringify(bad));
  }
});

test('l3-load-latency run: final summaries, per-second samples, latency', () => {
  const r = parseMoongen(run);
  assert.deepEqual(r.devices, [
    { dev: 0, tx: { mppsAvg: 1.96, mppsStdDev: 0.01, mbitAvg: 1002, mbitStdDev: 3, mbitWithFramingAvg: 1315, packets: 20981311, bytes: 1343058832 } },
    { dev: 1, rx: { mppsAvg: 1.96, mppsStdDev: 0.01, mbitAvg: 1002, mbitStdDev: 3, mbitWithFramingAvg: 1315, packets: 20980472, bytes: 1343005136 } },
  ]);
  assert.deepEqual(r.latency, { samples: 8762, averageNs: 15733.6, stdDevNs: 60.3, quartilesNs: [15692.8, 15731.2, 15769.6] });
  assert.equal(r.samples.length, 20);
  assert.deepEqual(r.samples.slice(0, 2), [
    { t: 1, dev: 0, dir: 'tx', mpps: 1.95, mbit: 996, mbitWithFraming: 1307 },
    { t: 1, dev: 1, dir: 'rx', mpps: 1.95, mbit: 996, mbitWithFraming: 1307 },
  ]);
  const tx = r.samples.filter((s) => s.dir === 'tx');
  assert.deepEqual(tx.map((s) => s.t), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(tx.map((s) => s.mpps), [1.95, 1.95, 1.94, 1.96, 1.96, 1.96, 1.96, 1.97, 1.96, 1.95]);
  assert.deepEqual(tx.map((s) => s.mbit), [996, 1000, 995, 1003, 1002, 1004, 1002, 1006, 1004, 1000]);
  assert.deepEqual(tx.map((s) => s.mbitWithFraming), [1307, 1312, 1306, 1317, 1316, 1318, 1315, 1321, 1317, 1312]);
  assert.ok(r.samples.filter((s) => s.dir === 'rx').every((s) => s.dev === 1));
});

test('fixture semantics: averages leave out the first sample, histogram.csv gives the latency summary', () => {
  const r = parseMoongen(run);
  const tx = r.samples.filter((s) => s.dir === 'tx').slice(1);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // Each printed sample and the printed average are rounded: 0.005 + 0.005 Mpps, 0.5 + 0.5 Mbit/s.
  assert.ok(Math.abs(mean(tx.map((s) => s.mpps)) - r.devices[0]!.tx!.mppsAvg) <= 0.01 + 1e-9);
  assert.ok(Math.abs(mean(tx.map((s) => s.mbit)) - r.devices[0]!.tx!.mbitAvg) <= 1);

  const hist = parseHistogramCsv(fixture('histogram.csv'));
  const n = hist.reduce((a, [, c]) => a + c, 0);
  const avg = hist.reduce((a, [k, c]) => a + k * c, 0) / n;
  const sd = Math.sqrt(hist.reduce((a, [k, c]) => a + c * (k - avg) ** 2, 0) / (n - 1));
  // histogram.lua calc(): the first value at or past each quarter of the samples.
  const quarts: number[] = [];
  let idx = 0;
  for (const [k, c] of hist) {
    for (let i = 0; i < c; i++) {
      if (quarts[0] === undefined && idx >= n / 4) quarts[0] = k;
      else if (quarts[1] === undefined && idx >= n / 2) quarts[1] = k;
      else if (quarts[2] === undefined && idx >= (3 * n) / 4) quarts[2] = k;
      idx++;
    }
  }
  assert.deepEqual(
    { samples: n, averageNs: Number(avg.toFixed(1)), stdDevNs: Number(sd.toFixed(1)), quartilesNs: quarts },
    r.latency,
  );
});

test('truncated MoonGen output is a ParseError, never zeros', () => {
  const finalsEnd = run.indexOf('\n', run.indexOf('bytes (incl. CRC)', run.indexOf('bytes (incl. CRC)') + 1));
  for (let cut = 0; cut < finalsEnd; cut += 7) {
    assert.throws(() => parseMoongen(run.slice(0, cut)), ParseError, `cut at ${cut}`);
  }
  // Cut inside the latency line: it looks like one, so it has to be complete.
  const samplesAt = run.indexOf('Samples: ');
  const samplesEnd = run.indexOf('\n', samplesAt);
  for (let cut = samplesAt + 1; cut < samplesEnd; cut += 7) {
    assert.throws(() => parseMoongen(run.slice(0, cut)), ParseError, `cut at ${cut}`);
  }
  assert.throws(() => parseMoongen(''), parseError(/no MoonGen output recognized/));
});

test('run killed midway: no final summary', () => {
  assert.throws(
    () => parseMoongen(fixture('killed-midway.stdout')),
    parseError(/no final summary .* after 12 rate lines: run cut off or killed/, /SIGINT/),
  );
});

test('no DPDK ports, EAL failure, no timestamps, garbage: ParseErrors that say what failed', () => {
  assert.throws(
    () => parseMoongen(fixture('no-dpdk-ports.stdout')),
    parseError(/^moongen: no DPDK ports: MoonGen found 0 usable devices/, /dpdk-devbind.*trafgen/s),
  );
  assert.throws(
    () => parseMoongen(fixture('eal-init-failure.stdout')),
    parseError(/^moongen: DPDK EAL initialization failed: Cannot get hugepage information\.$/, /hugepages.*setup-hugetlbfs\.sh/),
  );
  assert.throws(
    () => parseMoongen(fixture('no-timestamps.stdout')),
    parseError(/latency summary has no samples/, /timestamp/),
  );
  assert.throws(() => parseMoongen(fixture('garbage.stdout')), parseError(/no MoonGen output recognized/));
});

test('other failures reported on stdout', () => {
  const finals = run.slice(0, run.indexOf('Samples: '));
  const wrongPort = '[INFO]  Found 1 usable devices:\n   Device 0: 90:E2:BA:2C:CB:02 (Intel)\n[FATAL] Lua error in task master\n' +
    '/opt/MoonGen/libmoon/lua/device.lua:100: there are only 1 ports, tried to configure port id 1\n';
  assert.throws(() => parseMoongen(wrongPort), parseError(/DPDK port 1 does not exist: MoonGen found only 1 DPDK port/, /"Device N:"/));
  // Older DPDK panics in rte_eal_init instead of returning an error.
  assert.throws(
    () => parseMoongen('EAL: Detected 1 lcore(s)\nPANIC in rte_eal_init():\nCannot get hugepage information\n6: [./build/MoonGen() [0x4325a3]]\n'),
    parseError(/DPDK EAL initialization failed: Cannot get hugepage information$/),
  );
  // A link that did not come up within libmoon's 9 s wait: the numbers that follow are meaningless.
  assert.throws(
    () => parseMoongen(`[ERROR] Device 1 (90:E2:BA:2C:CB:03) is DOWN: full-duplex 0 MBit/s\n${run}`),
    parseError(/link down on DPDK port 1/),
  );
  // A task that dies (here the timestamper) leaves the others running to their summaries.
  const timerDied = `${finals}\x1b[0;31m[FATAL] Lua error in task timerSlave\x1b[0m\n` +
    '/opt/MoonGen/libmoon/lua/device.lua:392: \x1b[0;31mrx timestamping is not supported by the hardware or driver\x1b[0m\nStack Traceback\n';
  assert.throws(() => parseMoongen(timerDied), parseError(/Lua error in task timerSlave: .*rx timestamping is not supported/));
});

test('malformed, implausible and spliced stats lines', () => {
  const drifted = run.replace('1.95 Mpps, 996 Mbit/s (1307 Mbit/s with framing)', '1.95 Mpkt/s, 996 Mbit/s (1307 Mbit/s with framing)');
  assert.throws(() => parseMoongen(drifted), parseError(/malformed stats line/));
  // Fewer than 3 samples: addStats averages an empty list and LuaJIT prints nan.
  const tooShort = '[Device: id=0] TX: nan (StdDev nan) Mpps, nan (StdDev nan) Mbit/s (nan Mbit/s with framing), total 1953188 packets with 125004032 bytes (incl. CRC)\n' +
    '[Device: id=1] RX: nan (StdDev nan) Mpps, nan (StdDev nan) Mbit/s (nan Mbit/s with framing), total 1953100 packets with 124998400 bytes (incl. CRC)\n';
  assert.throws(() => parseMoongen(tooShort), parseError(/device 0 TX final summary is nan/, /at least 3/));
  const finalTx = run.split('\n').find((l) => l.includes('TX\x1b[0m: 1.96 (StdDev'))!;
  assert.throws(() => parseMoongen(run.replace(finalTx, `${finalTx}\n${finalTx}`)), parseError(/second final summary after its final summary/));
  assert.throws(() => parseMoongen(`${run}${run}`), parseError(/rate line after its final summary/));
  assert.throws(() => parseMoongen(run.replace(/^.*\bRX\b.*$/gm, '')), parseError(/no RX final summary/));
  assert.throws(() => parseMoongen(run.replace('Samples: 8762,', 'Samples: 8762;')), parseError(/malformed latency summary/));
});

test('"^C" echoed in front of a line and CRLF line ends are tolerated', () => {
  const echoed = run.replace('\x1b[0;34m[Device: id=0] TX\x1b[0m: 1.96 (StdDev', '^C\x1b[0;34m[Device: id=0] TX\x1b[0m: 1.96 (StdDev').replace(/\n/g, '\r\n');
  assert.deepEqual(parseMoongen(echoed), parseMoongen(run));
});

test('CSV stats file: every row, the last per device and direction being the final one', () => {
  const rows = parseMoongenCsv(fixture('stats.csv'));
  assert.equal(rows.length, 14);
  assert.deepEqual(rows[0], { time: 1718196544, dev: 0, dir: 'tx', mpps: 7.4365972666157, mbit: 3807.5378005073, mbitWithFraming: 4997.3933631658, packets: 7436752, bytes: 475952128 });
  assert.deepEqual(rows.slice(-2), [
    { time: 1718196550, dev: 0, dir: 'tx', mpps: 7.4378319409551, mbit: 3808.169953769, mbitWithFraming: 4998.2230643218, packets: 47454934, bytes: 3037115776 },
    { time: 1718196550, dev: 1, dir: 'rx', mpps: 7.4377205428098, mbit: 3808.1129179186, mbitWithFraming: 4998.1482047682, packets: 47454222, bytes: 3037070208 },
  ]);
  assert.deepEqual(rows.map((r) => r.dir).join(''), 'txrx'.repeat(7));
});

test('CSV stats file: malformed input is a ParseError', () => {
  const csv = fixture('stats.csv');
  const [header, ...body] = csv.split('\n');
  assert.throws(() => parseMoongenCsv(''), parseError(/empty/));
  assert.throws(() => parseMoongenCsv(`${header}\n`), parseError(/no rows/));
  assert.throws(() => parseMoongenCsv(body.join('\n')), parseError(/header/));
  assert.throws(() => parseMoongenCsv(csv.slice(0, -10)), parseError(/middle of a line/));
  assert.throws(() => parseMoongenCsv(csv.replace(',TX,', ',XX,')), parseError(/direction "XX"/));
  assert.throws(() => parseMoongenCsv(csv.replace(',Device: id=0,', ',port0,')), parseError(/device "port0"/));
  assert.throws(() => parseMoongenCsv(csv.replace('7.4365972666157', 'nan')), parseError(/"nan" is not a number/));
  assert.throws(() => parseMoongenCsv(csv.replace(',7436752,', ',7436752,1,')), parseError(/9 columns/));
  assert.throws(() => parseMoongenCsv(`${csv}${body.slice(0, 2).join('\n')}\n`), parseError(/go backwards/));
});

test('histogram CSV: latency,count pairs; empty, cut or spliced files are ParseErrors', () => {
  const h = parseHistogramCsv(fixture('histogram.csv'));
  assert.equal(h.length, 74);
  assert.deepEqual(h.slice(0, 2), [[15552, 8], [15558.4, 4]]);
  assert.deepEqual(h.at(-1), [16083.2, 1]);
  assert.equal(h.reduce((a, [, c]) => a + c, 0), 8762);

  const csv = fixture('histogram.csv');
  assert.throws(() => parseHistogramCsv(''), parseError(/empty MoonGen histogram CSV: no timestamped probe came back/));
  assert.throws(() => parseHistogramCsv(csv.slice(0, -3)), parseError(/middle of a line/));
  assert.throws(() => parseHistogramCsv(`${csv}${csv}`), parseError(/not strictly ascending/));
  assert.throws(() => parseHistogramCsv('15552;8\n'), parseError(/expected "latency_ns,count"/));
  assert.throws(() => parseHistogramCsv('15552,0\n'), parseError(/count 0/));
  assert.throws(() => parseHistogramCsv(fixture('stats.csv')), parseError(/line 1: expected/));
});

test('preflight: absent MoonGen or no DPDK ports explained, otherwise null', () => {
  const absent = moongenPreflightMessage({ binary: null });
  assert.equal(absent?.message, 'MoonGen not found');
  assert.match(absent!.hint, /github\.com\/emmericp\/MoonGen/);
  assert.match(absent!.hint, /DPDK-bound physical NICs/);
  assert.match(absent!.hint, /bare-metal/);
  assert.match(absent!.hint, /netns and VM topologies .* trafgen/);
  const noPorts = moongenPreflightMessage({ binary: '/opt/MoonGen/build/MoonGen', dpdkPorts: 0 });
  assert.equal(noPorts?.message, 'MoonGen (/opt/MoonGen/build/MoonGen) found no DPDK ports');
  assert.match(noPorts!.hint, /dpdk-devbind\.py.*trafgen/);
  assert.equal(
    moongenPreflightMessage({ binary: '/opt/MoonGen/build/MoonGen', dpdkPorts: 1 })?.message,
    'MoonGen (/opt/MoonGen/build/MoonGen) found only 1 DPDK port; l3-load-latency needs two (txDev, rxDev)',
  );
  assert.equal(moongenPreflightMessage({ binary: '/opt/MoonGen/build/MoonGen', dpdkPorts: 2 }), null);
  assert.equal(moongenPreflightMessage({ binary: '/opt/MoonGen/build/MoonGen' }), null);
});

describe('generator moongen', () => {
  const out = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'moongen', 'l3-load-latency.stdout'), 'utf8');

  test('the l3-load-latency report becomes packet metrics: sent on txDev, back on rxDev, CRC not counted', () => {
    const r = parseMoongen(out);
    const g = moongen.parse(out, '');
    const tx = r.devices.find((d) => d.tx)!.tx!;
    const rx = [...r.devices].reverse().find((d) => d.rx)!.rx!;
    assert.equal(g.packets.sent, tx.packets);
    assert.equal(g.packets.received, rx.packets);
    assert.equal(g.packets.sentPerSec, tx.mppsAvg * 1e6);
    assert.equal(g.packets.lossFraction, Math.max(0, 1 - rx.packets / tx.packets));
    assert.equal(g.packets.frameBytes, tx.bytes / tx.packets - 4);
    assert.equal(g.durationS, r.samples.filter((s) => s.dir === 'tx').length);
    assert.deepEqual(g.moongen.latency, r.latency);
  });

  test('absent MoonGen: preflight says where to get it and what to use instead', async () => {
    const host = { name: 'client', exec: async () => ({ stdout: '', stderr: '', code: 1 }) } as never;
    await assert.rejects(moongen.preflight(host, { moongen: { txDev: 0, rxDev: 1 } } as never), (e: unknown) => {
      assert.ok(e instanceof PreflightError);
      assert.match(e.message, /MoonGen not found on client \(looked for MoonGen\)/);
      assert.match(e.hint ?? '', /github\.com\/emmericp\/MoonGen.*trafgen/s);
      return true;
    });
    const found = { name: 'client', exec: async () => ({ stdout: '/opt/MoonGen/build/MoonGen\n', stderr: '', code: 0 }) } as never;
    await moongen.preflight(found, { moongen: { txDev: 0, rxDev: 1, path: '/opt/MoonGen/build/MoonGen' } } as never);
    assert.match(moongen.unsupported!({ kind: 'netns' } as never, [2]) ?? '', /use generator: trafgen/);
    assert.equal(moongen.unsupported!({ kind: 'baremetal' } as never, [2]), undefined);
  });

  test('argv from load.moongen; the script defaults to the checkout the binary is in', () => {
    const argv = moongen.buildArgv({ load: { moongen: { path: '/opt/MoonGen/build/MoonGen', txDev: 0, rxDev: 1, rate: 1000 } } as never, target: { ip: '198.18.100.1', port: 80, path: '/' }, durationS: 10, workDir: '/w' });
    assert.ok(argv.includes('/opt/MoonGen/build/MoonGen'));
    assert.ok(argv.includes('/opt/MoonGen/examples/l3-load-latency.lua'));
    assert.equal(argv[0], 'timeout');
    assert.throws(() => moongen.buildArgv({ load: {} as never, target: { ip: '', port: 80, path: '/' }, durationS: 10, workDir: '/w' }), /needs load\.moongen/);
  });
});
