// The one narrow interface drivers get. Local, network-namespace and SSH hosts implement it;
// a driver must never find out which one it was given.

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  /** Kill the command after this many ms. Every command has a bound; default 60 s. */
  timeoutMs?: number;
  /** Written to stdin. */
  input?: string;
  /** Throw CommandError on non-zero exit (default true). */
  check?: boolean;
  env?: Record<string, string>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Kill the process after this many ms (a load run must always be bounded). */
  timeoutMs?: number;
}

/** A process started on a Host and supervised by the harness (never a forked daemon). */
export interface Spawned {
  readonly pid: number | undefined;
  /**
   * Resolves with the PID once it is known (undefined if the process died first). Local hosts
   * know it at once; a remote host learns it from the process, so read `pid` after this.
   */
  readonly started?: Promise<number | undefined>;
  readonly argv: string[];
  /** Resolves when the process exits, with whatever it printed. Never rejects. */
  readonly exited: Promise<ExecResult & { signal?: string }>;
  running(): boolean;
  /**
   * `signal` (default SIGTERM), then SIGKILL after graceMs. Resolves when the process is gone —
   * also when a forked grandchild still holds its output pipes open (then with what was read).
   */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<ExecResult & { signal?: string }>;
}

export interface Host {
  /** Human-readable: "local", "lbb-ab12-lb0", "ssh:10.0.0.1". */
  readonly name: string;
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  spawn(argv: string[], opts?: SpawnOptions): Spawned;
  writeFile(path: string, data: string): Promise<void>;
  readFile(path: string): Promise<string>;
}
