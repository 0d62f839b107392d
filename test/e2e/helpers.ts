import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import type { RunResult } from '../../harness/results/types.ts';
import { resultProblems } from '../../harness/results/schema.ts';

/**
 * Work directories of this test file's runs: removed when it exits with every test passed, kept
 * for a look when one failed (or with LBB_KEEP_E2E=1).
 */
const workDirs: string[] = [];
process.once('exit', (code) => {
  if (code !== 0 || process.env.LBB_KEEP_E2E) return;
  for (const d of workDirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Why an e2e test cannot run here, or undefined when it can. Tests skip with this reason (visible
 * in the test output) rather than pass silently.
 */
export function missingCapability(tools: string[] = ['ip', 'nginx', 'wrk']): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const t of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
    } catch {
      return `needs ${t} (run: lbbench setup)`;
    }
  }
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'ip netns unavailable';
  }
  return undefined;
}

export function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
}

export function namespacesWithPrefix(prefix: string): string[] {
  return sh('ip netns list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n && n.startsWith(prefix));
}

/** PIDs of processes whose command line mentions `needle` (e.g. a run's work dir). */
export function processesMentioning(needle: string): number[] {
  return sh('ps -eo pid=,args=')
    .split('\n')
    .filter((l) => l.includes(needle) && !l.includes('ps -eo'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

/**
 * Writes a scenario into a fresh directory and runs it through the CLI's `run`, as a user would;
 * returns what it printed and the result it wrote, and its directory (undefined when none was written).
 */
export async function runScenarioCli(lines: string[], extraArgs: string[] = []): Promise<{ code: number; out: string; work: string; dir?: string; raw?: any; result?: RunResult }> {
  const work = await mkdtemp(join(tmpdir(), 'lbb-e2e-'));
  workDirs.push(work);
  await writeFile(join(work, 's.yaml'), lines.join('\n') + '\n');
  const out: string[] = [];
  const code = await main(['run', join(work, 's.yaml'), '--out', join(work, 'results'), '--reports', join(work, 'reports'), ...extraArgs], {
    out: (s) => out.push(s),
    err: (s) => out.push(s),
  });
  const runs = await readdir(join(work, 'results')).catch(() => [] as string[]);
  if (!runs.length) return { code, out: out.join('\n'), work };
  const dir = join(work, 'results', runs[0]!);
  return { code, out: out.join('\n'), work, dir, raw: JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')), result: await readResult(dir) };
}

/**
 * runScenarioCli for a run that must succeed: exit 0, a result.json that meets the result contract,
 * and no namespace of the run left behind.
 */
export async function runScenarioOk(lines: string[], extraArgs: string[] = []): Promise<{ out: string; work: string; dir: string; raw: any; result: RunResult }> {
  const before = namespacesWithPrefix('lbb-');
  const r = await runScenarioCli(lines, extraArgs);
  assert.equal(r.code, 0, r.out);
  assert.ok(r.dir && r.result, `a result was written:\n${r.out}`);
  assert.deepEqual(resultProblems(r.raw), [], 'the result meets its contract');
  assert.deepEqual(namespacesWithPrefix('lbb-'), before, 'every namespace of the run removed');
  return { out: r.out, work: r.work, dir: r.dir, raw: r.raw, result: r.result };
}
