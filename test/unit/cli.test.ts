// The CLI in-process: exit codes and what a user sees for bad input. Nothing here provisions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('a scenario with problems: exit 2, every problem as file:line:col, no stack trace', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lbb-cli-'));
  const file = join(dir, 'bad.yaml');
  await writeFile(file, ['name: bad', 'loadBalancers:', '  - kind: nginx', '    mode: l5', 'load:', '  duraton: 5s', ''].join('\n'));
  const r = await cli('run', file, '--dry-run');
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4:11: loadBalancers\\[0\\]\\.mode: `));
  assert.match(r.err, /:6:3: load\.duraton: unknown key "duraton".*did you mean duration\?/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
});

test('a missing scenario file names the file', async () => {
  const r = await cli('run', 'no/such/scenario.yaml', '--dry-run');
  assert.equal(r.code, 2);
  assert.match(r.err, /no\/such\/scenario\.yaml/);
});

test('--dry-run prints the plan and provisions nothing', async () => {
  const r = await cli('run', 'scenarios/quickstart.yaml', '--dry-run', '--lb', 'nginx');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /6 points/);
});

test('--lb with a name the scenario lacks lists the valid ones', async () => {
  const r = await cli('run', 'scenarios/quickstart.yaml', '--dry-run', '--lb', 'xdp');
  assert.equal(r.code, 3);
  assert.match(r.err, /choose from: .*router.*nginx-l4/);
});

test('bad flag values are input errors (exit 2), not crashes', async () => {
  assert.equal((await cli('run', 'scenarios/quickstart.yaml', '--dry-run', '--duration', 'fast')).code, 2);
  assert.equal((await cli('run', 'scenarios/quickstart.yaml', '--dry-run', '--repetitions', '0')).code, 2);
  const unknown = await cli('run', 'scenarios/quickstart.yaml', '--dry-run', '--durration', '1s');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /Unknown argument: durration/);
});

test('an unknown command suggests the closest one', async () => {
  const r = await cli('rnu');
  assert.equal(r.code, 2);
  assert.match(r.err, /Did you mean run\?/);
});

test('no command: usage error', async () => {
  const r = await cli();
  assert.equal(r.code, 2);
  assert.match(r.err, /name a command/);
});

test('schema prints a JSON schema with every LB kind', async () => {
  const r = await cli('schema');
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.out);
  const text = JSON.stringify(schema);
  for (const k of ['router', 'iptables-dnat', 'nftables', 'nginx', 'haproxy']) assert.ok(text.includes(`"${k}"`), k);
});

test('--help on each command', async () => {
  for (const c of ['run', 'report', 'up', 'down', 'setup', 'doctor', 'schema']) {
    const r = await cli(c, '--help');
    assert.equal(r.code, 0, c);
    assert.match(r.out, new RegExp(`lbbench ${c}`), c);
  }
});

test('report on a missing result dir: exit 2 naming it', async () => {
  const r = await cli('report', '/nonexistent/run');
  assert.equal(r.code, 2);
  assert.match(r.err, /\/nonexistent\/run/);
});
