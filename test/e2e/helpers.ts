import { execFileSync } from 'node:child_process';

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
