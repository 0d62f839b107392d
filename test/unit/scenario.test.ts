import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../harness/errors.ts';
import { PROJECT_ROOT, lbName, loadScenario, loadTopology, parseScenarioText } from '../../harness/scenario/load.ts';
import { LB_KINDS } from '../../harness/scenario/schema.ts';
import { scenarioJsonSchema } from '../../harness/scenario/jsonschema.ts';

const yaml = (...lines: string[]) => lines.join('\n') + '\n';
const MINIMAL = yaml('name: t', 'loadBalancers:', '  - kind: router');
const KINDS = 'router, iptables-dnat, nftables, nginx, haproxy, ipvs, ecmp, nfqueue, xdp, vrrp';

/** A throw-away project root with its own topologies/, so messages do not depend on the checkout. */
let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'lbbench-scenario-'));
  await mkdir(join(root, 'topologies'));
  await writeFile(join(root, 'topologies', 'netns-basic.yaml'), 'kind: netns\n');
  await writeFile(join(root, 'topologies', 'netns-big.yaml'), 'kind: netns\nbackends: 2\n');
  await writeFile(join(root, 'topologies', 'broken.yaml'), yaml('kind: netns', 'backend: 3', 'backendWorkers: 0'));
  await writeFile(join(root, 'topologies', 'empty.yaml'), '# nothing here\n');
});
after(() => rm(root, { recursive: true, force: true }));

async function problemsOf(text: string): Promise<string[]> {
  try {
    await parseScenarioText(text, 's.yaml', { projectRoot: root, baseDir: root });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err.problems;
  }
  return assert.fail('the scenario was accepted');
}

async function assertProblems(text: string, expected: string[]): Promise<void> {
  assert.deepEqual(await problemsOf(text), expected);
}

describe('valid scenarios', () => {
  test('a minimal scenario gets every default', async () => {
    const s = await parseScenarioText(MINIMAL, 's.yaml', { projectRoot: root });
    assert.equal(s.name, 't');
    assert.deepEqual(s.loadBalancers, [{ kind: 'router', name: 'router' }]);
    assert.deepEqual(s.topology, { kind: 'netns', backendWorkers: 1, backends: 1 });
    assert.deepEqual(s.sweep, { backends: [1] });
    assert.deepEqual(s.load, {
      generator: 'wrk',
      duration: 5,
      warmup: 1,
      connections: 32,
      threads: 1,
      path: '/',
      timeout: 2,
      rate: 500,
      protocol: 'tcp',
      bitrate: '0',
      sourceAddresses: 0,
    });
    assert.equal(s.repetitions, 3);
    assert.equal(s.cpus, 'auto');
    assert.equal(s.settle, 1);
    assert.equal(s.output, 'results');
    assert.equal(s.file, undefined);
  });

  test('LB names default to kind, or kind-mode where a kind has modes; explicit names win', async () => {
    const s = await parseScenarioText(
      yaml(
        'name: t',
        'loadBalancers:',
        '  - kind: nginx',
        '  - {kind: nginx, mode: l4}',
        '  - {kind: haproxy, mode: tcp}',
        '  - kind: haproxy',
        '  - {kind: nftables, algorithm: hash}',
        '  - {kind: nftables, name: nft-rr}',
      ),
      's.yaml',
      { projectRoot: root },
    );
    assert.deepEqual(
      s.loadBalancers.map((lb) => lb.name),
      ['nginx-l7', 'nginx-l4', 'haproxy-tcp', 'haproxy-http', 'nftables', 'nft-rr'],
    );
    assert.equal(lbName({ kind: 'iptables-dnat', algorithm: 'random' }), 'iptables-dnat');
  });

  test('durations accept numbers, s, ms and m', async () => {
    const s = await parseScenarioText(
      MINIMAL + yaml('load:', '  duration: 2m', '  warmup: 500ms', '  timeout: 1.5', 'settle: 3s'),
      's.yaml',
      { projectRoot: root },
    );
    assert.deepEqual([s.load.duration, s.load.warmup, s.load.timeout, s.settle], [120, 0.5, 1.5, 3]);
  });

  test('linkRate: bits per second, in the units tc reads, for netns and qemu one-guest', async () => {
    const rate = async (topology: string) => (await parseScenarioText(MINIMAL + `topology: ${topology}\n`, 's.yaml', { projectRoot: root })).topology as { linkRate?: number };
    assert.equal((await rate('{kind: netns, linkRate: 1gbit}')).linkRate, 1e9);
    assert.equal((await rate('{kind: netns, linkRate: 100mbit}')).linkRate, 100e6);
    assert.equal((await rate('{kind: netns, linkRate: 2.5Mbit}')).linkRate, 2.5e6);
    assert.equal((await rate('{kind: netns, linkRate: 500kbit}')).linkRate, 500e3);
    assert.equal((await rate('{kind: qemu, linkRate: 20mbit}')).linkRate, 20e6);
    assert.equal('linkRate' in (await rate('{kind: netns}')), false, 'unset: unshaped');
  });

  test('topology.backends follows the largest swept count unless set', async () => {
    const swept = await parseScenarioText(MINIMAL + 'sweep: {backends: [2, 8, 4]}\n', 's.yaml', { projectRoot: root });
    assert.equal(swept.topology.backends, 8);
    const fixed = await parseScenarioText(MINIMAL + 'topology: {backends: 10}\nsweep: {backends: [2]}\n', 's.yaml', {
      projectRoot: root,
    });
    assert.equal(fixed.topology.backends, 10);
  });

  test('a topology can be a name, a relative .yaml path or inline', async () => {
    const byName = await parseScenarioText(MINIMAL + 'topology: netns-big\n', 's.yaml', { projectRoot: root });
    assert.equal(byName.topology.backends, 2);
    const byPath = await parseScenarioText(MINIMAL + 'topology: topologies/netns-big.yaml\n', 's.yaml', {
      projectRoot: '/nonexistent',
      baseDir: root,
    });
    assert.equal(byPath.topology.backends, 2);
    const inline = await parseScenarioText(MINIMAL + 'topology: {kind: netns, backendWorkers: 2}\n', 's.yaml', {
      projectRoot: '/nonexistent',
    });
    assert.deepEqual(inline.topology, { kind: 'netns', backendWorkers: 2, backends: 1 });
  });

  test('cpus may be explicit lists', async () => {
    const s = await parseScenarioText(MINIMAL + 'cpus: {generator: "3", servers: "0-2"}\n', 's.yaml', { projectRoot: root });
    assert.deepEqual(s.cpus, { generator: '3', servers: '0-2' });
  });

  test('loadScenario records the absolute file and resolves paths next to it', async () => {
    const dir = join(root, 'sub');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'topo.yml'), 'backends: 3\n');
    await writeFile(join(dir, 'x.yaml'), MINIMAL + 'topology: topo.yml\n');
    const s = await loadScenario(join(dir, 'x.yaml'), { projectRoot: root });
    assert.equal(s.file, join(dir, 'x.yaml'));
    assert.equal(s.topology.backends, 3);
  });
});

describe('every shipped file validates', () => {
  test('scenarios/*.yaml', async () => {
    const files = (await readdir(join(PROJECT_ROOT, 'scenarios'))).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.includes('quickstart.yaml') && files.includes('smoke.yaml'), files.join(', '));
    for (const f of files) {
      const s = await loadScenario(join(PROJECT_ROOT, 'scenarios', f));
      assert.ok(s.loadBalancers.length > 0, f);
    }
  });

  test('topologies/*.yaml', async () => {
    const files = (await readdir(join(PROJECT_ROOT, 'topologies'))).filter((f) => /\.ya?ml$/.test(f));
    assert.ok(files.includes('netns-basic.yaml'), files.join(', '));
    for (const f of files) await loadTopology(join(PROJECT_ROOT, 'topologies', f));
  });

  test('quickstart is what the docs promise', async () => {
    const s = await loadScenario(join(PROJECT_ROOT, 'scenarios', 'quickstart.yaml'));
    assert.deepEqual(
      s.loadBalancers.map((lb) => lb.name),
      ['router', 'iptables-dnat', 'nftables', 'nginx-l4', 'nginx-l7', 'haproxy-tcp', 'haproxy-http'],
    );
    assert.deepEqual(s.sweep.backends, [1, 2, 4]);
    assert.equal(s.topology.backends, 4);
    assert.deepEqual([s.load.duration, s.load.warmup, s.load.connections, s.load.threads, s.repetitions], [5, 1, 32, 1, 3]);
  });
});

describe('invalid scenarios: every problem, with file:line:col and what to write', () => {
  test('unknown top-level key', async () => {
    await assertProblems(MINIMAL + 'repetition: 3\n', [
      's.yaml:4:1: repetition: unknown key "repetition"; valid keys: name, description, topology, loadBalancers, sweep, load, events, repetitions, cpus, tuning, samplers, settle, thresholds, unavailable, output; did you mean repetitions?',
    ]);
  });

  test('unknown nested key suggests the closest one', async () => {
    await assertProblems(MINIMAL + yaml('load:', '  duraton: 5s'), [
      's.yaml:5:3: load.duraton: unknown key "duraton"; valid keys: generator, duration, warmup, connections, threads, path, timeout, rate, protocol, packetSize, bitrate, moongen, sourceAddresses, flood; did you mean duration?',
    ]);
  });

  test('unknown key inside a load balancer lists that kind\'s keys', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - kind: haproxy', '    treads: 2'), [
      's.yaml:4:5: loadBalancers[0].treads: unknown key "treads"; valid keys: kind, name, mode, threads, balance; did you mean threads?',
    ]);
  });

  test('unknown LB kind lists the valid kinds', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - kind: router', '  - kind: ngnix'), [
      `s.yaml:4:11: loadBalancers[1].kind: unknown load balancer kind "ngnix"; valid kinds: ${KINDS}; did you mean nginx?`,
    ]);
    assert.deepEqual(LB_KINDS.join(', '), KINDS);
  });

  test('missing kind points at the LB map', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - mode: l7'), [
      `s.yaml:3:5: loadBalancers[0].kind: missing required key "kind"; valid kinds: ${KINDS}`,
    ]);
  });

  test('an LB written as a bare string', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - router'), [
      `s.yaml:3:5: loadBalancers[0]: expected a map with "kind:" (one of ${KINDS}), got "router"`,
    ]);
  });

  test('bad enum value lists the allowed values', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - kind: nginx', '    mode: l5'), [
      's.yaml:4:11: loadBalancers[0].mode: invalid value "l5"; allowed values: l4, l7',
    ]);
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - {kind: haproxy, mode: HTTP}'), [
      's.yaml:3:27: loadBalancers[0].mode: invalid value "HTTP"; allowed values: tcp, http; did you mean http?',
    ]);
  });

  test('wrong type for repetitions says the expected type', async () => {
    await assertProblems(MINIMAL + 'repetitions: three\n', [
      's.yaml:4:14: repetitions: expected an integer from 1 to 100, got "three"',
    ]);
    await assertProblems(MINIMAL + 'repetitions: 2.5\n', [
      's.yaml:4:14: repetitions: expected an integer from 1 to 100, got 2.5',
    ]);
  });

  test('numbers out of range', async () => {
    await assertProblems(MINIMAL + yaml('repetitions: 0', 'load: {connections: 20000}'), [
      's.yaml:4:14: repetitions: must be at least 1, got 0',
      's.yaml:5:21: load.connections: must be at most 10000, got 20000',
    ]);
  });

  test('negative and zero durations', async () => {
    await assertProblems(MINIMAL + yaml('load:', '  duration: -1', '  warmup: 0s', 'settle: 0'), [
      's.yaml:5:13: load.duration: must be greater than 0, got -1',
      's.yaml:6:11: load.warmup: duration must be greater than zero, got "0s"',
      's.yaml:7:9: settle: must be greater than 0, got 0',
    ]);
  });

  test('bad duration string or type', async () => {
    await assertProblems(MINIMAL + yaml('load:', '  duration: 5 seconds', '  timeout: true'), [
      's.yaml:5:13: load.duration: expected a duration like "5s", "500ms" or "2m", got "5 seconds"',
      's.yaml:6:12: load.timeout: expected a duration such as 5, "5s", "500ms" or "2m", got true',
    ]);
  });

  test('missing name points at the top-level map', async () => {
    await assertProblems(yaml('# no name', 'loadBalancers: [{kind: router}]'), [
      's.yaml:2:1: name: missing required key "name"; expected a string',
    ]);
  });

  test('a name that cannot be part of a file name', async () => {
    await assertProblems(yaml('name: my run', 'loadBalancers: [{kind: router}]'), [
      's.yaml:1:7: name: use letters, digits, ".", "_" and "-" (it becomes part of file names), got "my run"',
    ]);
  });

  test('empty loadBalancers', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers: []'), [
      `s.yaml:2:16: loadBalancers: must not be empty; add at least one load balancer, e.g. "- kind: router" (kinds: ${KINDS})`,
    ]);
  });

  test('an empty value where a map belongs points at its key', async () => {
    await assertProblems(MINIMAL + 'load:\n', [
      's.yaml:4:1: load: expected a map (keys: generator, duration, warmup, connections, threads, path, timeout, rate, protocol, packetSize, bitrate, moongen, sourceAddresses, flood), got nothing',
    ]);
  });

  test('duplicate LB names after defaulting, reported at the second', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - kind: nginx', '  - kind: router', '  - kind: nginx', '    mode: l7'), [
      's.yaml:5:5: loadBalancers[2]: duplicate name "nginx-l7" (the default for this kind and mode), already used by loadBalancers[0]; add a distinct "name:" to one of them',
    ]);
  });

  test('duplicate explicit LB names point at the name', async () => {
    await assertProblems(
      yaml('name: t', 'loadBalancers:', '  - {kind: router, name: base}', '  - {kind: nftables, name: base}'),
      ['s.yaml:4:28: loadBalancers[1].name: duplicate name "base", already used by loadBalancers[0]; choose another name'],
    );
  });

  test('LB names must be lowercase', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers:', '  - {kind: router, name: Base_1}'), [
      's.yaml:3:26: loadBalancers[0].name: use lowercase letters, digits and "-", got "Base_1"',
    ]);
  });

  test('sweep backends that are not integers', async () => {
    await assertProblems(MINIMAL + 'sweep: {backends: [1, two, 2.5]}\n', [
      's.yaml:4:23: sweep.backends[1]: expected an integer from 1 to 250, got "two"',
      's.yaml:4:28: sweep.backends[2]: expected an integer from 1 to 250, got 2.5',
    ]);
    await assertProblems(MINIMAL + 'sweep: {backends: 4}\n', [
      's.yaml:4:19: sweep.backends: expected a list of integers from 1 to 250, got 4',
    ]);
  });

  test('a sweep value listed twice', async () => {
    await assertProblems(MINIMAL + 'sweep: {backends: [1, 2, 1]}\n', [
      's.yaml:4:26: sweep.backends[2]: 1 is already listed at sweep.backends[0]; list each value once (repetitions repeat points)',
    ]);
  });

  test('sweep beyond an inline topology.backends', async () => {
    await assertProblems(MINIMAL + yaml('topology: {backends: 2}', 'sweep:', '  backends: [1, 2, 4, 8]'), [
      's.yaml:6:20: sweep.backends[2]: 4 backends, but the topology builds only 2 (topology.backends: 2); raise that, or remove it so it follows the sweep',
      's.yaml:6:23: sweep.backends[3]: 8 backends, but the topology builds only 2 (topology.backends: 2); raise that, or remove it so it follows the sweep',
    ]);
  });

  test('sweep beyond the backends of a topology file names that file', async () => {
    const file = join(root, 'topologies', 'netns-big.yaml');
    await assertProblems(MINIMAL + yaml('topology: netns-big', 'sweep: {backends: [3]}'), [
      `s.yaml:5:20: sweep.backends[0]: 3 backends, but the topology builds only 2 (backends in ${file}: 2); raise that, or remove it so it follows the sweep`,
    ]);
  });

  test('unknown topology name: the file looked for, the ones available, the closest', async () => {
    const looked = join(root, 'topologies', 'netns-basci.yaml');
    await assertProblems(MINIMAL + 'topology: netns-basci\n', [
      `s.yaml:4:11: topology: unknown topology "netns-basci" (no file ${looked}); available topologies: broken, empty, netns-basic, netns-big; did you mean netns-basic?`,
    ]);
  });

  test('topology path that does not exist', async () => {
    await assertProblems(MINIMAL + 'topology: ../nope.yaml\n', [
      `s.yaml:4:11: topology: topology file ${join(root, '..', 'nope.yaml')} not found (a path is relative to the scenario file)`,
    ]);
  });

  test('problems inside a topology file are placed in that file', async () => {
    const file = join(root, 'topologies', 'broken.yaml');
    await assertProblems(MINIMAL + 'topology: broken\nrepetitions: 0\n', [
      's.yaml:5:14: repetitions: must be at least 1, got 0',
      `${file}:2:1: backend: unknown key "backend"; valid keys: kind, backends, backendWorkers, linkRate, overlay; did you mean backends?`,
      `${file}:3:17: backendWorkers: must be at least 1, got 0`,
    ]);
    await assertProblems(MINIMAL + 'topology: empty\n', [
      `${join(root, 'topologies', 'empty.yaml')}:1:1: the file is empty; a topology needs at least "kind: netns"`,
    ]);
  });

  test('inline topology with a wrong key or type', async () => {
    await assertProblems(MINIMAL + 'topology: {kind: vm, workers: 2}\n', ['s.yaml:4:18: topology.kind: unknown kind "vm"; valid kinds: netns, qemu, baremetal']);
    await assertProblems(MINIMAL + 'topology: {kind: netns, workers: 2}\n', [
      's.yaml:4:25: topology.workers: unknown key "workers"; valid keys: kind, backends, backendWorkers, linkRate, overlay',
    ]);
    await assertProblems(MINIMAL + 'topology: 5\n', [
      's.yaml:4:11: topology: expected a string or a map with "kind:" (one of netns, qemu, baremetal), got 5',
    ]);
  });

  test('linkRate: what to write instead, placed on the value', async () => {
    const at = (v: string) => problemsOf(MINIMAL + `topology: {kind: netns, linkRate: ${v}}\n`);
    assert.deepEqual(await at('100mbps'), ['s.yaml:4:35: topology.linkRate: "mbps" is bytes per second in tc; write the rate in bits: "800mbit", got "100mbps"']);
    assert.deepEqual(await at('fast'), ['s.yaml:4:35: topology.linkRate: expected a link rate like "1gbit", "100mbit", "20mbit" or "500kbit", got "fast"']);
    assert.deepEqual(await at('10mb'), ['s.yaml:4:35: topology.linkRate: unknown unit "mb"; write bit, kbit, mbit or gbit, e.g. "100mbit", got "10mb"']);
    assert.deepEqual(await at('50kbit'), ['s.yaml:4:35: topology.linkRate: a link rate must lie between "100kbit" and "100gbit", got "50kbit"']);
    assert.deepEqual(await at('1000'), ['s.yaml:4:35: topology.linkRate: expected a link rate such as "1gbit", "100mbit" or "500kbit", got 1000']);
    assert.deepEqual(await problemsOf(MINIMAL + 'topology: {kind: qemu, placement: per-role, linkRate: 1gbit}\n'), [
      's.yaml:4:55: topology.linkRate: linkRate shapes the veth links of placement one-guest; per-role guests are linked by qemu sockets it does not shape — remove linkRate or use placement: one-guest, got "1gbit"',
    ]);
  });

  test('YAML syntax errors keep their position', async () => {
    await assertProblems(yaml('name: t', 'loadBalancers: [{kind: router}', 'repetitions: 3'), [
      's.yaml:3:1: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    await assertProblems(yaml('name: t', 'loadBalancers: [{kind: router}]', 'name: u'), [
      's.yaml:3:1: YAML: Map keys must be unique',
    ]);
  });

  test('empty file', async () => {
    for (const text of ['', '\n', '# just a comment\n']) {
      await assertProblems(text, ['s.yaml:1:1: the file is empty; a scenario needs at least "name" and "loadBalancers"']);
    }
  });

  test('a document that is not a map', async () => {
    await assertProblems('- kind: router\n', [
      's.yaml:1:1: (top level): expected a map (keys: name, description, topology, loadBalancers, sweep, load, events, repetitions, cpus, tuning, samplers, settle, thresholds, unavailable, output), got a list',
    ]);
  });

  test('request path without a leading slash', async () => {
    await assertProblems(MINIMAL + 'load: {path: index.html}\n', [
      's.yaml:4:14: load.path: a path starts with "/", got "index.html"',
    ]);
  });

  test('bad cpus list and bad cpus keyword', async () => {
    await assertProblems(MINIMAL + yaml('cpus:', '  generator: "0-"', '  servers: 1,2'), [
      's.yaml:5:14: cpus.generator: expected a CPU list like "0", "1-3" or "0,2", got "0-"',
    ]);
    await assertProblems(MINIMAL + 'cpus: 0-1\n', [
      's.yaml:4:7: cpus: invalid value "0-1"; expected one of auto, off or a map (keys: generator, servers)',
    ]);
  });

  test('fewer connections than threads', async () => {
    await assertProblems(MINIMAL + yaml('load: {threads: 4}', 'sweep: {backends: [1], connections: [2, 8]}'), [
      's.yaml:5:38: sweep.connections[0]: 2 connections with 4 threads: wrk needs at least one connection per thread',
    ]);
  });

  test('several problems at once, in file order, across sections', async () => {
    await assertProblems(
      yaml(
        'name: t',
        'loadBalancers:',
        '  - kind: envoy',
        '  - kind: nginx',
        '    mode: l9',
        'load:',
        '  duration: soon',
        '  conections: 64',
        'repetitions: -2',
        'sweep: {backends: [0]}',
      ),
      [
        `s.yaml:3:11: loadBalancers[0].kind: unknown load balancer kind "envoy"; valid kinds: ${KINDS}`,
        's.yaml:5:11: loadBalancers[1].mode: invalid value "l9"; allowed values: l4, l7',
        's.yaml:7:13: load.duration: expected a duration like "5s", "500ms" or "2m", got "soon"',
        's.yaml:8:3: load.conections: unknown key "conections"; valid keys: generator, duration, warmup, connections, threads, path, timeout, rate, protocol, packetSize, bitrate, moongen, sourceAddresses, flood; did you mean connections?',
        's.yaml:9:14: repetitions: must be at least 1, got -2',
        's.yaml:10:20: sweep.backends[0]: must be at least 1, got 0',
      ],
    );
  });

  test('the error itself summarizes and hints, without a stack for the user to read', async () => {
    const err = await parseScenarioText(MINIMAL + 'bogus: 1\nrepetitions: 0\n', 'x.yaml').catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, 'invalid scenario x.yaml: 2 problems');
    assert.match(err.hint ?? '', /lbbench schema/);
  });

  test('a missing scenario file names the file', async () => {
    const err = await loadScenario('no/such/scenario.yaml', { projectRoot: PROJECT_ROOT }).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, 'scenario file not found: no/such/scenario.yaml');
    assert.match(err.hint ?? '', /scenarios\/quickstart\.yaml/);
  });
});

describe('JSON schema', () => {
  const schema = scenarioJsonSchema() as {
    description?: string;
    required?: string[];
    properties: Record<string, any>;
  };

  test('load balancers are a union keyed on kind, one option per LB kind', () => {
    const options = schema.properties.loadBalancers.items.oneOf as any[];
    assert.deepEqual(
      options.map((o) => o.properties.kind.const),
      [...LB_KINDS],
    );
    for (const o of options) {
      assert.ok(o.required.includes('kind'));
      assert.equal(o.additionalProperties, false);
      assert.equal(typeof o.description, 'string');
    }
  });

  test('descriptions and input defaults survive', () => {
    assert.match(schema.description ?? '', /scenario/);
    assert.deepEqual(schema.required, ['name', 'loadBalancers']);
    const duration = schema.properties.load.properties.duration;
    assert.match(duration.description, /Measured time/);
    assert.equal(duration.default, '5s');
    assert.equal(schema.properties.settle.default, '1s');
    assert.equal(typeof schema.properties.topology.description, 'string');
    assert.equal(typeof schema.properties.sweep.properties.backends.description, 'string');
    assert.doesNotThrow(() => JSON.parse(JSON.stringify(schema)));
  });
});

describe('events', () => {
  const base = (...events: string[]) =>
    yaml(
      'name: t',
      'loadBalancers:',
      '  - kind: xdp',
      '  - kind: nginx',
      'sweep: { backends: [4, 10] }',
      'load: { generator: traffic, connections: 100, rate: 500, duration: 20s }',
      'events:',
      ...events,
    );

  test('a scale-in schedule is accepted and typed', async () => {
    const s = await parseScenarioText(base('  - { at: 5s, action: remove-backends, count: 2 }', '  - { at: 10s, action: add-backends, backends: [be2, be3] }', '  - { at: 15s, action: restart-lb }'), 's.yaml', { projectRoot: root });
    assert.deepEqual(s.events, [
      { at: 5, action: 'remove-backends', count: 2 },
      { at: 10, action: 'add-backends', backends: ['be2', 'be3'] },
      { at: 15, action: 'restart-lb' },
    ]);
  });

  test('each problem is placed on its event and says what to write', async () => {
    await assertProblems(
      base(
        '  - { at: 2s, action: remove-backends, count: 4 }',
        '  - { at: 3s, action: remove-backends, backends: [be5] }',
        '  - { at: 9s, action: set-weights, weights: { be0: 2 } }',
        '  - { at: 14s, action: add-lb-nodes, count: 1, backends: [be1] }',
        '  - { at: 25s, action: restart-lb }',
        '  - { at: 18s, action: scale-out }',
      ),
      [
        's.yaml:8:11: events[0].at: only 1.0 s until the next event; losses show up to 2.2 s later (load.timeout + connections/rate) — leave at least that much',
        's.yaml:8:47: events[0].count: count 4 would leave no backend at the point with 4 (sweep.backends); use at most 3',
        's.yaml:9:51: events[1].backends[0]: be5 is not in use at the point with 4 backends (sweep.backends); name one of be0…be3, or use count:',
        's.yaml:10:23: events[2].action: set-weights: xdp, nginx take no weights (only nftables, ipvs); measure them in a scenario of their own',
        's.yaml:11:5: events[3]: add-lb-nodes needs either backends: [be1, …] or count: N (not both)',
        's.yaml:11:24: events[3].action: add-lb-nodes: only ecmp has several LB nodes (not xdp, nginx); use add-backends, which for ecmp changes the LB nodes too',
        's.yaml:12:11: events[4].at: at 25 s is not inside the 20 s measurement; choose a time below load.duration',
        's.yaml:13:24: events[5].action: unknown action "scale-out"; valid actions: remove-backends, add-backends, remove-lb-nodes, add-lb-nodes, kill-backends, start-backends, set-weights, restart-lb, fail-lb-node, set-lb-nodes, lb-node-timeline',
      ],
    );
  });

  test('an LB-node timeline becomes one set-lb-nodes event per step; a random one is the same for the same seed', async () => {
    const ecmp = (...events: string[]) => base(...events).replace('  - kind: xdp\n  - kind: nginx', '  - kind: ecmp');
    const s = await parseScenarioText(ecmp('  - { action: lb-node-timeline, at: 2s, every: 2.5s, counts: [2, 8, 3] }'), 's.yaml', { projectRoot: root });
    assert.deepEqual(s.events, [
      { at: 2, action: 'set-lb-nodes', count: 2 },
      { at: 4.5, action: 'set-lb-nodes', count: 8 },
      { at: 7, action: 'set-lb-nodes', count: 3 },
    ]);
    const random = '  - { action: lb-node-timeline, at: 3s, every: 3s, random: { min: 2, max: 4, steps: 5, seed: 7 } }';
    const [a, b] = await Promise.all([1, 2].map(() => parseScenarioText(ecmp(random), 's.yaml', { projectRoot: root })));
    assert.deepEqual(a!.events, b!.events);
    const counts = a!.events.map((e) => (e as { count: number }).count);
    assert.equal(counts.length, 5);
    for (const [k, c] of counts.entries()) {
      assert.ok(c >= 2 && c <= 4, `step ${k}: ${c} in [2, 4]`);
      if (k) assert.notEqual(c, counts[k - 1], 'every step changes the count');
    }
    const other = await parseScenarioText(ecmp(random.replace('seed: 7', 'seed: 8')), 's.yaml', { projectRoot: root });
    const seeds = [a!, other].map((x) => x.events.map((e) => (e as { count: number }).count).join());
    assert.notEqual(seeds[0], seeds[1], 'another seed, other counts');
  });

  test('a timeline is checked step by step and its problems name the timeline', async () => {
    await assertProblems(
      base(
        '  - { action: lb-node-timeline, at: 4s, every: 5s, counts: [2, 11, 3] }',
        '  - { action: lb-node-timeline, at: 1s, every: 2s, random: { min: 3, max: 3, steps: 2 } }',
        '  - { action: lb-node-timeline, at: 1s, every: 2s }',
        '  - { action: lb-node-timeline, at: 17s, every: 5s, counts: [4, 2] }',
      ),
      [
        's.yaml:8:5: events[0]: step 2 of the timeline: 11 LB nodes: the topology builds 10 (for ecmp the LB nodes are the backends); use at most 10',
        's.yaml:8:15: events[0].action: lb-node-timeline: only ecmp has several LB nodes (not xdp, nginx); measure the others in a scenario of their own',
        's.yaml:9:75: events[1].random.max: max 3 must be above min 3 so that every step changes the count, got 3',
        's.yaml:10:5: events[2]: lb-node-timeline needs either counts: [4, 2, 6] or random: { min, max, steps } (not neither)',
        's.yaml:11:15: events[3].action: lb-node-timeline: only ecmp has several LB nodes (not xdp, nginx); measure the others in a scenario of their own',
        's.yaml:11:49: events[3].every: step 2 of the timeline: at 22 s is not inside the 20 s measurement; use fewer steps, a shorter every, or a longer load.duration',
      ],
    );
  });

  test('events need the traffic generator', async () => {
    const text = base('  - { at: 5s, action: restart-lb }').replace('generator: traffic', 'generator: wrk');
    assert.deepEqual(await problemsOf(text), [
      's.yaml:8:3: events: events are measured by what each connection went through; load.generator wrk does not record that — set load.generator: traffic',
    ]);
  });
});

describe('generators that a scenario cannot use', () => {
  test('iperf3 over UDP: TCP-only load balancers are named; iperf3 with several backends is refused', async () => {
    await assertProblems(
      yaml(
        'name: t',
        'loadBalancers:',
        '  - kind: xdp',
        '  - kind: haproxy',
        '  - kind: nginx',
        '    mode: l7',
        'sweep: { backends: [1, 2] }',
        'load: { generator: iperf3, protocol: udp, packetSize: 64 }',
      ),
      [
        "s.yaml:4:5: loadBalancers[1]: haproxy-http balances TCP only, and this load is UDP (load.protocol: udp); measure it in a TCP scenario",
        "s.yaml:5:5: loadBalancers[2]: nginx-l7 balances TCP only, and this load is UDP (load.protocol: udp); measure it in a TCP scenario",
        "s.yaml:8:20: load.generator: iperf3 needs a test's control and data connections on one server, and an LB spreading them over 2 backends splits them; measure iperf3 with sweep.backends: [1] (the LB's whole datapath to one backend)",
      ],
    );
  });

  test('MoonGen wants bare metal; trafgen does not run there', async () => {
    const [moongen] = await problemsOf(yaml('name: t', 'loadBalancers: [{kind: xdp}]', 'load: { generator: moongen, moongen: {txDev: 0, rxDev: 1} }'));
    assert.match(moongen!, /^s\.yaml:3:20: load\.generator: MoonGen drives DPDK-bound physical NICs, which a netns topology does not have; use generator: trafgen/);
  });
});

test('thresholds are checked when the scenario is loaded', async () => {
  assert.deepEqual(await problemsOf(yaml('name: t', 'loadBalancers: [{kind: router}]', 'thresholds:', '  - req_per_s > 50k', '  - p99 < 5ms')), [
    's.yaml:5:5: thresholds[1]: "p99 < 5ms": unknown metric "p99"; valid: req_per_s, latency.p50, latency.p99, pps, packet_loss, gbit_per_s, connection_loss, conn_per_s',
  ]);
});
