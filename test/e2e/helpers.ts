import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../harness/cli.ts';
import { readResult } from '../../harness/results/reader.ts';
import type { RunResult } from '../../harness/results/types.ts';

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
