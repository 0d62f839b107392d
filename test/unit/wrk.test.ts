// The wrk driver's pure halves, fed output recorded from real wrk 4.1 runs (test/fixtures/wrk,
// re-recorded by record.sh there). Broken variants are cut from that real text, never invented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, ParseError, PreflightError } from '../../harness/errors.ts';
import type { ExecOptions, ExecResult, Host } from '../../harness/host/types.ts';
import { getLoadDriver, loadDrivers } from '../../harness/load/index.ts';
import { LoadParseError, runLoad } from '../../harness/load/run.ts';
import type { LoadRunSpec } from '../../harness/load/types.ts';
import { parseWrkVersion, wrk, wrkSeconds, wrkVersion } from '../../harness/load/wrk.ts';
import { LoadSpec } from '../../harness/scenario/schema.ts';
import { throwsParse } from './parse-assert.ts';

const dir = new URL('../fixtures/wrk/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir), 'utf8');
const fixture = (name: string) => ({ stdout: read(`${name}.stdout`), stderr: read(`${name}.stderr`) });
const parse = (f: { stdout: string; stderr: string }) => wrk.parse(f.stdout, f.stderr);

function spec(over: Partial<LoadRunSpec> = {}, load: Record<string, unknown> = {}): LoadRunSpec {
  return {
    load: LoadSpec.parse(load),
    target: { ip: '198.18.100.1', port: 80, path: '/' },
    durationS: 5,
    workDir: '/tmp/lbb-x',
    ...over,
  };
}


// ---------------------------------------------------------------------------------------------
// argv

test('buildArgv: defaults', () => {
  assert.deepEqual(wrk.buildArgv(spec()), [
    'wrk', '-t', '1', '-c', '32', '-d', '5s', '--timeout', '2s', '--latency',
    '-s', '/tmp/lbb-x/lbbench-report.lua', 'http://198.18.100.1:80/',
  ]);
});

test('buildArgv: taskset prefix, path, threads and connections', () => {
  const argv = wrk.buildArgv(
    spec({ cpus: '1-2', target: { ip: '198.18.100.1', port: 8080, path: '/a?b=1' } }, { threads: 2, connections: 64 }),
  );
  assert.deepEqual(argv, [
    'taskset', '-c', '1-2',
    'wrk', '-t', '2', '-c', '64', '-d', '5s', '--timeout', '2s', '--latency',
    '-s', '/tmp/lbb-x/lbbench-report.lua', 'http://198.18.100.1:8080/a?b=1',
  ]);
});

test('buildArgv: fractional durations round up to whole seconds (wrk rejects 1.5s and 1500ms)', () => {
  const a = wrk.buildArgv(spec({ durationS: 1.5 }, { timeout: '500ms' }));
  assert.equal(a[a.indexOf('-d') + 1], '2s');
  assert.equal(a[a.indexOf('--timeout') + 1], '1s');
  assert.equal(wrkSeconds(0.001), '1s');
  assert.equal(wrkSeconds(3), '3s');
  assert.equal(wrkSeconds(0.1 * 30), '3s'); // 3.0000000000000004
  assert.equal(wrkSeconds(120), '120s');
  assert.equal(wrkSeconds(2.0005), '3s');
  for (const bad of [0, -1, NaN, Infinity]) assert.throws(() => wrkSeconds(bad), ConfigError);
});

test('buildArgv: threads are clamped to connections', () => {
  const a = wrk.buildArgv(spec({}, { threads: 4, connections: 2 }));
  assert.deepEqual(a.slice(0, 5), ['wrk', '-t', '2', '-c', '2']);
});

test('buildArgv: IPv6 target is bracketed', () => {
  const a = wrk.buildArgv(spec({ target: { ip: '2001:2:0:100::1', port: 80, path: '/' } }));
  assert.equal(a.at(-1), 'http://[2001:2:0:100::1]:80/');
});

test('buildArgv is pure', () => {
  const s = spec({ cpus: '0' });
  const copy = structuredClone(s);
  assert.deepEqual(wrk.buildArgv(s), wrk.buildArgv(s));
  assert.deepEqual(s, copy);
});

// ---------------------------------------------------------------------------------------------
// parse: every recorded run, exact numbers

test('parse c8-t1 (1 thread, 8 connections)', () => {
  const m = parse(fixture('c8-t1'));
  assert.equal(m.requests, 221062);
  assert.equal(m.durationS, 2.099489);
  assert.equal(m.requestsPerSec, 221062 / 2.099489);
  assert.equal(m.transferBytesPerSec, 33379282 / 2.099489);
  assert.deepEqual(m.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
  assert.deepEqual(m.latencyUs, {
    min: 23, max: 1690, mean: 57.173111452112984, stdev: 50.01196641862645,
    p50: 61, p75: 66, p90: 76, p99: 126, 'p99.9': 996, 'p99.99': 1488,
  });
  assert.equal(m.latencyCdf.length, 103);
  assert.deepEqual(m.latencyCdf[0], [1, 27]);
  assert.deepEqual(m.latencyCdf[49], [50, 61]);
  assert.deepEqual(m.latencyCdf.at(-2), [99.99, 1488]);
  assert.deepEqual(m.latencyCdf.at(-1), [100, 1690]);
  // wrk prints the same quotient rounded to 2 places.
  assert.equal(m.requestsPerSec.toFixed(2), '105293.24');
});

test('parse c64-t2 (2 threads, 64 connections)', () => {
  const m = parse(fixture('c64-t2'));
  assert.equal(m.requests, 175497);
  assert.equal(m.durationS, 2.007197);
  assert.equal(m.requestsPerSec.toFixed(2), '87433.87');
  assert.equal(m.transferBytesPerSec, 26499397 / 2.007197);
  assert.deepEqual(m.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
  assert.deepEqual(m.latencyUs, {
    min: 44, max: 10253, mean: 820.9490982375644, stdev: 1030.9093380692816,
    p50: 272, p75: 1196, p90: 2174, p99: 4337, 'p99.9': 5764, 'p99.99': 8253,
  });
  assert.deepEqual(m.latencyCdf[0], [1, 106]);
  assert.deepEqual(m.latencyCdf.at(-1), [100, 10253]);
});

test('parse status-404 and status-500: every response counted as a status error', () => {
  const a = parse(fixture('status-404'));
  assert.equal(a.requests, 107683);
  assert.equal(a.durationS, 1.1);
  assert.equal(a.requestsPerSec.toFixed(2), '97893.64');
  assert.deepEqual(a.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 107683 });
  assert.equal(a.latencyUs.p50, 63);
  assert.equal(a.latencyUs['p99.9'], 785);
  assert.equal(a.latencyUs.max, 1494);

  const b = parse(fixture('status-500'));
  assert.equal(b.requests, 118885);
  assert.equal(b.durationS, 1.099895);
  assert.equal(b.requestsPerSec.toFixed(2), '108087.59');
  assert.deepEqual(b.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 118885 });
  assert.deepEqual(
    [b.latencyUs.p50, b.latencyUs.p75, b.latencyUs.p90, b.latencyUs.p99, b.latencyUs['p99.9'], b.latencyUs.max],
    [61, 66, 71, 111, 625, 1358],
  );
});

test('parse backend-dies: socket errors next to real requests', () => {
  const m = parse(fixture('backend-dies'));
  assert.equal(m.requests, 102692);
  assert.equal(m.durationS, 3.100167);
  assert.equal(m.requestsPerSec.toFixed(2), '33124.67');
  assert.deepEqual(m.errors, { connect: 0, read: 14, write: 86633, timeout: 0, status: 0 });
  assert.equal(m.latencyUs.p99, 132);
  assert.equal(m.latencyUs.max, 1848);
});

test('parse stalled: zero requests is a measurement, latency is NaN (not zero), CDF empty', () => {
  const m = parse(fixture('stalled'));
  assert.equal(m.requests, 0);
  assert.equal(m.requestsPerSec, 0);
  assert.equal(m.transferBytesPerSec, 0);
  assert.equal(m.durationS, 3.006239);
  assert.deepEqual(m.errors, { connect: 0, read: 0, write: 0, timeout: 0, status: 0 });
  for (const k of ['mean', 'stdev', 'max', 'p50', 'p75', 'p90', 'p99', 'p99.9']) {
    assert.ok(Number.isNaN(m.latencyUs[k]), `${k} = ${m.latencyUs[k]}`);
  }
  assert.deepEqual(m.latencyCdf, []);
});

test('parse slow: responses beyond --timeout count as timeouts and leave no latency samples', () => {
  const m = parse(fixture('slow'));
  assert.equal(m.requests, 8);
  assert.equal(m.durationS, 3.006515);
  assert.equal(m.requestsPerSec.toFixed(2), '2.66');
  assert.equal(m.transferBytesPerSec, 920 / 3.006515);
  assert.deepEqual(m.errors, { connect: 0, read: 0, write: 0, timeout: 8, status: 0 });
  assert.ok(Number.isNaN(m.latencyUs.p50));
  assert.deepEqual(m.latencyCdf, []);
});

const GOOD = ['c8-t1', 'c64-t2', 'status-404', 'status-500', 'backend-dies'];

test('percentiles are ordered and the CDF ascends, on every fixture with latency samples', () => {
  for (const name of GOOD) {
    const { latencyUs: l, latencyCdf: cdf } = parse(fixture(name));
    const seq = [l.min!, l.p50, l.p75, l.p90, l.p99, l['p99.9'], l['p99.99']!, l.max];
    for (let i = 1; i < seq.length; i++) assert.ok(seq[i]! >= seq[i - 1]!, `${name}: ${seq.join(' ')}`);
    assert.ok(l.mean >= l.min! && l.mean <= l.max, name);
    for (let i = 1; i < cdf.length; i++) {
      assert.ok(cdf[i]![0] > cdf[i - 1]![0], `${name}: percentile at ${i}`);
      assert.ok(cdf[i]![1] >= cdf[i - 1]![1], `${name}: latency at ${i}`);
    }
    assert.deepEqual(cdf.at(-1), [100, l.max]);
    // The named percentiles and the CDF come from the same histogram.
    assert.equal(cdf.find(([p]) => p === 50)![1], l.p50);
    assert.equal(cdf.find(([p]) => p === 99)![1], l.p99);
  }
});

// ---------------------------------------------------------------------------------------------
// parse: runs that produced no measurement

test('refused: wrk exits with a stderr line only; the ParseError carries it', () => {
  const f = fixture('refused');
  assert.equal(read('refused.rc').trim(), '1');
  const e = throwsParse(() => parse(f), /no summary on stdout; wrk stderr: unable to connect to 127\.0\.0\.1:18099 Connection refused/);
  assert.equal(e.tool, 'wrk');
  assert.equal(e.exitCode, 5);
  assert.match(e.excerpt, /unable to connect/);
});

test('killed: wrk stopped by SIGTERM prints nothing (stdout is block-buffered into a pipe)', () => {
  throwsParse(() => parse(fixture('killed')), /no output at all/);
});

test('the usage text of `wrk --version` is not a run', () => {
  throwsParse(() => parse(fixture('version')), /no LBBENCH_JSON/);
});

test('nginx stub_status text is not wrk output', () => {
  const stub = readFileSync(new URL('../fixtures/nginx/stub_status-after-load.txt', import.meta.url), 'utf8');
  throwsParse(() => wrk.parse(stub, ''));
});

// ---------------------------------------------------------------------------------------------
// parse: truncated and garbled variants cut from the real outputs

const base = fixture('c8-t1');
const jsonStart = base.stdout.indexOf('LBBENCH_JSON ');
const jsonEnd = base.stdout.indexOf('\n', jsonStart);
const jsonBody = base.stdout.slice(jsonStart + 'LBBENCH_JSON '.length, jsonEnd);
const withJson = (f: (json: string) => string) =>
  base.stdout.slice(0, jsonStart) + 'LBBENCH_JSON ' + f(jsonBody) + base.stdout.slice(jsonEnd);

test('the untouched base and a copy without the final newline both parse', () => {
  parse(base);
  wrk.parse(base.stdout.trimEnd(), '');
});

test('truncated anywhere before the end of the JSON line: ParseError', () => {
  for (const name of [...GOOD, 'stalled', 'slow']) {
    const { stdout } = fixture(name);
    const end = stdout.trimEnd().length;
    // Every cut in the text part (coarse) and in the JSON line (fine), up to its last byte.
    const start = stdout.indexOf('LBBENCH_JSON ');
    const cuts = new Set<number>();
    for (let i = 0; i < start; i += 17) cuts.add(i);
    for (let i = start; i < end; i += 3) cuts.add(i);
    cuts.add(end - 1);
    for (const cut of cuts) {
      assert.throws(() => wrk.parse(stdout.slice(0, cut), ''), ParseError, `${name} cut at ${cut}`);
    }
  }
});

test('only the text part (wrk without our script): ParseError', () => {
  throwsParse(() => wrk.parse(base.stdout.slice(0, jsonStart), ''), /no LBBENCH_JSON line/);
});

test('garbled JSON values: ParseError, never a number', () => {
  const variants: [string, (j: string) => string, RegExp][] = [
    ['NaN mean', (j) => j.replace(/"mean":[\d.]+/, '"mean":nan'), /garbled/],
    ['-nan', (j) => j.replace(/"stdev":[\d.]+/, '"stdev":-nan'), /garbled/],
    ['inf', (j) => j.replace(/"max":\d+/, '"max":inf'), /garbled/],
    ['negative requests', (j) => j.replace(/"requests":\d+/, '"requests":-1'), /requests/],
    ['fractional requests', (j) => j.replace(/"requests":(\d+)/, '"requests":$1.5'), /requests/],
    ['string bytes', (j) => j.replace(/"bytes":(\d+)/, '"bytes":"$1"'), /bytes/],
    ['zero duration', (j) => j.replace(/"duration_us":\d+/, '"duration_us":0'), /duration_us is 0/],
    ['no duration', (j) => j.replace(/"duration_us":\d+,/, ''), /duration_us/],
    ['no errors', (j) => j.replace(/"errors":\{[^}]*\},/, ''), /errors missing/],
    ['no timeout count', (j) => j.replace(/,"timeout":\d+/, ''), /errors\.timeout/],
    ['no latency', (j) => j.replace(/"latency":\{.*?\]\]\},/, ''), /latency missing/],
    ['no p99.9', (j) => j.replace(/\[99\.9,\d+\],/, ''), /lacks p99\.9/],
    ['no cdf', (j) => j.replace(/,"cdf":\[.*\]\]/, ''), /cdf is not a list/],
    ['cdf not a pair', (j) => j.replace('"cdf":[[1,', '"cdf":[[1,2,'), /cdf\[0\]/],
    ['cdf percentile repeated', (j) => j.replace(/("cdf":\[\[1,\d+\],)\[2,/, '$1[1,'), /not ascending/],
    ['unknown format version', (j) => j.replace('"v":1', '"v":2'), /format version 2/],
    ['not an object', () => '[1,2,3]', /not an object/],
    ['empty', () => '', /garbled/],
    ['binary junk', (j) => j.slice(0, 40) + '\u0000\u00ff\ufffd' + j.slice(43), /garbled/],
    [
      'p50 and p99 swapped',
      (j) => j.replace('[50,61]', '[50,TMP]').replace('[99,126]', '[99,61]').replace('[50,TMP]', '[50,126]'),
      /out of order/,
    ],
    ['cdf decreasing', (j) => j.replace(/("cdf":\[\[1,\d+\],)\[2,\d+\]/, '$1[2,9999]'), /cdf latency decreases/],
    ['cdf not ending at max', (j) => j.replace(/\[100,\d+\]/, '[100,1689]'), /maximum/],
    ['mean beyond max', (j) => j.replace(/"mean":[\d.]+/, '"mean":99999'), /mean/],
  ];
  for (const [what, f, re] of variants) {
    const out = withJson(f);
    assert.notEqual(out, base.stdout, `${what}: variant did not change the fixture`);
    throwsParse(() => wrk.parse(out, ''), re);
  }
});

test('spliced runs: two JSON lines, or a JSON line from another run', () => {
  const other = fixture('c64-t2').stdout;
  throwsParse(() => wrk.parse(base.stdout + other, ''), /2 LBBENCH_JSON lines/);
  const otherJson = other.slice(other.indexOf('LBBENCH_JSON '));
  throwsParse(() => wrk.parse(base.stdout.slice(0, jsonStart) + otherJson, ''), /text summary says 221062 requests/);
  // Requests/sec line edited: the cross-check catches a text part from another run.
  const rps = base.stdout.replace('Requests/sec: 105293.24', 'Requests/sec:  87433.87');
  throwsParse(() => wrk.parse(rps, ''), /req\/s/);
  // No "N requests in" line at all.
  const noSummary = base.stdout.replace(/^.*requests in.*\n/m, '');
  throwsParse(() => wrk.parse(noSummary, ''), /text summary/);
});

test('stderr is surfaced even when stdout is partial', () => {
  const e = throwsParse(() => wrk.parse(base.stdout.slice(0, 200), 'script error: boom\n'), /script error: boom/);
  assert.ok(e.excerpt.length > 0 && e.excerpt.length <= 301);
});

// ---------------------------------------------------------------------------------------------
// version, preflight, registry, run glue (fake Host: no process is started)

function fakeHost(exec: (argv: string[], opts?: ExecOptions) => Promise<ExecResult>, extra: Partial<Host> = {}): Host {
  return {
    name: 'fake',
    exec,
    spawn: () => {
      throw new Error('not used');
    },
    writeFile: async () => {},
    readFile: async () => '',
    ...extra,
  };
}

test('wrkVersion reads the version line wrk prints to stdout with exit 1', async () => {
  assert.equal(parseWrkVersion(read('version.stdout')), 'debian/4.1.0-3+b2');
  const host = fakeHost(async (argv, opts) => {
    assert.deepEqual(argv, ['wrk', '--version']);
    assert.equal(opts?.check, false);
    return { stdout: read('version.stdout'), stderr: '', code: 1 };
  });
  assert.equal(await wrkVersion(host), 'debian/4.1.0-3+b2');
  await wrk.preflight(host);
});

test('preflight: missing wrk is a PreflightError with the install hint', async () => {
  const missing = [
    { stdout: '', stderr: 'bash: line 1: wrk: command not found\n', code: 127 },
    { stdout: '', stderr: 'exec of "wrk" failed: No such file or directory\n', code: 255 },
    { stdout: '', stderr: '', code: -1 },
  ];
  for (const r of missing) {
    await assert.rejects(wrk.preflight(fakeHost(async () => r)), (e: unknown) => {
      assert.ok(e instanceof PreflightError);
      assert.match(e.message, /wrk not found on fake/);
      assert.match(e.hint ?? '', /apt-get install -y wrk/);
      return true;
    });
  }
  const throwing = fakeHost(async () => {
    throw new Error('command not found: wrk');
  });
  await assert.rejects(wrk.preflight(throwing), PreflightError);
});

test('registry: wrk by name; an unknown name lists the valid ones', () => {
  assert.equal(getLoadDriver('wrk'), wrk);
  // Every generator a scenario may name has a driver, and no driver is unreachable.
  assert.deepEqual(Object.keys(loadDrivers), LoadSpec.shape.generator.unwrap().options);
  assert.equal(wrk.name, 'wrk');
  assert.throws(() => getLoadDriver('wrk2'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, new RegExp(`unknown load generator "wrk2" \\(valid: ${Object.keys(loadDrivers).join(', ')}\\)`));
    return true;
  });
  assert.throws(() => getLoadDriver('toString'), ConfigError);
});

function spawnHost(result: { stdout: string; stderr: string; code: number; signal?: string }, log: unknown[]): Host {
  return fakeHost(async () => ({ stdout: '', stderr: '', code: 0 }), {
    writeFile: async (path, data) => void log.push(['write', path, data.length]),
    spawn: (argv, opts) => {
      log.push(['spawn', argv, opts?.timeoutMs]);
      let stop!: () => void;
      const stopped = new Promise<void>((r) => (stop = r));
      const exited = result.signal === 'hang'
        ? stopped.then(() => ({ stdout: '', stderr: '', code: -1, signal: 'SIGTERM' }))
        : Promise.resolve(result);
      return {
        pid: 1,
        argv,
        exited,
        running: () => false,
        stop: async () => {
          log.push(['stop']);
          stop();
          return exited;
        },
      };
    },
  });
}

test('runLoad: prepare writes the script, argv runs bounded, output comes back with metrics', async () => {
  const log: unknown[] = [];
  const s = spec({ durationS: 2 });
  const { metrics, output } = await runLoad(spawnHost({ ...base, code: 0 }, log), wrk, s);
  assert.equal(metrics.requests, 221062);
  assert.deepEqual(output, { argv: wrk.buildArgv(s), stdout: base.stdout, stderr: '', code: 0 });
  assert.deepEqual(log[0], ['write', '/tmp/lbb-x/lbbench-report.lua', readFileSync(new URL('../../harness/load/wrk-report.lua', import.meta.url), 'utf8').length]);
  // 2 s run + 2 s timeout + 15 s slack
  assert.deepEqual(log[1], ['spawn', wrk.buildArgv(s), 19_000]);
});

test('runLoad: a parse failure keeps the raw output and says how wrk ended', async () => {
  const refused = { ...fixture('refused'), code: 1 };
  await assert.rejects(runLoad(spawnHost(refused, []), wrk, spec()), (e: unknown) => {
    assert.ok(e instanceof LoadParseError && e instanceof ParseError);
    assert.equal(e.output.stderr, refused.stderr);
    assert.equal(e.output.code, 1);
    assert.match(e.message, /^wrk: .*unable to connect.*\(exit 1\)$/);
    assert.ok(e.cause instanceof ParseError);
    return true;
  });
  const killed = { stdout: '', stderr: '', code: -1, signal: 'SIGTERM' };
  await assert.rejects(runLoad(spawnHost(killed, []), wrk, spec()), /killed by SIGTERM; bounded at 22 s/);
});

test('runLoad: abort stops the generator and rejects with the reason', async () => {
  const log: unknown[] = [];
  const ac = new AbortController();
  const p = runLoad(spawnHost({ stdout: '', stderr: '', code: 0, signal: 'hang' }, log), wrk, spec(), { signal: ac.signal });
  setTimeout(() => ac.abort(new Error('user hit ^C')), 10);
  await assert.rejects(p, /user hit \^C/);
  assert.deepEqual(log.at(-1), ['stop']);
  // Already aborted: nothing is written or started.
  const log2: unknown[] = [];
  await assert.rejects(runLoad(spawnHost(base as never, log2), wrk, spec(), { signal: AbortSignal.abort() }));
  assert.deepEqual(log2, []);
});
