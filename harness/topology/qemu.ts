// qemu guests: what runs the kernel features this host lacks (IPVS, ipip, netem). Each guest is a
// qemu process booting the cached Debian image (vm-images/) with the disk in snapshot mode, a
// management NIC that can reach nothing but its own forwarded SSH port on 127.0.0.1, and a serial
// console logged to the run's work dir. Every qemu is in the teardown ledger from the moment it
// exists, and dies with the harness even when the harness is SIGKILLed (PR_SET_PDEATHSIG).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ConfigError, Interrupted, PreflightError, ProvisionError } from '../errors.ts';
import { LocalHost } from '../host/local.ts';
import { SshConnectError, connectSsh, type SshHost } from '../host/ssh.ts';
import type { Spawned } from '../host/types.ts';
import type { Teardown } from '../teardown.ts';
import type { VmImage } from '../../vm-images/build.ts';

export type Accel = 'kvm' | 'tcg';

/**
 * An extra NIC for guest-to-guest links. It appears in the guest as eth1, eth2, … in list order
 * (eth0 is management), link up, without an address: the topology assigns those over SSH.
 * `netdev` is qemu's `-netdev` value without `id=`:
 *  - point to point, either side may start first: use dgramPair(), i.e.
 *    `dgram,local.type=unix,local.path=A.sock,remote.type=unix,remote.path=B.sock` on one guest and
 *    the mirror image on the other;
 *  - TCP pair: `socket,listen=127.0.0.1:PORT` on one and `socket,connect=127.0.0.1:PORT` on the
 *    other — the connecting guest must be started after the listening one, so not in one bootGuests call;
 *  - a shared segment for three or more guests: `socket,mcast=239.255.X.Y:PORT,localaddr=127.0.0.1`
 *    (needs multicast on lo: `ip route add 239.0.0.0/8 dev lo`).
 * Guests on one segment need distinct MACs: the default is derived from the guest name and id.
 */
export interface NetdevSpec {
  id: string;
  netdev: string;
  mac?: string;
}

export interface GuestSpec {
  /** Lower-case letters, digits, dashes; also the guest's hostname. */
  name: string;
  /** Default 1024. */
  memoryMb?: number;
  /** Default 1 (under TCG more vCPUs cost host CPU that the benchmark needs). */
  cpus?: number;
  extraNetdevs?: NetdevSpec[];
  /** Appended to the kernel command line (e.g. `init=/bin/sh` for debugging). */
  appendCmdline?: string;
}

export interface BootOptions {
  image: VmImage;
  /** 'auto' (default): KVM when it really boots a kernel here, else TCG. */
  accel?: 'auto' | Accel;
  /** Console logs go here (`<name>.console.log`); also the dgram sockets of dgramPair. */
  workDir: string;
  log: (s: string) => void;
  teardown: Teardown;
  /** qemu start to SSH login. Default 180 s under TCG, 60 s under KVM. */
  bootTimeoutMs?: number;
  /** How long a KVM probe may take to print the kernel banner. Default 8 s. */
  kvmProbeMs?: number;
  /** Stops waiting for a boot (Ctrl-C); the guest is then stopped and Interrupted thrown. */
  signal?: AbortSignal;
  qemuBinary?: string;
}

export interface BootStages {
  /** ms after qemu started at which the console first showed each stage (to the poll interval). */
  kernel?: number;
  initrd?: number;
  init?: number;
  ready?: number;
  ssh: number;
}

export interface Guest {
  name: string;
  pid: number;
  accel: Accel;
  /** Why this accelerator: "requested", or what the KVM probe saw. */
  accelReason: string;
  /** Host port (127.0.0.1) forwarded to the guest's sshd. */
  sshPort: number;
  /** qemu start to first SSH login, ms. */
  bootMs: number;
  stages: BootStages;
  consolePath: string;
  argv: string[];
  host: SshHost;
  /** Closes SSH and ends qemu; idempotent; also done by the teardown ledger. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Pure parts

export const GUEST_NAME = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** Locally administered, stable per guest and NIC, so a segment's members never collide. */
export function macFor(guest: string, nic: string): string {
  const h = createHash('sha256').update(`${guest}/${nic}`).digest();
  return ['52', '54', '00', h[0]!, h[1]!, h[2]!].map((b) => (typeof b === 'number' ? b.toString(16).padStart(2, '0') : b)).join(':');
}

/** qemu splits option values at commas; a literal comma in a path is written twice. */
export function qemuEscape(v: string): string {
  return v.replace(/,/g, ',,');
}

export interface QemuArgvInput {
  name: string;
  accel: Accel;
  kernel: string;
  initrd?: string;
  disk: string;
  sshPort: number;
  consolePath: string;
  memoryMb?: number;
  cpus?: number;
  extraNetdevs?: NetdevSpec[];
  appendCmdline?: string;
  qemuBinary?: string;
}

export function kernelCmdline(name: string, append?: string): string {
  // panic=-1 turns a panic into a reset and -no-reboot turns the reset into qemu exiting: a guest
  // that cannot boot ends at once instead of hanging until the boot deadline.
  return ['console=ttyS0', 'root=/dev/vda', 'rw', 'panic=-1', `lbbench.hostname=${name}`, append].filter(Boolean).join(' ');
}

export function buildQemuArgv(o: QemuArgvInput): string[] {
  const argv = [
    o.qemuBinary ?? 'qemu-system-x86_64',
    '-name', `lbbench-${o.name}`,
    '-accel', o.accel,
    // KVM's `-cpu host` passes the host CPU through; TCG's `max` emulates everything it can.
    '-cpu', o.accel === 'kvm' ? 'host' : 'max',
    '-smp', String(o.cpus ?? 1),
    '-m', String(o.memoryMb ?? 1024),
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-monitor', 'none',
    '-serial', `file:${o.consolePath}`,
    '-no-reboot',
    '-kernel', o.kernel,
    ...(o.initrd ? ['-initrd', o.initrd] : []),
    '-append', kernelCmdline(o.name, o.appendCmdline),
    // snapshot=on: writes go to a throwaway overlay, so runs never change the image and several
    // guests can share it.
    '-drive', `file=${qemuEscape(o.disk)},format=raw,if=virtio,snapshot=on`,
    // restrict=on: the guest reaches nothing outside, not even the host; only the forward gets in.
    '-netdev', `user,id=mgmt,restrict=on,hostfwd=tcp:127.0.0.1:${o.sshPort}-:22`,
    '-device', `virtio-net-pci,netdev=mgmt,mac=${macFor(o.name, 'mgmt')},romfile=`,
  ];
  for (const n of o.extraNetdevs ?? []) {
    if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(n.id) || n.id === 'mgmt') throw new ConfigError(`guest ${o.name}: netdev id ${JSON.stringify(n.id)} is not usable`, [], 'ids are letters, digits, - and _, and not "mgmt"');
    if (/(^|,)id=/.test(n.netdev)) throw new ConfigError(`guest ${o.name}: netdev ${n.id}: leave id= out of the netdev string`, [], 'the id field sets it');
    argv.push('-netdev', `${n.netdev},id=${n.id}`, '-device', `virtio-net-pci,netdev=${n.id},mac=${n.mac ?? macFor(o.name, n.id)},romfile=`);
  }
  return argv;
}

/** Two ends of a point-to-point link over unix datagram sockets: no start order, no ports. */
export function dgramPair(workDir: string, link: string, id = link): [NetdevSpec, NetdevSpec] {
  const a = join(workDir, `${link}.a.sock`);
  const b = join(workDir, `${link}.b.sock`);
  // sun_path holds 108 bytes including the NUL.
  if (Buffer.byteLength(a) > 107) throw new ConfigError(`socket path too long for a unix socket: ${a}`, [], 'use a shorter work dir');
  const end = (local: string, remote: string) => `dgram,local.type=unix,local.path=${qemuEscape(local)},remote.type=unix,remote.path=${qemuEscape(remote)}`;
  return [
    { id, netdev: end(a, b) },
    { id, netdev: end(b, a) },
  ];
}

export interface ConsoleState {
  firmware: boolean;
  kernel: boolean;
  initrd: boolean;
  init: boolean;
  ready: boolean;
  /** Why the boot cannot succeed any more, when the console says so. */
  failure?: string;
}

/** What the serial console shows so far (the file is read while qemu writes it: lines may be partial). */
export function parseConsole(text: string): ConsoleState {
  const fatal = /lbbench-init(?:rd)?: FATAL: ([^\r\n]*)/.exec(text)?.[1];
  const panic = /Kernel panic - not syncing: ([^\r\n]*)/.exec(text)?.[1];
  const failure = [fatal, panic && `kernel panic: ${panic.trim()}`].filter(Boolean).join('; ') || undefined;
  return {
    firmware: /SeaBIOS|iPXE|Booting from ROM/.test(text),
    kernel: /Linux version \d/.test(text),
    initrd: text.includes('lbbench-initrd: start'),
    init: text.includes('lbbench-init: rc start'),
    ready: /lbbench-init: ready\r?\n/.test(text),
    failure,
  };
}

/**
 * The last lines of a console log, without terminal escapes (SeaBIOS clears the screen). A panic's
 * stack dump says nothing about why the boot failed, so the tail ends at the panic line.
 */
export function consoleTail(text: string, lines = 25): string {
  const clean = text
    .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[c()][0-9A-Za-z]?/g, '')
    .replace(/\r/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  let all = clean.split('\n').filter((l) => l.trim());
  const panic = all.findIndex((l) => l.includes('Kernel panic - not syncing'));
  if (panic >= 0) all = all.slice(0, panic + 1);
  return all.slice(-lines).join('\n');
}

/** How far a boot that failed got, in words (for the error message). */
export function bootProgress(s: ConsoleState): string {
  if (s.ready) return 'the guest finished its init, but SSH never answered';
  if (s.init) return "the root disk's init started but did not finish";
  if (s.initrd) return 'the initrd ran but did not reach the root disk\'s init';
  if (s.kernel) return 'the kernel started but the initrd never ran';
  if (s.firmware) return 'the firmware ran but the kernel printed nothing';
  return 'the console stayed empty';
}

// ---------------------------------------------------------------------------------------------
// Processes

const local = new LocalHost('local');
const SETPRIV = '/usr/bin/setpriv';

/**
 * qemu wrapped in `setpriv --pdeathsig KILL`, which execs it (same PID): if the harness dies
 * without unwinding its ledger (SIGKILL, OOM), the kernel kills qemu too.
 */
function spawnQemu(argv: string[]): Spawned {
  return local.spawn(existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...argv] : argv);
}

/**
 * SIGTERM is qemu's own clean exit (it drops the snapshot overlay); the guest OS needs no
 * shutdown because nothing it wrote is kept. SIGKILL follows after graceMs.
 */
async function stopQemu(p: Spawned, graceMs = 3000): Promise<void> {
  await p.stop(graceMs, 'SIGTERM');
  // execa reports exit once the pipes close; make sure the PID itself is gone before saying so.
  for (let i = 0; i < 50 && p.pid && alive(p.pid); i++) await sleep(100);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

function lastLine(s: string): string {
  return s.trim().split('\n').filter(Boolean).at(-1) ?? '';
}

// ---------------------------------------------------------------------------------------------
// Accelerator

export interface AccelChoice {
  accel: Accel;
  reason: string;
}

const accelMemo = new Map<string, Promise<AccelChoice>>();

/**
 * KVM only when it demonstrably boots a kernel: here /dev/kvm opens but a guest never gets past
 * the firmware (or qemu aborts setting an MSR), so an open /dev/kvm proves nothing. The probe
 * boots the image's kernel with no disk and waits for its banner. Memoised per kernel.
 */
export function chooseAccel(opts: Pick<BootOptions, 'image' | 'accel' | 'workDir' | 'kvmProbeMs' | 'qemuBinary' | 'teardown'>): Promise<AccelChoice> {
  const want = opts.accel ?? 'auto';
  if (want !== 'auto') return Promise.resolve({ accel: want, reason: 'requested' });
  const key = `${opts.qemuBinary ?? ''}:${opts.image.kernel}`;
  let p = accelMemo.get(key);
  if (!p) {
    p = probeKvm(opts);
    accelMemo.set(key, p);
    // A probe that could not run (interrupted, spawn failure) decides nothing: ask again next time.
    p.catch(() => accelMemo.delete(key));
  }
  return p;
}

async function probeKvm(opts: Pick<BootOptions, 'image' | 'workDir' | 'kvmProbeMs' | 'qemuBinary' | 'teardown'>): Promise<AccelChoice> {
  try {
    const fh = await open('/dev/kvm', 'r+');
    await fh.close();
  } catch (e) {
    return { accel: 'tcg', reason: `KVM unusable: cannot open /dev/kvm (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  const deadlineMs = opts.kvmProbeMs ?? 8000;
  await mkdir(opts.workDir, { recursive: true });
  const consolePath = join(opts.workDir, 'kvm-probe.console.log');
  const argv = [
    opts.qemuBinary ?? 'qemu-system-x86_64',
    ...['-name', 'lbbench-kvm-probe', '-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults', '-no-user-config', '-nographic'],
    ...['-monitor', 'none', '-serial', `file:${consolePath}`, '-no-reboot', '-kernel', opts.image.kernel],
    ...['-append', 'console=ttyS0 earlyprintk=serial panic=-1'],
  ];
  await writeFile(consolePath, '');
  const started = Date.now();
  const p = spawnQemu(argv);
  const undo = opts.teardown.add(`qemu KVM probe (pid ${p.pid})`, () => stopQemu(p, 500));
  try {
    while (Date.now() - started < deadlineMs) {
      const s = parseConsole(await readText(consolePath));
      if (s.kernel) return { accel: 'kvm', reason: `KVM probe: kernel banner after ${Date.now() - started} ms` };
      if (!p.running()) {
        const r = await p.exited;
        const said = r.stderr.trim().split('\n').filter(Boolean).slice(-2).join(' / ');
        return { accel: 'tcg', reason: `KVM unusable: qemu -accel kvm exited (${r.signal ?? `code ${r.code}`}): ${said || 'no message'}` };
      }
      await sleep(100);
    }
    const s = parseConsole(await readText(consolePath));
    return {
      accel: 'tcg',
      reason: `KVM unusable: /dev/kvm opens, but no kernel banner within ${deadlineMs / 1000} s (${bootProgress(s)})`,
    };
  } finally {
    await undo();
  }
}

// ---------------------------------------------------------------------------------------------
// Booting

/**
 * Boot guests in parallel; resolves when every one accepts SSH. On any failure the guests of this
 * call are stopped and the first error is thrown (a ProvisionError with the console's tail).
 */
export async function bootGuests(specs: GuestSpec[], opts: BootOptions): Promise<Guest[]> {
  const names = specs.map((s) => s.name);
  const bad = names.filter((n) => !GUEST_NAME.test(n));
  if (bad.length) throw new ConfigError(`bad guest name(s): ${bad.join(', ')}`, [], 'use lower-case letters, digits and dashes (max 31)');
  const dup = names.filter((n, i) => names.indexOf(n) !== i);
  if (dup.length) throw new ConfigError(`guest names must be unique: ${[...new Set(dup)].join(', ')}`);
  const qemu = opts.qemuBinary ?? 'qemu-system-x86_64';
  const found = await local.exec(['sh', '-c', 'command -v "$1"', 'sh', qemu], { check: false });
  if (found.code !== 0) throw new PreflightError(`${qemu} not found`, 'apt-get install -y qemu-system-x86   (or: lbbench setup)');
  await mkdir(opts.workDir, { recursive: true });
  const choice = await chooseAccel(opts);
  opts.log(`qemu: ${choice.accel} (${choice.reason})`);
  const results = await Promise.allSettled(specs.map((s) => bootOne(s, choice, opts)));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length) {
    await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
    throw failed[0]!.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<Guest>).value);
}

const PORT_TAKEN = /Could not set up host forwarding rule|Address already in use/i;

async function bootOne(spec: GuestSpec, choice: AccelChoice, opts: BootOptions): Promise<Guest> {
  const consolePath = join(opts.workDir, `${spec.name}.console.log`);
  const hostKey = (await readFile(opts.image.hostKeyPub, 'utf8')).trim();
  const timeoutMs = opts.bootTimeoutMs ?? (choice.accel === 'kvm' ? 60_000 : 180_000);
  // The port is free when we ask but qemu binds it later; another process may take it meanwhile.
  for (let attempt = 1; ; attempt++) {
    const sshPort = await freePort();
    const argv = buildQemuArgv({ ...spec, accel: choice.accel, kernel: opts.image.kernel, initrd: opts.image.initrd, disk: opts.image.disk, sshPort, consolePath, qemuBinary: opts.qemuBinary });
    // A console left by an earlier boot would show "ready" before this qemu has opened the file.
    await writeFile(consolePath, '');
    const started = Date.now();
    const proc = spawnQemu(argv);
    if (proc.pid === undefined) {
      const r = await proc.exited;
      throw new ProvisionError(`could not start qemu for guest "${spec.name}": ${lastLine(r.stderr) || 'no PID'}`, 'install it: apt-get install -y qemu-system-x86   (or: lbbench setup)');
    }
    const pid = proc.pid;
    const stopQ = opts.teardown.add(`qemu guest ${spec.name} (pid ${pid})`, () => stopQemu(proc));
    opts.log(`qemu: booting ${spec.name} (pid ${pid}, ${choice.accel}, ssh 127.0.0.1:${sshPort}, console ${consolePath})`);
    try {
      const { stages, host } = await waitUntilUp(spec, proc, { consolePath, sshPort, hostKey, started, timeoutMs, accel: choice.accel, opts });
      const closeSsh = opts.teardown.add(`ssh to guest ${spec.name}`, () => host.close());
      let stopping: Promise<void> | undefined;
      const guest: Guest = {
        name: spec.name,
        pid,
        accel: choice.accel,
        accelReason: choice.reason,
        sshPort,
        bootMs: stages.ssh,
        stages,
        consolePath,
        argv,
        host,
        stop: () => (stopping ??= (async () => {
          await closeSsh().catch(() => {});
          await stopQ();
        })()),
      };
      opts.log(`qemu: ${spec.name} up in ${(stages.ssh / 1000).toFixed(1)} s`);
      return guest;
    } catch (e) {
      await stopQ();
      const stderr = (await proc.exited).stderr;
      if (attempt < 3 && PORT_TAKEN.test(stderr)) continue;
      throw e;
    }
  }
}

interface WaitCtx {
  consolePath: string;
  sshPort: number;
  hostKey: string;
  started: number;
  timeoutMs: number;
  accel: Accel;
  opts: BootOptions;
}

async function waitUntilUp(spec: GuestSpec, proc: Spawned, c: WaitCtx): Promise<{ stages: BootStages; host: SshHost }> {
  const deadline = c.started + c.timeoutMs;
  const seen: Partial<BootStages> = {};
  const fail = async (why: string, hint?: string): Promise<never> => {
    const text = await readText(c.consolePath);
    const qemuErr = proc.running() ? '' : lastLine((await proc.exited).stderr);
    throw new ProvisionError(
      `guest "${spec.name}" did not boot (${c.accel}, ${((Date.now() - c.started) / 1000).toFixed(1)} s): ${why}` +
        (qemuErr ? `\nqemu: ${qemuErr}` : '') +
        `\nconsole (last lines of ${c.consolePath}):\n${consoleTail(text).replace(/^/gm, '  ') || '  (empty)'}`,
      hint ?? `the full console log is ${c.consolePath}; a damaged image is rebuilt by \`lbbench vm-image build --force\``,
    );
  };
  const interrupted = () => c.opts.signal?.aborted;

  // Console first: SSH attempts before sshd runs only hit qemu's forward, which accepts and closes.
  for (;;) {
    if (interrupted()) throw new Interrupted(String(c.opts.signal!.reason ?? 'SIGINT'));
    const s = parseConsole(await readText(c.consolePath));
    const t = Date.now() - c.started;
    for (const k of ['kernel', 'initrd', 'init', 'ready'] as const) if (s[k] && seen[k] === undefined) seen[k] = t;
    if (s.ready) break;
    if (s.failure) {
      // Let qemu finish writing and exit (panic → reset → -no-reboot) so the tail is complete.
      await Promise.race([proc.exited, sleep(2000)]);
      return fail(s.failure);
    }
    if (!proc.running()) {
      const r = await proc.exited;
      return fail(
        `qemu exited (${r.signal ?? `code ${r.code}`}) — ${bootProgress(s)}`,
        PORT_TAKEN.test(r.stderr) ? 'another process took the SSH port; retry' : undefined,
      );
    }
    if (Date.now() > deadline) {
      return fail(
        `no "ready" on the console within ${c.timeoutMs / 1000} s — ${bootProgress(s)}`,
        c.accel === 'tcg'
          ? `TCG is slow on a busy host: raise bootTimeoutMs, or stop what else runs; the full console log is ${c.consolePath}`
          : `KVM may not work here: try accel 'tcg' (or 'auto'); the full console log is ${c.consolePath}`,
      );
    }
    await sleep(100);
  }

  let lastErr: SshConnectError | undefined;
  for (;;) {
    if (interrupted()) throw new Interrupted(String(c.opts.signal!.reason ?? 'SIGINT'));
    if (!proc.running()) return fail(`qemu exited after the guest's init finished${lastErr ? ` (SSH: ${lastErr.message})` : ''}`);
    const left = deadline - Date.now();
    if (left <= 0) return fail(`SSH did not answer within ${c.timeoutMs / 1000} s${lastErr ? `: ${lastErr.message}` : ''}`);
    try {
      const host = await connectSsh({
        host: '127.0.0.1',
        port: c.sshPort,
        user: 'root',
        privateKeyPath: c.opts.image.clientKey,
        hostKey: c.hostKey,
        name: `vm:${spec.name}`,
        // A TCG guest takes seconds for the key exchange alone.
        connectTimeoutMs: Math.max(2000, Math.min(30_000, left)),
        maxSessions: 64,
      });
      return { host, stages: { ...seen, ssh: Date.now() - c.started } };
    } catch (e) {
      // Host key and authentication errors are not transient: retrying cannot fix them.
      if (!(e instanceof SshConnectError)) throw e;
      lastErr = e;
      await sleep(200);
    }
  }
}
