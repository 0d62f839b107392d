import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';
import { CommandError } from '../errors.ts';
import type { ExecOptions, ExecResult, Host, SpawnOptions, Spawned } from './types.ts';

const DEFAULT_TIMEOUT_MS = 60_000;
// Daemons can be chatty; keep the tail that matters for an error message, not unbounded memory.
const MAX_BUFFER = 16 * 1024 * 1024;

/**
 * `lbbench up --detach` leaves daemons running after the CLI exits: they must not be killed with
 * us (execa's cleanup) nor hold pipes to a process that is gone.
 */
let detachSpawns = false;
export function setDetachedSpawns(on: boolean): void {
  detachSpawns = on;
}

/** Runs argv on this machine. `wrap` lets NetnsHost prefix `ip netns exec NS` without a shell. */
export class LocalHost implements Host {
  constructor(
    readonly name = 'local',
    private readonly wrap: (argv: string[]) => string[] = (a) => a,
  ) {}

  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const full = this.wrap(argv);
    const r = await execa(full[0]!, full.slice(1), {
      reject: false,
      input: opts.input,
      timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      env: opts.env,
      maxBuffer: MAX_BUFFER,
      stripFinalNewline: false,
    });
    const res = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), code: r.exitCode ?? -1 };
    if (r.failed && (opts.check ?? true)) {
      if (r.code === 'ENOENT' || (r as { originalMessage?: string }).originalMessage?.includes('ENOENT')) {
        throw new CommandError(this.name, argv, null, '', `command not found: ${argv[0]}`);
      }
      throw new CommandError(this.name, argv, r.exitCode ?? null, res.stdout, res.stderr, r.timedOut);
    }
    return res;
  }

  spawn(argv: string[], opts: SpawnOptions = {}): Spawned {
    const full = this.wrap(argv);
    const child = execa(full[0]!, full.slice(1), {
      reject: false,
      env: opts.env,
      timeout: opts.timeoutMs,
      maxBuffer: MAX_BUFFER,
      stdin: 'ignore',
      stripFinalNewline: false,
      ...(detachSpawns ? { detached: true, cleanup: false, stdout: 'ignore', stderr: 'ignore' } : {}),
    });
    if (detachSpawns) child.unref();
    let alive = true;
    const exited = child.then((r) => {
      alive = false;
      return {
        stdout: String(r.stdout ?? ''),
        stderr: String(r.stderr ?? ''),
        code: r.exitCode ?? -1,
        signal: r.signal ?? undefined,
      };
    });
    return {
      pid: child.pid,
      argv,
      exited,
      running: () => alive,
      stop: async (graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM') => {
        if (!alive) return exited;
        child.kill(signal);
        const timers: NodeJS.Timeout[] = [];
        // A forking tool (trafgen's per-CPU workers) can leave a grandchild holding the pipes after
        // the process itself is gone; execa would then wait for EOF forever.
        const gaveUp = new Promise<ExecResult & { signal?: string }>((resolve) => {
          timers.push(setTimeout(() => child.kill('SIGKILL'), graceMs));
          timers.push(
            setTimeout(() => {
              child.stdout?.destroy();
              child.stderr?.destroy();
              alive = false;
              resolve({ stdout: '', stderr: `(${argv[0]} did not release its output after SIGKILL)`, code: -1, signal: 'SIGKILL' });
            }, graceMs + 2000),
          );
        });
        try {
          return await Promise.race([exited, gaveUp]);
        } finally {
          timers.forEach(clearTimeout);
        }
      },
    };
  }

  async writeFile(path: string, data: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, data);
  }

  readFile(path: string): Promise<string> {
    return readFile(path, 'utf8');
  }
}

/**
 * A network namespace on this machine. Commands run through `ip netns exec`, which execs the
 * command itself, so the PID we hold is the real process (stop() signals it directly). The mount
 * namespace is shared, so files are the local host's.
 */
export class NetnsHost extends LocalHost {
  constructor(readonly ns: string) {
    super(ns, (argv) => ['ip', 'netns', 'exec', ns, ...argv]);
  }
}
