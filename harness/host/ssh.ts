// SSH hosts (bare metal, qemu guests) over ssh2. One connection carries every channel; host keys
// are verified here because ssh2 reads neither ~/.ssh/config nor known_hosts.
//
// Every remote command runs as `echo lbbench-pid=$$; exec ARGV` under the login shell, so the
// process we hold has a real PID: without a pty, closing a channel does not stop the remote
// process, and signalling it by PID over a second channel is the only way to end it.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { CommandError, ConfigError, PreflightError, ProvisionError } from '../errors.ts';
import type { ExecOptions, ExecResult, Host, SpawnOptions, Spawned } from './types.ts';

export interface SshTarget {
  /** Address or name to connect to. */
  host: string;
  /** Default 22. */
  port?: number;
  /** Default 'root'. */
  user?: string;
  /** Key-based auth only; the key must not have a passphrase (there is no agent support). */
  privateKeyPath: string;
  /**
   * Host key verification: a known_hosts file to check against, or a pinned public key line
   * ("ssh-ed25519 AAAA..."). One is required; a pinned key, when given, alone decides.
   */
  knownHostsPath?: string;
  hostKey?: string;
  /** Reach `host` through this one (like ProxyJump): `host` is resolved by the jump host. */
  jump?: SshTarget;
  /** Display name for errors/logs, default `ssh:user@host:port`. */
  name?: string;
  /** Connect timeout ms (TCP + handshake + auth), default 10000. */
  connectTimeoutMs?: number;
  /** Keepalive interval ms, default 5000; the connection counts as lost after 3 unanswered. */
  keepaliveIntervalMs?: number;
  /** The server's MaxSessions (sshd default 10): channels beyond it wait for a free one. */
  maxSessions?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
// Same bound as LocalHost: keep the tail that matters for an error message.
const MAX_BUFFER = 16 * 1024 * 1024;
const KEEPALIVE_COUNT_MAX = 3;
// execa's forceKillAfterDelay, so a spawn's timeout behaves as on LocalHost.
const SPAWN_TIMEOUT_GRACE_MS = 5000;
// Time a timed-out exec gets between SIGTERM and SIGKILL.
const EXEC_TIMEOUT_GRACE_MS = 2000;
// After SIGKILL, how long a grandchild may keep the channel's output open before we close it.
const RELEASE_MS = 2000;
const PID_MARKER = 'lbbench-pid=';
// Login-shell noise before the marker is dropped; past this much the marker is not coming.
const PID_SEARCH_LIMIT = 64 * 1024;
// ~8 s of retries for a channel the server refused while it was still freeing another.
const OPEN_RETRIES = 50;

// ---------------------------------------------------------------------------------------------
// Quoting (pure)

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Quote argv for a POSIX shell so each element arrives as exactly one argument, byte for byte. */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((a) => {
      if (a.includes('\0')) throw new TypeError(`argument contains a NUL byte: ${JSON.stringify(a)}`);
      return SAFE_WORD.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
    })
    .join(' ');
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The command line sent to the remote login shell: report our PID, set env, become argv. */
export function remoteCommand(argv: readonly string[], env: Record<string, string> = {}): string {
  if (!argv.length) throw new TypeError('empty argv');
  const exports = Object.entries(env).map(([k, v]) => {
    if (!ENV_NAME.test(k)) throw new TypeError(`invalid environment variable name: ${JSON.stringify(k)}`);
    return `export ${k}=${shellQuote([v])}; `;
  });
  return `echo ${PID_MARKER}$$; ${exports.join('')}exec ${shellQuote(argv)}`;
}

// ---------------------------------------------------------------------------------------------
// Host keys (pure)

export interface PublicKey {
  type: string;
  /** The SSH wire-format key blob (what known_hosts holds base64-encoded). */
  blob: Buffer;
}

export interface KnownHostEntry {
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** The hostnames field as written: comma-separated patterns, or one `|1|salt|hash`. */
  hosts: string;
  key: PublicKey;
}

/** Type name embedded at the start of a key blob (a uint32-length-prefixed string). */
export function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || 4 + n > blob.length) return undefined;
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** `ssh-ed25519 AAAA...` → key; throws when the base64 is not a key of the stated type. */
export function parsePublicKey(type: string, base64: string): PublicKey {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new Error(`not base64: ${base64.slice(0, 20)}…`);
  const blob = Buffer.from(base64, 'base64');
  const inner = blobType(blob);
  if (inner !== type) throw new Error(`key data is ${inner ? `a ${inner} key` : 'not a key'}, the line says ${type}`);
  return { type, blob };
}

const KEY_TYPE = /^(ssh-|ecdsa-sha2-|sk-|rsa-)[a-z0-9@.-]+$/;

export function parseKnownHosts(text: string): { entries: KnownHostEntry[]; problems: string[] } {
  const entries: KnownHostEntry[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') {
      marker = fields.shift()!.slice(1) as KnownHostEntry['marker'];
    } else if (fields[0]!.startsWith('@')) {
      problems.push(`line ${i + 1}: unknown marker ${fields[0]}`);
      return;
    }
    const [hosts, type, data] = fields;
    if (!hosts || !type || !data) {
      problems.push(`line ${i + 1}: expected "hostnames keytype base64-key"`);
      return;
    }
    try {
      entries.push({ line: i + 1, marker, hosts, key: parsePublicKey(type, data) });
    } catch (e) {
      problems.push(`line ${i + 1}: ${(e as Error).message}`);
    }
  });
  return { entries, problems };
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port = 22): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function wildcard(pattern: string, s: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(s);
}

/** Whether a known_hosts hostnames field covers `name` (hashed, wildcards and `!negation`). */
export function hostMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let found = false;
  for (const p of hosts.split(',')) {
    if (p.startsWith('!')) {
      if (wildcard(p.slice(1), name)) return false;
    } else if (wildcard(p, name)) {
      found = true;
    }
  }
  return found;
}

/** `|1|salt|hash` for `name`, as `ssh-keygen -H` writes it (used by tests and pin hints). */
export function hashHostname(name: string, salt: Buffer): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

export type HostKeyVerdict =
  | { kind: 'ok'; line?: number }
  | { kind: 'revoked'; line: number }
  | { kind: 'changed'; expected: { line?: number; key: PublicKey }[] }
  | { kind: 'unknown'; otherTypes: string[] };

/** OpenSSH's decision: a matching key wins, a revoked one loses, a different key of the same type is a change. */
export function checkKnownHosts(entries: KnownHostEntry[], name: string, key: PublicKey): HostKeyVerdict {
  const mine = entries.filter((e) => e.marker !== 'cert-authority' && hostMatches(e.hosts, name));
  const same = (e: KnownHostEntry) => e.key.blob.equals(key.blob);
  const revoked = mine.find((e) => e.marker === 'revoked' && same(e));
  if (revoked) return { kind: 'revoked', line: revoked.line };
  const ok = mine.find((e) => !e.marker && same(e));
  if (ok) return { kind: 'ok', line: ok.line };
  const sameType = mine.filter((e) => !e.marker && e.key.type === key.type);
  if (sameType.length) return { kind: 'changed', expected: sameType.map((e) => ({ line: e.line, key: e.key })) };
  return { kind: 'unknown', otherTypes: [...new Set(mine.filter((e) => !e.marker).map((e) => e.key.type))] };
}

/** A pinned key: `ssh-ed25519 AAAA... [comment]`, or a whole known_hosts line. */
export function parsePinnedKey(text: string): PublicKey {
  const fields = text.trim().split(/\s+/);
  const at = fields.findIndex((f) => KEY_TYPE.test(f));
  if (at < 0 || !fields[at + 1]) throw new Error('expected "keytype base64-key", e.g. "ssh-ed25519 AAAAC3Nz..."');
  return parsePublicKey(fields[at]!, fields[at + 1]!);
}

export function checkPinned(pinned: PublicKey, key: PublicKey): HostKeyVerdict {
  return pinned.blob.equals(key.blob) ? { kind: 'ok' } : { kind: 'changed', expected: [{ key: pinned }] };
}

/** As `ssh-keygen -l` prints it: SHA256 of the blob, unpadded base64. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function keyLine(key: PublicKey): string {
  return `${key.type} ${key.blob.toString('base64')}`;
}

/** ssh2's default host key algorithms minus SHA-1 `ssh-rsa` (OpenSSH dropped it too). */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];

/**
 * Ask first for the key types we already know, as OpenSSH does: otherwise a server with several
 * host keys shows one we have no entry for, and a known host looks unknown.
 */
export function hostKeyAlgorithms(knownTypes: string[]): string[] {
  const wanted = knownTypes.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [t]));
  const first = HOST_KEY_ALGORITHMS.filter((a) => wanted.includes(a));
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

export type HostKeyPolicy =
  | { kind: 'pinned'; key: PublicKey }
  | { kind: 'known_hosts'; path: string; entries: KnownHostEntry[]; missing: boolean };

export class SshHostKeyError extends PreflightError {
  constructor(
    message: string,
    hint: string,
    readonly verdict: 'unknown' | 'changed' | 'revoked',
    readonly fingerprint: string,
  ) {
    super(message, hint);
  }
}

/** The error for a key that was not accepted: the fingerprint, and exactly how to pin it after checking. */
export function hostKeyError(
  displayName: string,
  lookupName: string,
  policy: HostKeyPolicy,
  key: PublicKey,
  verdict: Exclude<HostKeyVerdict, { kind: 'ok' }>,
): SshHostKeyError {
  const fp = fingerprint(key.blob);
  const check =
    `compare ${fp} with the host's own key, printed on the host by ` +
    `\`ssh-keygen -lf /etc/ssh/ssh_host_${key.type.replace(/^ssh-|-.*$/g, '')}_key.pub\``;
  const pin =
    policy.kind === 'pinned'
      ? `set in the topology file:  hostKey: "${keyLine(key)}"`
      : `add this line to ${policy.path}:\n  ${lookupName} ${keyLine(key)}`;
  const where = policy.kind === 'pinned' ? 'the pinned hostKey' : policy.path;
  if (verdict.kind === 'unknown') {
    const why =
      policy.kind === 'known_hosts' && policy.missing
        ? ` (${policy.path} does not exist)`
        : verdict.otherTypes.length
          ? ` (${where} has only ${verdict.otherTypes.join(', ')} keys for it)`
          : ` (no entry for ${lookupName} in ${where})`;
    return new SshHostKeyError(
      `[${displayName}] unknown host key ${key.type} ${fp}${why}`,
      `${check}; if it is the same, ${pin}`,
      'unknown',
      fp,
    );
  }
  if (verdict.kind === 'revoked') {
    return new SshHostKeyError(
      `[${displayName}] host key ${key.type} ${fp} is REVOKED in ${where} (line ${verdict.line})`,
      'refusing to connect: this key was marked @revoked on purpose; ask whoever revoked it',
      'revoked',
      fp,
    );
  }
  const expected = verdict.expected
    .map((e) => `${fingerprint(e.key.blob)}${e.line ? ` (${where} line ${e.line})` : ` (${where})`}`)
    .join(', ');
  const fix =
    policy.kind === 'pinned'
      ? `if the host was reinstalled (e.g. a rebuilt VM image), ${check}; if it is the same, ${pin}`
      : `if the host was reinstalled (e.g. a rebuilt VM image), remove the old entry with ` +
        `\`ssh-keygen -R '${lookupName}' -f ${policy.path}\`, ${check}, and if it is the same ${pin}`;
  return new SshHostKeyError(
    `[${displayName}] HOST KEY CHANGED: ${lookupName} now presents ${key.type} ${fp}, expected ${expected}. ` +
      'Someone could be intercepting the connection (man-in-the-middle), or the host was reinstalled. Refusing to connect.',
    fix,
    'changed',
    fp,
  );
}

// ---------------------------------------------------------------------------------------------
// Connection errors

export type SshConnectFailure = 'refused' | 'timeout' | 'unreachable' | 'dns' | 'reset' | 'handshake' | 'jump' | 'other';

export class SshConnectError extends ProvisionError {
  constructor(message: string, hint: string, readonly reason: SshConnectFailure, cause?: unknown) {
    super(message, hint, { cause });
  }
}

export class SshAuthError extends PreflightError {}

interface Resolved {
  host: string;
  port: number;
  user: string;
  name: string;
  keyPath: string;
  timeoutMs: number;
  keepaliveMs: number;
  maxSessions: number;
  via?: string;
}

function connectError(r: Resolved, e: Error & { code?: string; level?: string }): SshConnectError | SshAuthError {
  const at = `${r.host}:${r.port}${r.via ? ` (via ${r.via})` : ''}`;
  const pre = `[${r.name}] SSH to ${at}`;
  if (e.level === 'client-authentication') {
    return new SshAuthError(
      `[${r.name}] SSH authentication as ${r.user} with key ${r.keyPath} was refused by ${at}`,
      `put ${r.keyPath}.pub into ${r.user}'s ~/.ssh/authorized_keys on the host ` +
        `(ssh-copy-id -i ${r.keyPath}.pub -p ${r.port} ${r.user}@${r.host}); for root, sshd needs PermitRootLogin prohibit-password or yes`,
    );
  }
  switch (e.code) {
    case 'ECONNREFUSED':
      return new SshConnectError(
        `${pre}: connection refused`,
        `nothing listens on ${r.host}:${r.port}: check that sshd runs there and the port is right (a qemu guest may still be booting)`,
        'refused',
        e,
      );
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return new SshConnectError(`${pre}: ${e.code}`, `no route to ${r.host}: check the address and this machine's routes/firewall`, 'unreachable', e);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new SshConnectError(`${pre}: cannot resolve ${r.host}`, 'use an IP address or fix the name in the topology file', 'dns', e);
    case 'ECONNRESET':
    case 'EPIPE':
      return new SshConnectError(
        `${pre}: connection reset during the handshake`,
        'sshd closed the connection: it may be starting (a qemu port forward accepts before the guest listens), or MaxStartups/firewall rules reject us; retry, or check the host\'s sshd log',
        'reset',
        e,
      );
  }
  if (e.level === 'client-timeout') {
    return new SshConnectError(
      `${pre}: no SSH handshake within ${r.timeoutMs / 1000} s`,
      `check that ${r.host}:${r.port} is reachable and answers with an SSH banner (\`nc ${r.host} ${r.port}\`); raise connectTimeoutMs for a slow guest (qemu TCG)`,
      'timeout',
      e,
    );
  }
  if (/lost before handshake/i.test(e.message)) {
    return new SshConnectError(
      `${pre}: connection closed before the SSH handshake`,
      'the port accepted and closed the connection: sshd may not be up yet (a qemu port forward accepts before the guest listens); retry',
      'reset',
      e,
    );
  }
  if (e.level === 'handshake' || e.level === 'protocol') {
    return new SshConnectError(
      `${pre}: SSH handshake failed: ${e.message}`,
      'the server speaks no algorithm we accept (or is not an SSH server); check its sshd version and configuration',
      'handshake',
      e,
    );
  }
  return new SshConnectError(`${pre} failed: ${e.message}`, 'check the address, port and that sshd runs there', 'other', e);
}

// ---------------------------------------------------------------------------------------------
// Channels

/** Channel slots: more sessions than the server's MaxSessions would be refused, so they wait. */
class Slots {
  private used = 0;
  private waiting: { grant: () => void; fail: (e: Error) => void }[] = [];
  constructor(private readonly limit: number) {}

  acquire(): { granted: Promise<() => void>; cancel: () => void } {
    let entry: (typeof this.waiting)[number] | undefined;
    const granted = new Promise<() => void>((resolve, reject) => {
      const release = () => {
        this.used--;
        this.waiting.shift()?.grant();
      };
      const grant = () => {
        this.used++;
        let once = false;
        resolve(() => {
          if (!once) (once = true), release();
        });
      };
      if (this.used < this.limit) grant();
      else this.waiting.push((entry = { grant, fail: reject }));
    });
    const cancel = () => {
      const i = entry ? this.waiting.indexOf(entry) : -1;
      if (i >= 0) this.waiting.splice(i, 1)[0]!.fail(new Error('cancelled'));
    };
    return { granted, cancel };
  }

  failAll(e: Error): void {
    for (const w of this.waiting.splice(0)) w.fail(e);
  }
}

class Output {
  private chunks: Buffer[] = [];
  private bytes = 0;
  truncated = false;
  push(b: Buffer): void {
    this.chunks.push(b);
    this.bytes += b.length;
    while (this.bytes > MAX_BUFFER && this.chunks.length > 1) {
      this.bytes -= this.chunks.shift()!.length;
      this.truncated = true;
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

interface Outcome {
  stdout: string;
  stderr: string;
  /** null when killed by a signal, or when no exit status arrived. */
  code: number | null;
  signal?: string;
  exitSeen: boolean;
  truncated: boolean;
  /** Set when the connection went away before the command finished. */
  lost?: ProvisionError;
  /** Set when we closed the channel ourselves (cancelled, or output never released). */
  forced?: string;
}

/** One remote command on one channel. */
class RemoteRun {
  pid: number | undefined;
  exitSeen = false;
  finished = false;
  readonly pidKnown: Promise<number | undefined>;
  readonly done: Promise<Outcome>;
  private resolvePid!: (pid: number | undefined) => void;
  private resolveDone!: (o: Outcome) => void;
  private head: Buffer | undefined = Buffer.alloc(0);
  private stdout = new Output();
  private stderr = new Output();
  private code: number | null = null;
  private signal: string | undefined;
  private ch: ClientChannel | undefined;
  /** queued: waiting for a channel slot; opening: the command may already run remotely. */
  state: 'queued' | 'opening' | 'open' = 'queued';
  /** Drop the run if it is still queued (then nothing ran); false once it may have started. */
  cancelOpen: () => boolean = () => false;

  constructor(expectPid: boolean) {
    this.pidKnown = new Promise((r) => (this.resolvePid = r));
    this.done = new Promise((r) => (this.resolveDone = r));
    if (!expectPid) this.head = undefined;
  }

  attach(ch: ClientChannel): void {
    this.ch = ch;
    this.state = 'open';
    ch.on('data', (b: Buffer) => this.onStdout(b));
    ch.stderr.on('data', (b: Buffer) => this.stderr.push(b));
    ch.on('exit', (code: number | null, signal?: string) => {
      this.exitSeen = true;
      this.code = code;
      this.signal = signal ?? undefined;
    });
    ch.on('error', () => {});
    ch.on('close', () => this.finish({}));
  }

  private onStdout(b: Buffer): void {
    if (!this.head) return this.stdout.push(b);
    this.head = Buffer.concat([this.head, b]);
    const at = this.head.indexOf(PID_MARKER);
    const nl = at >= 0 ? this.head.indexOf('\n', at) : -1;
    if (nl >= 0) {
      const pid = Number(this.head.subarray(at + PID_MARKER.length, nl).toString('latin1'));
      const rest = this.head.subarray(nl + 1);
      this.head = undefined;
      if (Number.isInteger(pid) && pid > 1) this.pid = pid;
      if (rest.length) this.stdout.push(rest);
      this.resolvePid(this.pid);
    } else if (this.head.length > PID_SEARCH_LIMIT) {
      this.flushHead();
    }
  }

  private flushHead(): void {
    if (this.head?.length) this.stdout.push(this.head);
    this.head = undefined;
    this.resolvePid(this.pid);
  }

  /** Idempotent; the first call decides. */
  finish(extra: { lost?: ProvisionError; forced?: string }): void {
    if (this.finished) return;
    this.finished = true;
    this.flushHead();
    this.resolvePid(this.pid);
    if (this.ch && extra.forced) this.ch.destroy();
    this.resolveDone({
      stdout: this.stdout.text(),
      stderr: this.stderr.text(),
      code: this.exitSeen ? this.code : null,
      signal: this.signal,
      exitSeen: this.exitSeen,
      truncated: this.stdout.truncated || this.stderr.truncated,
      lost: this.exitSeen ? undefined : extra.lost,
      forced: extra.forced,
    });
  }
}

function withNote(text: string, note: string): string {
  return text && !text.endsWith('\n') ? `${text}\n${note}` : `${text}${note}`;
}

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

export interface SshSpawned extends Spawned {
  /** The remote PID once the command started (undefined if it never did). `pid` is undefined until then. */
  readonly started: Promise<number | undefined>;
}

export class SshHost implements Host {
  readonly name: string;
  private lost: { message: string; hint: string } | undefined;
  private readonly runs = new Set<RemoteRun>();
  private readonly spawned = new Set<SshSpawned>();
  private readonly slots: Slots;
  // Signals travel on their own slot so a host full of long-running spawns can still be stopped.
  private readonly controlSlots = new Slots(1);
  private closing: Promise<void> | undefined;
  private socketClosed = false;

  /** Use connectSsh(). */
  constructor(
    private readonly client: Ssh2Client,
    private readonly target: Resolved,
    private readonly via?: SshHost,
  ) {
    this.name = target.name;
    // One session for signals, one spare for a session sshd has closed but not yet freed.
    this.slots = new Slots(Math.max(1, target.maxSessions - 2));
    let lastError: Error | undefined;
    client.on('error', (e: Error) => (lastError = e));
    const onGone = () => {
      if (this.lost) return;
      const why =
        lastError?.message === 'Keepalive timeout'
          ? `no answer to ${KEEPALIVE_COUNT_MAX} keepalives ${target.keepaliveMs / 1000} s apart`
          : lastError
            ? lastError.message
            : 'the server closed it';
      this.markLost(
        `[${this.name}] SSH connection lost (${why})${target.via ? ` via ${target.via}` : ''}`,
        `the host rebooted, sshd was stopped, or the network path to ${target.host}:${target.port} broke; check the host, then rerun`,
      );
    };
    client.on('end', onGone);
    client.on('close', () => {
      this.socketClosed = true;
      onGone();
    });
  }

  private markLost(message: string, hint: string): void {
    if (this.lost) return;
    this.lost = { message, hint };
    this.slots.failAll(this.lostError());
    this.controlSlots.failAll(this.lostError());
    for (const r of this.runs) r.finish({ lost: this.lostError() });
  }

  private lostError(): ProvisionError {
    return new ProvisionError(this.lost!.message, this.lost!.hint);
  }

  /** Start `command` on a channel of its own; the channel opens when a slot is free. */
  private start(command: string, opts: { input?: string; control?: boolean; expectPid?: boolean } = {}): RemoteRun {
    const run = new RemoteRun(opts.expectPid ?? true);
    if (this.lost) {
      run.finish({ lost: this.lostError() });
      return run;
    }
    this.runs.add(run);
    void run.done.then(() => this.runs.delete(run));
    const slot = (opts.control ? this.controlSlots : this.slots).acquire();
    run.cancelOpen = () => {
      if (run.state !== 'queued' || run.finished) return false;
      slot.cancel();
      run.finish({ forced: 'stopped before it started' });
      return true;
    };
    slot.granted.then(
      (release) => {
        void run.done.then(release);
        if (run.finished) return;
        run.state = 'opening';
        let attempt = 0;
        const opened = (err: Error | undefined, ch: ClientChannel) => {
          // sshd frees a closed session only in a later pass of its main loop, so an open sent
          // right after a close can still find MaxSessions reached. Nothing ran yet: try again.
          if (err && !this.lost && !run.finished && /Channel open failure/.test(err.message) && attempt < OPEN_RETRIES) {
            setTimeout(open, Math.min(200, 10 * ++attempt));
            return;
          }
          if (err) {
            run.finish({
              lost: this.lost
                ? this.lostError()
                : new ProvisionError(
                    `[${this.name}] could not open an SSH channel: ${err.message}`,
                    'the server refused a session: set maxSessions for this host to its sshd MaxSessions (default 10)',
                  ),
            });
            return;
          }
          if (run.finished) {
            ch.destroy();
            return;
          }
          run.attach(ch);
          ch.end(opts.input ?? '');
        };
        const open = () => {
          if (run.finished) return;
          try {
            this.client.exec(command, opened);
          } catch (e) {
            opened(e as Error, undefined as never);
          }
        };
        open();
      },
      () => run.finish(this.lost ? { lost: this.lostError() } : { forced: 'stopped before it started' }),
    );
    return run;
  }

  /** `kill -s SIG PID` with the remote shell's builtin (a minimal guest may lack /bin/kill). */
  private async signal(pid: number, signal: NodeJS.Signals): Promise<void> {
    if (!/^SIG[A-Z0-9]+$/.test(signal)) throw new TypeError(`bad signal ${signal}`);
    const run = this.start(`kill -s ${signal.slice(3)} ${pid}`, { control: true, expectPid: false });
    const t = setTimeout(() => run.finish({ forced: 'kill timed out' }), 10_000);
    await run.done;
    clearTimeout(t);
  }

  /**
   * signal, SIGKILL after graceMs, and close the channel if its output is still held open
   * RELEASE_MS after that. Signals go only to the PID we read, and only while no exit status
   * has arrived for it (after that the PID may belong to someone else).
   */
  private async terminate(run: RemoteRun, graceMs: number, signal: NodeJS.Signals): Promise<void> {
    if (run.finished || run.cancelOpen()) return;
    const pid = await Promise.race([run.pidKnown, run.done.then(() => undefined)]);
    if (run.finished) return;
    if (pid === undefined) {
      run.finish({ forced: 'stopped before its PID was known' });
      return;
    }
    const timers: NodeJS.Timeout[] = [];
    const send = (s: NodeJS.Signals) => {
      if (!run.exitSeen && !run.finished) this.signal(pid, s).catch(() => {});
    };
    send(signal);
    timers.push(setTimeout(() => send('SIGKILL'), graceMs));
    timers.push(setTimeout(() => run.finish({ forced: 'did not release its output after SIGKILL' }), graceMs + RELEASE_MS));
    await run.done;
    timers.forEach(clearTimeout);
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const run = this.start(remoteCommand(argv, opts.env), { input: opts.input });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void this.terminate(run, EXEC_TIMEOUT_GRACE_MS, 'SIGTERM');
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const o = await run.done;
    clearTimeout(timer);
    if (o.lost) throw o.lost;
    let stderr = o.stderr;
    if (o.truncated) stderr = withNote(stderr, `(output beyond ${MAX_BUFFER} bytes dropped)`);
    if (o.forced && !timedOut) stderr = withNote(stderr, `(${argv[0]} ${o.forced})`);
    const res = { stdout: o.stdout, stderr, code: timedOut || o.code === null ? -1 : o.code };
    const failed = timedOut || o.code !== 0 || o.truncated;
    if (failed && (opts.check ?? true)) {
      if (o.code === 127 && !o.stdout && o.stderr.includes(argv[0]!) && /not found|No such file/.test(o.stderr)) {
        throw new CommandError(this.name, argv, null, '', `command not found: ${argv[0]}`);
      }
      throw new CommandError(this.name, argv, timedOut ? null : o.code, res.stdout, o.signal ? withNote(stderr, `(killed by ${o.signal})`) : stderr, timedOut);
    }
    return res;
  }

  spawn(argv: string[], opts: SpawnOptions = {}): SshSpawned {
    const run = this.start(remoteCommand(argv, opts.env));
    const exited = run.done.then((o) => {
      let stderr = o.stderr;
      if (o.lost) stderr = withNote(stderr, o.lost.message);
      if (o.forced) stderr = withNote(stderr, `(${argv[0]} ${o.forced})`);
      // Forced with a PID: it was SIGKILLed and a grandchild kept the output open.
      const signal = o.signal ?? (o.forced && run.pid !== undefined ? 'SIGKILL' : undefined);
      return { stdout: o.stdout, stderr, code: o.code ?? -1, signal };
    });
    let timer: NodeJS.Timeout | undefined;
    const stop = async (graceMs = 3000, signal: NodeJS.Signals = 'SIGTERM') => {
      await this.terminate(run, graceMs, signal);
      return exited;
    };
    if (opts.timeoutMs !== undefined) timer = setTimeout(() => void stop(SPAWN_TIMEOUT_GRACE_MS), opts.timeoutMs);
    const handle: SshSpawned = {
      get pid() {
        return run.pid;
      },
      argv,
      exited,
      started: run.pidKnown,
      running: () => !run.finished,
      stop,
    };
    this.spawned.add(handle);
    void exited.then(() => {
      clearTimeout(timer);
      this.spawned.delete(handle);
    });
    return handle;
  }

  async writeFile(path: string, data: string): Promise<void> {
    await this.exec(['sh', '-c', 'mkdir -p -- "$1" && cat > "$2"', 'sh', posix.dirname(path), path], { input: data });
  }

  async readFile(path: string): Promise<string> {
    return (await this.exec(['cat', '--', path])).stdout;
  }

  /** A TCP stream to host:port opened by the server (direct-tcpip), as ProxyJump uses. */
  tunnel(host: string, port: number): Promise<Duplex> {
    if (this.lost) return Promise.reject(this.lostError());
    return new Promise((resolve, reject) => {
      const fail = (e: Error) =>
        reject(
          new SshConnectError(
            `[${this.name}] could not open a tunnel to ${host}:${port}: ${e.message}`,
            `check that ${host}:${port} is reachable from ${this.target.host} and that its sshd allows forwarding (AllowTcpForwarding)`,
            'jump',
            e,
          ),
        );
      try {
        this.client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => (err ? fail(err) : resolve(stream)));
      } catch (e) {
        fail(e as Error);
      }
    });
  }

  /** Stops what we spawned that still runs (remote processes outlive their channel), then disconnects. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (!this.lost) await Promise.all([...this.spawned].map((s) => s.stop(1000)));
      this.markLost(`[${this.name}] SSH connection was closed`, 'the harness used this host after closing it: a bug in lbbench');
      if (!this.socketClosed) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            this.client.destroy();
            resolve();
          }, 2000);
          this.client.once('close', () => (clearTimeout(t), resolve()));
          this.client.end();
        });
      }
      await this.via?.close();
    })();
    return this.closing;
  }
}

async function hostKeyPolicy(t: SshTarget, name: string): Promise<HostKeyPolicy> {
  if (t.hostKey) {
    try {
      return { kind: 'pinned', key: parsePinnedKey(t.hostKey) };
    } catch (e) {
      throw new ConfigError(`[${name}] hostKey: ${(e as Error).message}`, [], 'copy the host\'s key line, e.g. from `ssh-keyscan -t ed25519 HOST` or /etc/ssh/ssh_host_ed25519_key.pub on the host');
    }
  }
  if (!t.knownHostsPath) {
    throw new ConfigError(
      `[${name}] no way to verify the host key: set knownHostsPath or hostKey`,
      [],
      'connecting without checking the host key is not supported; pin the key with hostKey: "ssh-ed25519 AAAA..." or point knownHostsPath at a known_hosts file',
    );
  }
  let text = '';
  let missing = false;
  try {
    text = await readFile(t.knownHostsPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PreflightError(`[${name}] cannot read ${t.knownHostsPath}: ${(e as Error).message}`, 'check the file\'s path and permissions');
    }
    missing = true;
  }
  // A garbled line is skipped, as OpenSSH does; it can only make a host unknown, never trusted.
  return { kind: 'known_hosts', path: t.knownHostsPath, entries: parseKnownHosts(text).entries, missing };
}

async function privateKey(t: SshTarget, name: string): Promise<Buffer> {
  let key: Buffer;
  try {
    key = await readFile(t.privateKeyPath);
  } catch (e) {
    throw new PreflightError(
      `[${name}] cannot read private key ${t.privateKeyPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      `create one with \`ssh-keygen -t ed25519 -N '' -f ${t.privateKeyPath}\` and put ${t.privateKeyPath}.pub into the host's ~/.ssh/authorized_keys`,
    );
  }
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) {
    const encrypted = /passphrase|encrypted/i.test(parsed.message);
    throw new PreflightError(
      `[${name}] cannot use private key ${t.privateKeyPath}: ${parsed.message}`,
      encrypted
        ? `lbbench needs a key without a passphrase: make a dedicated one with \`ssh-keygen -t ed25519 -N '' -f KEYFILE\``
        : 'expected an OpenSSH or PEM private key (ssh-keygen writes one)',
    );
  }
  return key;
}

/**
 * Connect, verify the host key, authenticate. Errors: ConfigError (no way to verify the key),
 * PreflightError (bad key file; SshHostKeyError; SshAuthError), SshConnectError (network).
 */
export async function connectSsh(t: SshTarget): Promise<SshHost> {
  const port = t.port ?? 22;
  const user = t.user ?? 'root';
  const name = t.name ?? `ssh:${user}@${t.host}:${port}`;
  const [policy, key] = await Promise.all([hostKeyPolicy(t, name), privateKey(t, name)]);
  const via = t.jump ? await connectSsh(t.jump) : undefined;
  const r: Resolved = {
    host: t.host,
    port,
    user,
    name,
    keyPath: t.privateKeyPath,
    timeoutMs: t.connectTimeoutMs ?? 10_000,
    keepaliveMs: t.keepaliveIntervalMs ?? 5000,
    maxSessions: t.maxSessions ?? 10,
    via: via?.name,
  };
  try {
    const sock = via ? await via.tunnel(t.host, port) : undefined;
    const lookupName = knownHostsName(t.host, port);
    const knownTypes = policy.kind === 'pinned' ? [policy.key.type] : policy.entries.filter((e) => !e.marker && hostMatches(e.hosts, lookupName)).map((e) => e.key.type);
    let rejected: SshHostKeyError | undefined;
    const hostVerifier = (blob: Buffer): boolean => {
      const type = blobType(blob) ?? 'unknown';
      const presented = { type, blob };
      const verdict = policy.kind === 'pinned' ? checkPinned(policy.key, presented) : checkKnownHosts(policy.entries, lookupName, presented);
      if (verdict.kind === 'ok') return true;
      rejected = hostKeyError(name, lookupName, policy, presented, verdict);
      return false;
    };
    const client = new Client();
    const config: ConnectConfig = {
      host: t.host,
      port,
      username: user,
      privateKey: key,
      sock,
      readyTimeout: r.timeoutMs,
      keepaliveInterval: r.keepaliveMs,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      hostVerifier,
      algorithms: { serverHostKey: hostKeyAlgorithms(knownTypes) as never },
      authHandler: ['publickey'],
    };
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        cleanup();
        client.destroy();
        reject(rejected ?? connectError(r, e));
      };
      // A socket that closes without an error event (e.g. a tunnel torn down) must not hang us.
      const onClose = () => onError(Object.assign(new Error('Connection lost before handshake'), { level: 'protocol' }));
      const onReady = () => {
        cleanup();
        resolve();
      };
      const cleanup = () => {
        client.off('error', onError).off('close', onClose).off('ready', onReady);
        // Later errors are the SshHost's business; an 'error' without a listener would crash us.
        client.on('error', () => {});
      };
      client.on('error', onError).on('close', onClose).on('ready', onReady);
      try {
        client.connect(config);
        // Commands are many small request/reply exchanges: Nagle + delayed ACK cost ~40 ms each.
        client.setNoDelay(true);
      } catch (e) {
        onError(e as Error);
      }
    });
    return new SshHost(client, r, via);
  } catch (e) {
    await via?.close();
    throw e;
  }
}
