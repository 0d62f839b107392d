// What `lbbench down` may remove. Every topology records its owner (pid + start time, so a reused
// pid is not mistaken for it); namespaces of a run whose owner is still alive are somebody's
// measurement in progress and are left alone unless forced.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { NAME_PREFIX } from './address-plan.ts';

export const WORK_ROOT = join(tmpdir(), 'lbbench');
const OWNER_FILE = 'owner.json';

interface Owner {
  pid: number;
  startTime: string;
  runId: string;
  prefix: string;
  command: string;
}

async function procStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; state is the first, starttime the 20th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

export async function writeOwner(workDir: string, runId: string, prefix: string): Promise<void> {
  const owner: Owner = {
    pid: process.pid,
    startTime: (await procStartTime(process.pid)) ?? '',
    runId,
    prefix,
    command: process.argv.slice(2).join(' '),
  };
  await writeFile(join(workDir, OWNER_FILE), JSON.stringify(owner) + '\n');
}

export interface RunLeftovers {
  prefix: string;
  namespaces: string[];
  workDir?: string;
  /** Set when the run that made these is still alive. */
  liveOwner?: { pid: number; command: string };
}

/** Group lbb-* namespaces and work dirs by run, and tell which runs are still alive. */
export async function findLeftovers(namespaces: string[]): Promise<RunLeftovers[]> {
  const groups = new Map<string, RunLeftovers>();
  const group = (prefix: string) => {
    let g = groups.get(prefix);
    if (!g) groups.set(prefix, (g = { prefix, namespaces: [] }));
    return g;
  };
  for (const n of namespaces.filter((x) => x.startsWith(NAME_PREFIX))) {
    const m = /^(lbb-[^-]+-)/.exec(n);
    group(m ? m[1]! : n).namespaces.push(n);
  }
  for (const dir of await readdir(WORK_ROOT).catch(() => [] as string[])) {
    const workDir = join(WORK_ROOT, dir);
    const owner = await readFile(join(workDir, OWNER_FILE), 'utf8')
      .then((t) => JSON.parse(t) as Owner)
      .catch(() => undefined);
    const g = group(owner?.prefix ?? `${NAME_PREFIX}${dir.slice(-4)}-`);
    g.workDir = workDir;
    if (owner && owner.pid !== process.pid && (await procStartTime(owner.pid)) === owner.startTime) {
      g.liveOwner = { pid: owner.pid, command: owner.command };
    }
  }
  return [...groups.values()];
}
