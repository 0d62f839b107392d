// Builds the Debian guest that runs what this host's kernel lacks (IPVS, ipip, netem), and caches
// it per recipe hash under ~/.cache/lbbench/vm/<hash>/. A build goes into a temporary directory
// next to its final place and is renamed into it only when complete, so a crashed or interrupted
// build never looks like an image. The build log stays beside the image (or beside the failure).
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { PreflightError, ProvisionError } from '../harness/errors.ts';
import { S_IFCHR, S_IFDIR, S_IFREG, cpioNewc, moduleLoadOrder, parseDpkgStatus, parseModulesDep, type CpioEntry } from './initrd.ts';
import { loadRecipe, recipeHash, vmCacheDir, type Recipe } from './recipe.ts';

export interface VmImage {
  dir: string;
  kernel: string;
  /** Absent only for a kernel with its root disk driver built in (not Debian's). */
  initrd?: string;
  disk: string;
  /** Private key for root in the guest (no passphrase; the guest is reachable on 127.0.0.1 only). */
  clientKey: string;
  /** The guest's ssh host key, generated at build time and pinned: no trust on first use. */
  hostKeyPub: string;
  recipeHash: string;
  builtAt: string;
  kernelVersion: string;
  /** Versions of the recipe's packages as installed, for result provenance. */
  packages: Record<string, string>;
  buildSeconds: number;
  buildLog: string;
}

const META = 'image.json';
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
const SETPRIV = '/usr/bin/setpriv';

export interface EnsureOptions {
  /** Default: vmCacheDir() (honours $LBBENCH_CACHE and $XDG_CACHE_HOME). */
  cacheDir?: string;
  /** Build even when a cached image exists (it is replaced only once the new one is complete). */
  rebuild?: boolean;
  /** Default $LBBENCH_DEBIAN_MIRROR or deb.debian.org. Not part of the hash: any mirror of the suite will do. */
  mirror?: string;
}

export async function imageDirFor(opts: { cacheDir?: string } = {}): Promise<{ dir: string; hash: string; recipe: Recipe }> {
  const recipe = await loadRecipe();
  const hash = recipeHash(recipe);
  return { dir: join(opts.cacheDir ?? vmCacheDir(), hash), hash, recipe };
}

/** The cached image, or undefined when it is missing or incomplete. */
export async function readImage(dir: string): Promise<VmImage | undefined> {
  let img: VmImage;
  try {
    img = JSON.parse(await readFile(join(dir, META), 'utf8')) as VmImage;
  } catch {
    return undefined;
  }
  // Paths are stored relative so a moved cache still works.
  const abs: VmImage = {
    ...img,
    dir,
    kernel: join(dir, img.kernel),
    initrd: img.initrd ? join(dir, img.initrd) : undefined,
    disk: join(dir, img.disk),
    clientKey: join(dir, img.clientKey),
    hostKeyPub: join(dir, img.hostKeyPub),
    buildLog: join(dir, img.buildLog),
  };
  for (const p of [abs.kernel, abs.initrd, abs.disk, abs.clientKey, abs.hostKeyPub]) {
    if (p && !(await stat(p).catch(() => undefined))) return undefined;
  }
  return abs;
}

/** The image for the current recipe: the cached one, or a fresh build (minutes; logged to `log`). */
export async function ensureImage(log: (s: string) => void, opts: EnsureOptions = {}): Promise<VmImage> {
  const { dir, hash, recipe } = await imageDirFor(opts);
  const root = opts.cacheDir ?? vmCacheDir();
  // Here and not only before a build: a killed build's rootfs (with /proc mounted) must not linger.
  await removeStaleBuilds(root);
  if (!opts.rebuild) {
    const cached = await readImage(dir);
    if (cached) return cached;
  }
  await mkdir(root, { recursive: true });
  const tmp = join(root, `.build-${hash}-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(tmp);
  const started = Date.now();
  log(`building VM image ${hash} in ${tmp} (log: ${join(tmp, 'build.log')})`);
  try {
    await buildInto(tmp, recipe, hash, opts.mirror ?? process.env.LBBENCH_DEBIAN_MIRROR ?? DEFAULT_MIRROR, log, started);
  } catch (e) {
    const failedLog = join(root, `${hash}.failed.log`);
    await copyFile(join(tmp, 'build.log'), failedLog).catch(() => {});
    await removeTree(tmp);
    if (e instanceof ProvisionError || e instanceof PreflightError) {
      throw Object.assign(e, { message: `${e.message}\n(build log: ${failedLog})` });
    }
    throw new ProvisionError(`VM image build failed: ${(e as Error).message}\n(build log: ${failedLog})`, 'see the build log; rerun with `lbbench vm-image build`', { cause: e });
  }
  const old = join(root, `.old-${hash}-${process.pid}`);
  const hadOld = await rename(dir, old).then(
    () => true,
    () => false,
  );
  try {
    await rename(tmp, dir);
  } catch (e) {
    // Someone else finished the same recipe first: theirs is as good as ours.
    await removeTree(tmp);
    const theirs = await readImage(dir);
    if (theirs) return theirs;
    throw e;
  }
  if (hadOld) await removeTree(old);
  const img = await readImage(dir);
  if (!img) throw new ProvisionError(`VM image in ${dir} is incomplete right after building it`, 'a bug in lbbench or a full disk; see the build log');
  log(`VM image ${hash} ready in ${img.buildSeconds.toFixed(0)} s: ${dir}`);
  return img;
}

async function buildInto(tmp: string, recipe: Recipe, hash: string, mirror: string, log: (s: string) => void, started: number): Promise<void> {
  const buildLog = join(tmp, 'build.log');
  const note = (s: string) => appendFile(buildLog, `\n== ${new Date().toISOString()} ${s}\n`);
  await writeFile(buildLog, `lbbench VM image build, recipe ${hash}\n${JSON.stringify({ ...recipe, files: Object.keys(recipe.files) }, null, 2)}\n`);
  const run = async (what: string, argv: string[], timeoutMs: number) => {
    await note(`${what}: ${argv.join(' ')}`);
    // If we are killed, debootstrap must not keep writing into a directory the next build removes.
    const full = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'TERM', '--', ...argv] : argv;
    const r = await execa(full[0]!, full.slice(1), {
      reject: false,
      timeout: timeoutMs,
      stdin: 'ignore',
      stdout: { file: buildLog, append: true },
      stderr: { file: buildLog, append: true },
      env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C' },
    });
    if (r.failed) {
      const tail = (await readFile(buildLog, 'utf8')).trim().split('\n').slice(-15).join('\n');
      throw new ProvisionError(
        `VM image build: ${what} ${r.timedOut ? 'timed out' : `failed (exit ${r.exitCode ?? r.signal})`}:\n${tail}`,
        what === 'debootstrap'
          ? `check that ${mirror} is reachable (set $LBBENCH_DEBIAN_MIRROR for another mirror) and that there is disk space in ${tmp}`
          : 'see the build log',
      );
    }
  };
  await preflightBuild();

  const rootfs = join(tmp, 'rootfs');
  const debs = join(tmp, '..', 'debs');
  await mkdir(debs, { recursive: true });
  log(`debootstrap ${recipe.suite} (${recipe.packages.length} extra packages) from ${mirror} …`);
  const t0 = Date.now();
  await run(
    'debootstrap',
    ['debootstrap', `--variant=${recipe.variant}`, `--cache-dir=${debs}`, `--include=${recipe.packages.join(',')}`, recipe.suite, rootfs, mirror],
    30 * 60_000,
  );
  const debootstrapSeconds = (Date.now() - t0) / 1000;
  log(`debootstrap done in ${debootstrapSeconds.toFixed(0)} s`);

  const kver = (await readdir(join(rootfs, 'lib/modules')))[0];
  if (!kver) throw new ProvisionError('VM image build: no kernel in the bootstrapped system', `is ${recipe.packages[0]} in the recipe?`);
  const modDir = join(rootfs, 'lib/modules', kver);
  const index = parseModulesDep(await readFile(join(modDir, 'modules.dep'), 'utf8'), await readFile(join(modDir, 'modules.builtin'), 'utf8').catch(() => ''));
  const absent = recipe.requiredModules.filter((m) => !index.path.has(m) && !index.builtin.has(m));
  if (absent.length) {
    throw new ProvisionError(`VM image build: kernel ${kver} lacks module(s) ${absent.join(', ')}`, 'choose a kernel package that has them in vm-images/recipe.ts');
  }
  await note(`kernel ${kver}: required modules present: ${recipe.requiredModules.join(' ')}`);

  // Kernel and initrd live outside the disk: qemu boots them directly (-kernel/-initrd), no bootloader.
  await copyFile(join(rootfs, 'boot', `vmlinuz-${kver}`), join(tmp, 'vmlinuz'));
  const initrdModules = moduleLoadOrder(index, recipe.rootModules);
  await note(`initrd modules (load order): ${initrdModules.join(' ') || '(none: built in)'}`);
  const entries: CpioEntry[] = [
    ...['bin', 'dev', 'proc', 'sys', 'newroot', 'modules'].map((d) => ({ path: d, mode: S_IFDIR | 0o755 })),
    // Without /dev/console in the initramfs the kernel starts /init with no stdout: nothing would reach the serial log.
    { path: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] as [number, number] },
    { path: 'bin/busybox', mode: S_IFREG | 0o755, data: await readFile(join(rootfs, 'bin/busybox')) },
    { path: 'init', mode: S_IFREG | 0o755, data: recipe.files['initrd-init'] },
    { path: 'modules.list', mode: S_IFREG | 0o644, data: initrdModules.map((p) => p.replace(/^.*\//, '')).join('\n') + '\n' },
  ];
  for (const p of initrdModules) {
    if (!p.endsWith('.ko')) throw new ProvisionError(`VM image build: ${p} is compressed; the initrd's busybox insmod needs plain .ko files`, 'decompress it in build.ts');
    entries.push({ path: `modules/${p.replace(/^.*\//, '')}`, mode: S_IFREG | 0o644, data: await readFile(join(modDir, p)) });
  }
  await writeFile(join(tmp, 'initrd.img'), gzipSync(cpioNewc(entries), { level: 9 }));

  await configureRootfs(rootfs, recipe, tmp, run);
  const packages = Object.fromEntries(
    [...parseDpkgStatus(await readFile(join(rootfs, 'var/lib/dpkg/status'), 'utf8'))].filter(([p]) => recipe.packages.includes(p) || p.startsWith('linux-image-')),
  );

  log(`mkfs.ext4 -d (${recipe.diskSize}) …`);
  await run('mkfs.ext4', ['mkfs.ext4', '-q', '-F', '-m', '0', '-L', 'lbbench-root', '-d', rootfs, join(tmp, 'disk.raw'), recipe.diskSize], 10 * 60_000);
  await removeTree(rootfs);

  const meta: VmImage = {
    dir: '.',
    kernel: 'vmlinuz',
    initrd: 'initrd.img',
    disk: 'disk.raw',
    clientKey: 'id_ed25519',
    hostKeyPub: 'ssh_host_ed25519_key.pub',
    recipeHash: hash,
    builtAt: new Date().toISOString(),
    kernelVersion: kver,
    packages,
    buildSeconds: (Date.now() - started) / 1000,
    buildLog: 'build.log',
  };
  await writeFile(join(tmp, META), JSON.stringify({ ...meta, debootstrapSeconds }, null, 2) + '\n');
  await note('done');
}

type Run = (what: string, argv: string[], timeoutMs: number) => Promise<void>;

async function configureRootfs(rootfs: string, recipe: Recipe, tmp: string, run: Run): Promise<void> {
  const at = (p: string) => join(rootfs, p);
  // What the guest never uses; a smaller disk is faster to make and to read under TCG.
  for (const p of ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'var/cache/apt', 'var/lib/apt/lists', 'var/cache/debconf/templates.dat-old']) {
    await rm(at(p), { recursive: true, force: true });
  }
  for (const f of await readdir(at('boot'))) if (f.startsWith('initrd.img')) await rm(at(`boot/${f}`));
  await mkdir(at('var/lib/apt/lists/partial'), { recursive: true });
  await mkdir(at('var/cache/apt/archives/partial'), { recursive: true });

  await writeFile(at('etc/inittab'), recipe.files.inittab);
  await mkdir(at('etc/lbbench'), { recursive: true });
  await writeFile(at('etc/lbbench/rc'), recipe.files.rc, { mode: 0o755 });
  await chmod(at('etc/lbbench/rc'), 0o755);
  await unlink(at('sbin/init')).catch(() => {});
  await symlink('/bin/busybox', at('sbin/init'));
  // debootstrap copies these from the build host; the guest must not inherit them.
  await writeFile(at('etc/hostname'), 'lbbench-guest\n');
  await writeFile(at('etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  await writeFile(at('etc/resolv.conf'), '');
  await writeFile(at('etc/fstab'), '# root is mounted by the initrd; the rest by /etc/lbbench/rc\n');
  // dash instead of bash: every command the harness sends starts a login shell, and under TCG bash's start-up is seconds.
  const passwd = await readFile(at('etc/passwd'), 'utf8');
  await writeFile(at('etc/passwd'), passwd.replace(/^(root:[^\n]*:)\/bin\/bash$/m, '$1/bin/sh'));

  // Keys made here, so the harness pins the guest's host key instead of trusting the first one it sees.
  for (const f of await readdir(at('etc/ssh'))) if (f.startsWith('ssh_host_')) await rm(at(`etc/ssh/${f}`));
  await run('client key', ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lbbench-client', '-f', join(tmp, 'id_ed25519')], 30_000);
  await run('host key', ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'lbbench-guest', '-f', join(tmp, 'ssh_host_ed25519_key')], 30_000);
  await copyFile(join(tmp, 'ssh_host_ed25519_key'), at('etc/ssh/ssh_host_ed25519_key'));
  await chmod(at('etc/ssh/ssh_host_ed25519_key'), 0o600);
  await copyFile(join(tmp, 'ssh_host_ed25519_key.pub'), at('etc/ssh/ssh_host_ed25519_key.pub'));
  await rm(join(tmp, 'ssh_host_ed25519_key'));
  await writeFile(at('etc/ssh/sshd_config'), recipe.files.sshd_config);
  await mkdir(at('root/.ssh'), { recursive: true, mode: 0o700 });
  await copyFile(join(tmp, 'id_ed25519.pub'), at('root/.ssh/authorized_keys'));
  await chmod(at('root/.ssh/authorized_keys'), 0o600);
}

async function preflightBuild(): Promise<void> {
  const missing: string[] = [];
  for (const [cmd, pkg] of [
    ['debootstrap', 'debootstrap'],
    ['mkfs.ext4', 'e2fsprogs'],
    ['ssh-keygen', 'openssh-client'],
  ] as const) {
    const r = await execa('sh', ['-c', 'command -v "$1"', 'sh', cmd], { reject: false });
    if (r.exitCode !== 0) missing.push(pkg);
  }
  if (process.getuid?.() !== 0) throw new PreflightError('building the VM image needs root (debootstrap)', 'run as root (sudo)');
  if (missing.length) throw new PreflightError(`building the VM image needs ${missing.join(', ')}`, `apt-get install -y ${missing.join(' ')}   (or: lbbench setup)`);
}

/**
 * `rm -rf` that cannot wander: debootstrap mounts /proc and /sys in the target, and a build
 * killed mid-way leaves them mounted. Unmount first, then never cross a filesystem boundary.
 */
async function removeTree(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m && m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await execa('umount', ['-l', m], { reject: false });
  await execa('rm', ['-rf', '--one-file-system', dir], { reject: false });
}

/** Temporary build dirs of builds whose process is gone (killed, crashed, power lost). */
async function removeStaleBuilds(root: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const m = /^\.(?:build|old)-[0-9a-f]+-(\d+)/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid !== process.pid;
    try {
      if (alive) process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive && pid !== process.pid) await removeTree(join(root, name));
  }
}
