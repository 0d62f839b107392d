// A network namespace on any Host: a local one, or a guest/bare-metal machine reached over SSH
// (how a whole netns topology runs inside a VM whose kernel has what this one lacks).
import type { ExecOptions, ExecResult, Host, SpawnOptions, Spawned } from './types.ts';
import { LocalHost, NetnsHost } from './local.ts';

/**
 * `ip netns exec` execs the command itself, so the PID the parent reports is the real process
 * and stop() signals it directly. The mount namespace is the parent's, so files are the parent's.
 */
export class NsOnHost implements Host {
  readonly name: string;
  constructor(
    readonly parent: Host,
    readonly ns: string,
  ) {
    this.name = `${parent.name}/${ns}`;
  }
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.parent.exec(['ip', 'netns', 'exec', this.ns, ...argv], opts);
  }
  spawn(argv: string[], opts?: SpawnOptions): Spawned {
    const s = this.parent.spawn(['ip', 'netns', 'exec', this.ns, ...argv], opts);
    // Callers see their own argv in errors, not the wrapper.
    return {
      get pid() {
        return s.pid;
      },
      argv,
      ...(s.started ? { started: s.started } : {}),
      exited: s.exited,
      running: () => s.running(),
      stop: (graceMs, signal) => s.stop(graceMs, signal),
    };
  }
  writeFile(path: string, data: string): Promise<void> {
    return this.parent.writeFile(path, data);
  }
  readFile(path: string): Promise<string> {
    return this.parent.readFile(path);
  }
}

/** The namespace `ns` on `parent`: the local fast path when the parent is this machine. */
export function nsHost(parent: Host, ns: string): Host {
  return parent instanceof LocalHost && !(parent instanceof NetnsHost) && parent.name === 'local' ? new NetnsHost(ns) : new NsOnHost(parent, ns);
}
