// SshHost against a real OpenSSH server in a throwaway network namespace.
//
// sshd runs as PID 1 of its own PID namespace (`unshare --pid --fork --kill-child --mount-proc`):
// sessions and the commands they run die with it, and nothing is left orphaned to this machine's
// PID 1 (which does not reap). Remote PIDs are therefore namespace PIDs, and are checked over SSH.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Teardown } from '../../harness/teardown.ts';
import { LocalHost } from '../../harness/host/local.ts';
import type { Spawned } from '../../harness/host/types.ts';
import { CommandError, ConfigError, ProvisionError } from '../../harness/errors.ts';
import {
  connectSsh,
  hashHostname,
  SshAuthError,
  SshConnectError,
  SshHost,
  SshHostKeyError,
  type SshTarget,
} from '../../harness/host/ssh.ts';
import { waitFor } from '../../harness/util/time.ts';
import { missingCapability, namespacesWithPrefix, processesMentioning } from './helpers.ts';
import { SSHD, startSshd as launchSshd } from './sshd-lab.ts';

const skip = missingCapability(['ip', SSHD, 'ssh-keygen', 'unshare']);
const local = new LocalHost();
const td = new Teardown();
const id = randomBytes(2).toString('hex');
const NS = `lbb-${id}-ssh`;
const LINK = `lbb-${id}-sshh`;
const PORT = 2222;

let dir = '';
let rootIp = '';
let ip = '';
let hostPub = ''; // "ssh-ed25519 AAAA..." of the key sshd serves
let otherHostPub = ''; // a key it does not serve
let base: SshTarget; // verified with known_hosts
let host: SshHost;

/** A /30 in 198.18.250.0/24, outside the address plan, not already on this machine. */
async function freeSlash30(): Promise<number> {
  const used = (await local.exec(['ip', '-o', '-4', 'addr', 'show'])).stdout;
  for (let tries = 0; tries < 64; tries++) {
    const o = 4 * Math.floor(Math.random() * 63);
    if (!used.includes(`198.18.250.${o + 1}/`) && !used.includes(`198.18.250.${o + 2}/`)) return o;
  }
  throw new Error('no free /30 in 198.18.250.0/24');
}

async function keygen(path: string): Promise<string> {
  await local.exec(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lbbench-test', '-f', path]);
  return (await readFile(`${path}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
}

/** sshd on ip:port in the test namespace, verbose so a failed handshake explains itself. */
function startSshd(port: number): Promise<Spawned> {
  return launchSshd({ ns: NS, ip, port, dir, name: `sshd-${port}`, hostKeyPath: `${dir}/host_ed25519`, maxSessions: 10, extra: ['LogLevel VERBOSE'] }, td);
}

async function remoteAlive(h: SshHost, pid: number): Promise<boolean> {
  return (await h.exec(['sh', '-c', 'kill -0 "$1"', 'sh', String(pid)], { check: false })).code === 0;
}

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), `lbb-${id}-ssh-`));
  td.add('remove temp dir', () => rm(dir, { recursive: true, force: true }));
  // sshd's privilege separation directory. Created, never removed: another sshd on this machine
  // (the system's, or a concurrent test's) may be relying on it.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  hostPub = await keygen(join(dir, 'host_ed25519'));
  otherHostPub = await keygen(join(dir, 'other_host_ed25519'));
  const clientPub = await keygen(join(dir, 'client'));
  await keygen(join(dir, 'stranger'));
  await writeFile(join(dir, 'authorized_keys'), `${clientPub}\n`);

  const o = await freeSlash30();
  rootIp = `198.18.250.${o + 1}`;
  ip = `198.18.250.${o + 2}`;
  await local.exec(['ip', 'netns', 'add', NS]);
  td.add(`delete netns ${NS}`, () => local.exec(['ip', 'netns', 'del', NS]));
  await local.exec(['ip', 'link', 'add', LINK, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS]);
  await local.exec(['ip', 'addr', 'add', `${rootIp}/30`, 'dev', LINK]);
  await local.exec(['ip', 'link', 'set', LINK, 'up']);
  await local.exec(['ip', '-n', NS, 'addr', 'add', `${ip}/30`, 'dev', 'eth0']);
  await local.exec(['ip', '-n', NS, 'link', 'set', 'eth0', 'up']);
  await local.exec(['ip', '-n', NS, 'link', 'set', 'lo', 'up']);

  await writeFile(join(dir, 'known_hosts'), `# test\n[${ip}]:${PORT} ${hostPub} lbbench-test\n`);
  await startSshd(PORT);
  base = { host: ip, port: PORT, privateKeyPath: join(dir, 'client'), knownHostsPath: join(dir, 'known_hosts') };
  const t0 = performance.now();
  host = await connectSsh(base);
  connectMs = performance.now() - t0;
  td.add('close ssh connection', () => host.close());
});

let connectMs = 0;

after(async () => {
  if (skip) return;
  assert.deepEqual(await td.unwind(), []);
  assert.deepEqual(namespacesWithPrefix(NS), [], 'namespace removed');
  assert.equal((await local.exec(['ip', 'link', 'show', LINK], { check: false })).code !== 0, true, 'veth removed');
  assert.deepEqual(processesMentioning(dir), [], 'no sshd or remote command left');
  assert.equal(existsSync(dir), false, 'temp dir removed');
});

test('exec: exit codes, stdout and stderr apart, stdin, env, argv arrives intact', { skip }, async (t) => {
  t.diagnostic(`connect (TCP + kex + auth): ${connectMs.toFixed(0)} ms`);
  assert.equal(host.name, `ssh:root@${ip}:${PORT}`);
  assert.deepEqual(await host.exec(['echo', 'hi']), { stdout: 'hi\n', stderr: '', code: 0 });

  const r = await host.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'], { check: false });
  assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', code: 3 });
  await assert.rejects(host.exec(['sh', '-c', 'echo boom >&2; exit 3']), (e: unknown) => {
    assert.ok(e instanceof CommandError);
    assert.equal(e.code, 3);
    assert.equal(e.host, host.name);
    assert.match(e.message, /exited with 3:\nboom/);
    return true;
  });
  await assert.rejects(host.exec(['no-such-command-lbb']), /command not found: no-such-command-lbb/);
  assert.equal((await host.exec(['no-such-command-lbb'], { check: false })).code, 127);

  assert.equal((await host.exec(['cat'], { input: 'line1\nline2 ünï\n' })).stdout, 'line1\nline2 ünï\n');
  assert.equal((await host.exec(['wc', '-c'])).stdout.trim(), '0', 'stdin is closed when there is no input');
  const big = 'x'.repeat(2 * 1024 * 1024);
  assert.equal((await host.exec(['wc', '-c'], { input: big })).stdout.trim(), String(big.length));
  assert.equal((await host.exec(['true'], { input: big })).code, 0, 'input nobody reads does not hang');

  const env = await host.exec(['sh', '-c', 'printf "%s|%s" "$A" "$B"'], { env: { A: "it's $HOME", B: 'x y' } });
  assert.equal(env.stdout, "it's $HOME|x y");

  const nasty = ['', ' ', "'", '"', '$(id)', '`id`', '\\', 'a b\nc', '*', '~', ';true', '-n', '!x', '{a,b}', 'ü', "'\\''"];
  const echoed = await host.exec(['printf', '%s\\0', ...nasty]);
  assert.deepEqual(echoed.stdout.split('\0').slice(0, -1), nasty);

  // Login-shell startup is the cost that matters here (see sshd's SetEnv SHLVL).
  const n = 20;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await host.exec(['true']);
  t.diagnostic(`sequential exec latency: ${((performance.now() - t0) / n).toFixed(1)} ms`);
});

test('exec timeout kills the remote process, also one that ignores SIGTERM', { skip }, async () => {
  const pidFile = join(dir, 'timeout.pid');
  const t0 = Date.now();
  await assert.rejects(host.exec(['sh', '-c', 'echo $$ > "$1"; exec sleep 30', 'sh', pidFile], { timeoutMs: 300 }), (e: unknown) => {
    assert.ok(e instanceof CommandError && e.timedOut, String(e));
    assert.match(e.message, /timed out/);
    return true;
  });
  assert.ok(Date.now() - t0 < 3000, 'returned soon after the timeout');
  const pid = Number((await host.readFile(pidFile)).trim());
  assert.equal(await remoteAlive(host, pid), false, `remote sleep ${pid} is gone`);

  const t1 = Date.now();
  const stubborn = await host.exec(['sh', '-c', 'trap "" TERM; echo $$ > "$1"; while :; do sleep 0.05; done', 'sh', pidFile], {
    timeoutMs: 300,
    check: false,
  });
  assert.equal(stubborn.code, -1);
  const took = Date.now() - t1;
  assert.ok(took >= 2000 && took < 6000, `SIGKILL after the grace period (${took} ms)`);
  assert.equal(await remoteAlive(host, Number((await host.readFile(pidFile)).trim())), false);
});

test('spawn: real remote PID, stop() with SIGTERM, and SIGKILL for a process that ignores it', { skip }, async () => {
  const sleeper = host.spawn(['sleep', '60']);
  assert.equal(sleeper.running(), true);
  const pid = await sleeper.started;
  assert.ok(pid && pid > 1);
  assert.equal(sleeper.pid, pid);
  assert.equal((await host.exec(['cat', `/proc/${pid}/comm`])).stdout, 'sleep\n', 'the PID is the command itself, not a shell');
  const r = await sleeper.stop();
  assert.equal(r.signal, 'SIGTERM');
  assert.equal(r.code, -1);
  assert.equal(sleeper.running(), false);
  assert.equal(await remoteAlive(host, pid), false);
  assert.equal(await sleeper.stop(), r, 'stop() again returns the same result');

  const stubborn = host.spawn(['sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done']);
  await waitFor(async () => stubborn.pid !== undefined);
  const t0 = Date.now();
  const s = await stubborn.stop(400);
  const took = Date.now() - t0;
  assert.equal(s.signal, 'SIGKILL');
  assert.ok(took >= 400 && took < 2500, `killed after the grace period (${took} ms)`);
  assert.equal(s.stdout, 'ready\n');
  assert.equal(await remoteAlive(host, stubborn.pid!), false);
});

test('spawn: output and exit code of a process that ends by itself; timeoutMs bounds it', { skip }, async () => {
  const p = host.spawn(['sh', '-c', 'echo out; echo "$X" >&2; exit 7'], { env: { X: 'from env' } });
  assert.deepEqual(await p.exited, { stdout: 'out\n', stderr: 'from env\n', code: 7, signal: undefined });
  assert.equal(p.running(), false);

  const bounded = host.spawn(['sleep', '60'], { timeoutMs: 300 });
  const t0 = Date.now();
  const r = await bounded.exited;
  assert.equal(r.signal, 'SIGTERM');
  assert.ok(Date.now() - t0 < 3000);
});

test('close() stops what the connection spawned; queued channels can be stopped before they start', { skip }, async () => {
  // maxSessions 3: one slot for commands, one for signals, one spare.
  const h = await connectSsh({ ...base, maxSessions: 3 });
  const first = h.spawn(['sleep', '60']);
  const queued = h.spawn(['sh', '-c', 'echo ran > "$1"', 'sh', join(dir, 'queued-ran')]);
  const pid = await first.started;
  assert.ok(pid);
  assert.equal(queued.pid, undefined);
  const q = await queued.stop();
  assert.deepEqual([q.code, q.signal], [-1, undefined]);
  assert.match(q.stderr, /stopped before it started/);
  await assert.rejects(h.exec(['true'], { timeoutMs: 200 }), (e: unknown) => e instanceof CommandError && e.timedOut);

  await h.close();
  assert.equal(first.running(), false);
  assert.equal((await first.exited).signal, 'SIGTERM');
  assert.equal(await remoteAlive(host, pid), false, 'the spawned process did not outlive the connection');
  assert.equal(existsSync(join(dir, 'queued-ran')), false, 'the queued command never ran');
});

test('writeFile creates parent directories; readFile returns the bytes written', { skip }, async () => {
  const path = join(dir, 'remote', 'a b', "c'd", 'file.txt');
  const data = "first line\nsecond 'quoted' \"line\" $HOME `x`\nünïcødé\n\n";
  await host.writeFile(path, data);
  assert.equal(await host.readFile(path), data);
  assert.equal(await readFile(path, 'utf8'), data, 'same file seen locally (shared mount namespace)');
  await host.writeFile(path, 'shorter');
  assert.equal(await host.readFile(path), 'shorter', 'overwrite truncates');
  const big = 'y'.repeat(3 * 1024 * 1024);
  await host.writeFile(join(dir, 'remote', 'big'), big);
  assert.equal((await host.readFile(join(dir, 'remote', 'big'))).length, big.length);
  await assert.rejects(host.readFile(join(dir, 'nope')), /No such file/);
});

test('20 concurrent execs share one connection (channels beyond MaxSessions wait)', { skip }, async (t) => {
  const t0 = performance.now();
  const out = await Promise.all(
    Array.from({ length: 20 }, (_, i) => host.exec(['sh', '-c', 'sleep 0.2; echo "$1"', 'sh', String(i)])),
  );
  assert.deepEqual(
    out.map((r) => r.stdout),
    Array.from({ length: 20 }, (_, i) => `${i}\n`),
  );
  const ms = performance.now() - t0;
  t.diagnostic(`20 × (sleep 0.2) concurrently: ${ms.toFixed(0)} ms`);
  assert.ok(ms < 2000, 'ran in parallel, a few batches');
  // Many more than MaxSessions at once, each channel short-lived: the close/open race in sshd.
  const many = await Promise.all(Array.from({ length: 200 }, (_, i) => host.exec(['echo', String(i)])));
  assert.deepEqual(
    many.map((r) => r.stdout),
    Array.from({ length: 200 }, (_, i) => `${i}\n`),
  );
  const conns = await local.exec(['ss', '-Htn', 'state', 'established', 'dst', `${ip}:${PORT}`]);
  assert.equal(conns.stdout.trim().split('\n').length, 1, `one TCP connection:\n${conns.stdout}`);
});

test('host keys: hashed known_hosts entry and pinned key are accepted', { skip }, async () => {
  const hashed = join(dir, 'known_hosts_hashed');
  await writeFile(hashed, `${hashHostname(`[${ip}]:${PORT}`, randomBytes(20))} ${hostPub}\n`);
  const h1 = await connectSsh({ ...base, knownHostsPath: hashed });
  assert.equal((await h1.exec(['echo', 'hashed'])).stdout, 'hashed\n');
  await h1.close();

  const h2 = await connectSsh({ ...base, knownHostsPath: undefined, hostKey: `${hostPub} comment`, name: 'pinned' });
  assert.equal(h2.name, 'pinned');
  assert.equal((await h2.exec(['echo', 'pinned'])).stdout, 'pinned\n');
  await h2.close();
  await assert.rejects(h2.exec(['true']), (e: unknown) => e instanceof ProvisionError && /pinned.*closed/.test(e.message));
});

test('host keys: unknown key is refused with its fingerprint and the line that pins it', { skip }, async () => {
  const fp = (await local.exec(['ssh-keygen', '-lf', join(dir, 'host_ed25519.pub')])).stdout.split(' ')[1]!;
  const kh = join(dir, 'known_hosts_new');
  let hint = '';
  await assert.rejects(connectSsh({ ...base, knownHostsPath: kh }), (e: unknown) => {
    assert.ok(e instanceof SshHostKeyError, String(e));
    assert.equal(e.verdict, 'unknown');
    assert.equal(e.fingerprint, fp);
    assert.ok(e.message.includes(fp), e.message);
    assert.match(e.message, /does not exist/);
    hint = e.hint!;
    return true;
  });
  const line = hint.split('\n').find((l) => l.trim().startsWith(`[${ip}]:${PORT} `))!;
  assert.ok(line, `hint names the known_hosts line: ${hint}`);
  // Following the hint works.
  await writeFile(kh, `${line.trim()}\n`);
  const h = await connectSsh({ ...base, knownHostsPath: kh });
  await h.close();

  // An entry for another host does not make this one known.
  await writeFile(kh, `[${ip}]:${PORT + 1} ${hostPub}\n${ip} ${hostPub}\n`);
  await assert.rejects(connectSsh({ ...base, knownHostsPath: kh }), (e: unknown) => e instanceof SshHostKeyError && e.verdict === 'unknown');

  await assert.rejects(connectSsh({ ...base, knownHostsPath: undefined }), ConfigError);
});

test('host keys: a changed key is refused loudly (known_hosts and pinned)', { skip }, async () => {
  const kh = join(dir, 'known_hosts_changed');
  await writeFile(kh, `[${ip}]:${PORT} ${otherHostPub}\n`);
  const otherFp = (await local.exec(['ssh-keygen', '-lf', join(dir, 'other_host_ed25519.pub')])).stdout.split(' ')[1]!;
  await assert.rejects(connectSsh({ ...base, knownHostsPath: kh }), (e: unknown) => {
    assert.ok(e instanceof SshHostKeyError, String(e));
    assert.equal(e.verdict, 'changed');
    assert.match(e.message, /HOST KEY CHANGED/);
    assert.match(e.message, /man-in-the-middle/);
    assert.ok(e.message.includes(otherFp), 'names the expected key');
    assert.ok(e.message.includes(e.fingerprint), 'names the presented key');
    assert.match(e.hint!, /ssh-keygen -R/);
    return true;
  });
  await assert.rejects(connectSsh({ ...base, knownHostsPath: undefined, hostKey: otherHostPub }), (e: unknown) => {
    assert.ok(e instanceof SshHostKeyError && e.verdict === 'changed', String(e));
    assert.match(e.hint!, /hostKey: "ssh-ed25519 /);
    return true;
  });
});

test('connect failures: wrong client key, refused port, silent server — each a clear error', { skip }, async () => {
  await assert.rejects(connectSsh({ ...base, privateKeyPath: join(dir, 'stranger') }), (e: unknown) => {
    assert.ok(e instanceof SshAuthError, String(e));
    assert.match(e.message, /authentication as root .* was refused/);
    assert.match(e.hint!, /authorized_keys/);
    return true;
  });
  await assert.rejects(connectSsh({ ...base, privateKeyPath: join(dir, 'missing-key') }), /cannot read private key/);
  await assert.rejects(connectSsh({ ...base, port: PORT + 1 }), (e: unknown) => {
    assert.ok(e instanceof SshConnectError && e.reason === 'refused', String(e));
    assert.match(e.message, /connection refused/);
    return true;
  });

  // Accepts TCP and never speaks: the handshake timeout must fire.
  const held = new Set<Socket>();
  const silent: Server = createServer((s) => held.add(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentPort = (silent.address() as { port: number }).port;
  try {
    const t0 = Date.now();
    await assert.rejects(connectSsh({ ...base, host: '127.0.0.1', port: silentPort, connectTimeoutMs: 400 }), (e: unknown) => {
      assert.ok(e instanceof SshConnectError && e.reason === 'timeout', String(e));
      assert.match(e.message, /no SSH handshake within 0.4 s/);
      return true;
    });
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    for (const s of held) s.destroy();
    silent.close();
  }
});

test('jump host: a connection tunnelled through another', { skip }, async () => {
  const h = await connectSsh({ ...base, jump: base, name: 'jumped' });
  assert.equal((await h.exec(['sh', '-c', 'echo "$SSH_CLIENT" | cut -d" " -f1'])).stdout, `${ip}\n`, 'the server saw the jump host as the client');
  await h.close();
});

test('sshd killed mid-way: pending and later calls fail with a ProvisionError naming the host', { skip }, async () => {
  const sshd = await startSshd(PORT + 2);
  const kh = join(dir, 'known_hosts_2');
  await writeFile(kh, `[${ip}]:${PORT + 2} ${hostPub}\n`);
  const h = await connectSsh({ ...base, port: PORT + 2, knownHostsPath: kh });
  const daemon = h.spawn(['sleep', '60']);
  // Caught at once: it rejects while we are still killing sshd.
  const pending = h.exec(['sleep', '30']).then(() => undefined, (e: unknown) => e);
  await waitFor(async () => daemon.pid !== undefined);
  await sshd.stop(100, 'SIGKILL');
  const e = await pending;
  assert.ok(e instanceof ProvisionError, String(e));
  assert.ok(e.message.includes(h.name), e.message);
  assert.match(e.message, /connection lost/);
  assert.ok(e.hint);
  const d = await daemon.exited;
  assert.equal(d.code, -1);
  assert.match(d.stderr, /connection lost/);
  assert.equal(daemon.running(), false);
  const t0 = Date.now();
  await assert.rejects(h.exec(['true']), (e: unknown) => e instanceof ProvisionError && e.message.includes(h.name));
  assert.ok(Date.now() - t0 < 100, 'later calls fail at once');
  await h.close();
});

test('a silent network path is detected by keepalives', { skip }, async () => {
  const h = await connectSsh({ ...base, keepaliveIntervalMs: 200 });
  await local.exec(['ip', 'link', 'set', LINK, 'down']);
  try {
    const t0 = Date.now();
    await assert.rejects(h.exec(['sleep', '10']), (e: unknown) => {
      assert.ok(e instanceof ProvisionError, String(e));
      assert.match(e.message, /connection lost \(no answer to 3 keepalives/);
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, `detected in ${Date.now() - t0} ms`);
  } finally {
    await local.exec(['ip', 'link', 'set', LINK, 'up']);
    await h.close();
  }
});
