import type { Host } from '../host/types.ts';
import { PreflightError } from '../errors.ts';

/** Where `cmd` is on the host's PATH (or the path itself when it is one), or null. */
export async function commandPath(host: Host, cmd: string): Promise<string | null> {
  const r = await host.exec(['sh', '-c', 'command -v "$1"', 'sh', cmd], { check: false, timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout.trim() : null;
}

/** Every missing tool is reported at once, with the one apt-get line that fixes all of them. */
export async function requireTools(host: Host, tools: { cmd: string; pkg: string }[], who: string): Promise<void> {
  const missing: { cmd: string; pkg: string }[] = [];
  for (const t of tools) {
    if ((await commandPath(host, t.cmd)) === null) missing.push(t);
  }
  if (missing.length) {
    const pkgs = [...new Set(missing.map((m) => m.pkg))].join(' ');
    throw new PreflightError(
      `${who} needs ${missing.map((m) => m.cmd).join(', ')} on ${host.name}, not found`,
      `apt-get install -y ${pkgs}   (or: lbbench setup)`,
    );
  }
}

/** First line of a version command's output (stdout or stderr), or "unknown". */
export async function toolVersion(host: Host, argv: string[]): Promise<string> {
  const r = await host.exec(argv, { check: false, timeoutMs: 10_000 });
  return (r.stdout.trim() || r.stderr.trim()).split('\n')[0] || 'unknown';
}
