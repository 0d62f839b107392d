// Namespaces that behave like separate machines reached over SSH: each runs a real OpenSSH server
// on a management link from this host (198.18.251.0/24, outside the address plan), with its own
// pinned host key. The data-plane links between them are the caller's business.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost, NetnsHost } from '../../harness/host/local.ts';
import type { Spawned } from '../../harness/host/types.ts';
import type { Teardown } from '../../harness/teardown.ts';
import { waitFor } from '../../harness/util/time.ts';

export const SSHD = '/usr/sbin/sshd';
const local = new LocalHost();

export interface LabHost {
  ns: string;
  mgmtIp: string;
  port: number;
  /** "ssh-ed25519 AAAA…", to pin. */
  hostKey: string;
}

async function keygen(path: string): Promise<string> {
  await local.exec(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lbbench-lab', '-f', path]);
  return (await readFile(`${path}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
}

function portOpen(addr: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: addr, port, timeout: 200 });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.once('timeout', () => (s.destroy(), resolve(false)));
  });
}

/**
 * A real sshd listening on ip:port inside `ns`, supervised as our child and registered for
 * teardown. It runs as PID 1 of its own PID namespace: what its sessions start dies with it, and
 * nothing is orphaned to this machine's PID 1 (which does not reap).
 */
export async function startSshd(
  o: { ns: string; ip: string; port: number; dir: string; name: string; hostKeyPath: string; maxSessions: number; extra?: string[] },
  td: Teardown,
): Promise<Spawned> {
  const conf = join(o.dir, `${o.name}.conf`);
  await writeFile(
    conf,
    [
      `ListenAddress ${o.ip}:${o.port}`,
      `HostKey ${o.hostKeyPath}`,
      `AuthorizedKeysFile ${o.dir}/authorized_keys`,
      `PidFile ${o.dir}/${o.name}.pid`,
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      // Root's .bashrc costs ~0.2 s per command; bash skips it when SHLVL is set.
      'SetEnv SHLVL=1',
      `MaxSessions ${o.maxSessions}`,
      ...(o.extra ?? []),
      '',
    ].join('\n'),
  );
  const proc = new NetnsHost(o.ns).spawn(['unshare', '--pid', '--fork', '--kill-child', '--mount-proc', SSHD, '-D', '-e', '-f', conf]);
  // unshare ignores SIGTERM while it waits; SIGKILL reaches sshd (and its sessions) through --kill-child.
  // --mount-proc: ss and kill inside must see the same PIDs as the sessions' $$, as on a real host.
  td.add(`stop ${o.name} in ${o.ns}`, () => proc.stop(100, 'SIGKILL'));
  const up = await waitFor(async () => !proc.running() || (await portOpen(o.ip, o.port)), { timeoutMs: 5000, intervalMs: 20 });
  if (!up || !proc.running()) throw new Error(`sshd in ${o.ns} did not start: ${(await proc.stop(100, 'SIGKILL')).stderr}`);
  return proc;
}

/**
 * sshd in each of the given (existing) namespaces. The lab takes a free /26 of 198.18.251.0/24.
 */
export async function startSshdLab(namespaces: string[], linkPrefix: string, td: Teardown): Promise<{ dir: string; clientKey: string; hosts: LabHost[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'lbb-lab-'));
  td.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  if (!existsSync('/run/sshd')) await mkdir('/run/sshd', { mode: 0o755 });
  const clientPub = await keygen(join(dir, 'client'));
  await writeFile(join(dir, 'authorized_keys'), `${clientPub}\n`);
  const used = (await local.exec(['ip', '-o', '-4', 'addr', 'show'])).stdout;
  const base = [0, 64, 128, 192].find((b) => !used.includes(`198.18.251.${b + 1}/`));
  if (base === undefined) throw new Error('no free block in 198.18.251.0/24');
  const hosts: LabHost[] = [];
  for (const [i, ns] of namespaces.entries()) {
    const rootIp = `198.18.251.${base + 4 * i + 1}`;
    const mgmtIp = `198.18.251.${base + 4 * i + 2}`;
    const link = `${linkPrefix}m${i}`;
    await local.exec(['ip', 'link', 'add', link, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', ns]);
    td.add(`delete link ${link}`, () => local.exec(['ip', 'link', 'del', link], { check: false }));
    await local.exec(['ip', 'addr', 'add', `${rootIp}/30`, 'dev', link]);
    await local.exec(['ip', 'link', 'set', link, 'up']);
    await local.exec(['ip', '-n', ns, 'addr', 'add', `${mgmtIp}/30`, 'dev', 'mgmt0']);
    await local.exec(['ip', '-n', ns, 'link', 'set', 'mgmt0', 'up']);
    await local.exec(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    const hostKey = await keygen(join(dir, `host-${i}`));
    await startSshd({ ns, ip: mgmtIp, port: 22, dir, name: `sshd-${i}`, hostKeyPath: join(dir, `host-${i}`), maxSessions: 32 }, td);
    hosts.push({ ns, mgmtIp, port: 22, hostKey });
  }
  return { dir, clientKey: join(dir, 'client'), hosts };
}
