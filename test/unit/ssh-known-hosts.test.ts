// Host key verification for SshHost: known_hosts parsing and matching, pinned keys, the messages.
// Keys, fingerprints and hashed names below were made by OpenSSH 9.2 (ssh-keygen, ssh-keygen -H).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blobType,
  checkKnownHosts,
  checkPinned,
  fingerprint,
  hashHostname,
  hostKeyAlgorithms,
  hostKeyError,
  hostMatches,
  keyLine,
  knownHostsName,
  parseKnownHosts,
  parsePinnedKey,
  parsePublicKey,
  type HostKeyPolicy,
} from '../../harness/host/ssh.ts';

const K1 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO+Q6LKdWIgmeA5HU3ntS26T5ueY6tAsIFJ9vE/aMnIv';
const K1_FP = 'SHA256:6ABGfjyeAn8hSI5fuupPELpdQj/ZJz2tkMwmj7mOxek';
const K2 =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDG2wpK9QWfDNAMv7LtkEMsKPYSmDIBDWRqIdDy1omBA2Kn6bOyXLLRD1mAw08fdekN+mH57w1kmFAkjiBnmxwU=';
const K2_FP = 'SHA256:b3mSuha8V+MLzoH9Fwo5Vt3LIQogpd+45IEKI3MbGq4';
const K3 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPoj1+8oY/HoyyZeNvL+c0H4dRgI5bN7wwjUySLC5PvN';
const K3_FP = 'SHA256:EhRX+jWWAeSZR58lljUucJdeT/8xDH+0MrfYsbwiiV4';
// `ssh-keygen -H` of "[10.0.0.5]:2222 K1" and "bastion.example K2".
const HASHED_10_0_0_5_2222 = '|1|4jAjtzJQaVXCFZLeKw7RyVPwKC4=|kb46YZShhN6si/ImvBggrJza/AM=';
const HASHED_BASTION = '|1|eQCUHGvKzOQolLH5Q5oZUO17N+I=|RoQ5PMgvMe2NQHibd/vijwW/44w=';

const key = (line: string) => parsePinnedKey(line);

/** A well-formed ed25519 key line that no test file mentions. */
function fakeEd25519(fill: number): string {
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(Buffer.alloc(32, fill))]).toString('base64')}`;
}

test('fingerprint matches ssh-keygen -l', () => {
  assert.equal(fingerprint(key(K1).blob), K1_FP);
  assert.equal(fingerprint(key(K2).blob), K2_FP);
  assert.equal(fingerprint(key(K3).blob), K3_FP);
  assert.equal(keyLine(key(K2)), K2);
  assert.equal(blobType(key(K2).blob), 'ecdsa-sha2-nistp256');
  assert.equal(blobType(Buffer.from([0, 0])), undefined);
  assert.equal(blobType(Buffer.from([0, 0, 1, 0, 65])), undefined, 'length beyond the buffer');
});

test('parsePublicKey refuses data that is not a key of the stated type', () => {
  const [, b64] = K1.split(' ');
  assert.throws(() => parsePublicKey('ssh-rsa', b64!), /ssh-ed25519 key, the line says ssh-rsa/);
  assert.throws(() => parsePublicKey('ssh-ed25519', 'AAAA'), /not a key/);
  assert.throws(() => parsePublicKey('ssh-ed25519', 'not base64!'), /not base64/);
});

test('parsePinnedKey: bare key, with comment, or a whole known_hosts line', () => {
  assert.deepEqual(key(`${K1} root@vm`), key(K1));
  assert.deepEqual(key(`  [10.0.0.5]:2222 ${K1}\n`), key(K1));
  assert.throws(() => key('AAAAC3NzaC1lZDI1NTE5'), /expected "keytype base64-key"/);
  assert.throws(() => key('ssh-ed25519'), /expected/);
});

test('knownHostsName: port 22 is bare, others are [host]:port', () => {
  assert.equal(knownHostsName('10.0.0.5'), '10.0.0.5');
  assert.equal(knownHostsName('10.0.0.5', 22), '10.0.0.5');
  assert.equal(knownHostsName('10.0.0.5', 2222), '[10.0.0.5]:2222');
  assert.equal(knownHostsName('fe80::1', 2222), '[fe80::1]:2222');
});

test('hostMatches: plain lists, wildcards, negation, case', () => {
  assert.ok(hostMatches('a.example,10.0.0.5', '10.0.0.5'));
  assert.ok(!hostMatches('a.example,10.0.0.5', '10.0.0.50'), 'no prefix match');
  assert.ok(!hostMatches('10.0.0.5', '[10.0.0.5]:2222'), 'a bare entry is for port 22 only');
  assert.ok(hostMatches('[10.0.0.5]:2222', '[10.0.0.5]:2222'));
  assert.ok(!hostMatches('[10.0.0.5]:2222', '[10.0.0.5]:2223'));
  assert.ok(hostMatches('*.lab.example', 'node1.lab.example'));
  assert.ok(hostMatches('node?.lab', 'node7.lab'));
  assert.ok(!hostMatches('node?.lab', 'node17.lab'));
  assert.ok(hostMatches('[10.0.0.*]:2222', '[10.0.0.9]:2222'));
  assert.ok(!hostMatches('*.lab.example,!evil.lab.example', 'evil.lab.example'), 'negation wins');
  assert.ok(hostMatches('*.lab.example,!evil.lab.example', 'good.lab.example'));
  assert.ok(!hostMatches('!evil.lab.example', 'good.lab.example'), 'a negation alone matches nothing');
  assert.ok(hostMatches('Node1.LAB', 'node1.lab'));
  assert.ok(!hostMatches('a.b', 'aXb'), 'dots are literal');
});

test('hostMatches: hashed names made by ssh-keygen -H, and our own hashes', () => {
  assert.ok(hostMatches(HASHED_10_0_0_5_2222, '[10.0.0.5]:2222'));
  assert.ok(!hostMatches(HASHED_10_0_0_5_2222, '10.0.0.5'));
  assert.ok(!hostMatches(HASHED_10_0_0_5_2222, '[10.0.0.5]:2223'));
  assert.ok(hostMatches(HASHED_BASTION, 'bastion.example'));
  assert.ok(!hostMatches('|1|garbage', 'bastion.example'));
  assert.ok(!hostMatches('|1|AAAA|', 'bastion.example'));
  const salt = Buffer.from('4jAjtzJQaVXCFZLeKw7RyVPwKC4=', 'base64');
  assert.equal(hashHostname('[10.0.0.5]:2222', salt), HASHED_10_0_0_5_2222);
});

const FILE = `# comments and blank lines are skipped

[10.0.0.5]:2222 ${K1} comment here
${HASHED_BASTION} ${K2}
other.example,10.0.0.7 ${K3}
@cert-authority *.example ${K1}
@revoked * ${K3}
garbage line
@bogus host ${K1}
10.0.0.8 ssh-ed25519 AAAAnotakey
`;

test('parseKnownHosts: entries with line numbers and markers; bad lines reported, not fatal', () => {
  const { entries, problems } = parseKnownHosts(FILE);
  assert.deepEqual(
    entries.map((e) => [e.line, e.marker, e.hosts, e.key.type]),
    [
      [3, undefined, '[10.0.0.5]:2222', 'ssh-ed25519'],
      [4, undefined, HASHED_BASTION, 'ecdsa-sha2-nistp256'],
      [5, undefined, 'other.example,10.0.0.7', 'ssh-ed25519'],
      [6, 'cert-authority', '*.example', 'ssh-ed25519'],
      [7, 'revoked', '*', 'ssh-ed25519'],
    ],
  );
  assert.equal(problems.length, 3);
  assert.match(problems[0]!, /^line 8: expected/);
  assert.match(problems[1]!, /^line 9: unknown marker @bogus/);
  assert.match(problems[2]!, /^line 10: /);
  assert.deepEqual(parseKnownHosts(''), { entries: [], problems: [] });
  assert.equal(parseKnownHosts(`h ${K1}\r\n`).entries.length, 1, 'CRLF files');
});

test('checkKnownHosts: ok, changed, unknown (with other types), revoked', () => {
  const { entries } = parseKnownHosts(FILE);
  assert.deepEqual(checkKnownHosts(entries, '[10.0.0.5]:2222', key(K1)), { kind: 'ok', line: 3 });
  assert.deepEqual(checkKnownHosts(entries, 'bastion.example', key(K2)), { kind: 'ok', line: 4 });

  const changed = checkKnownHosts(entries, '[10.0.0.5]:2222', key(fakeEd25519(7)));
  assert.equal(changed.kind, 'changed');
  assert.deepEqual(changed.kind === 'changed' && changed.expected.map((e) => e.line), [3]);

  // Known only with an ecdsa key, shown an ed25519 key: unknown (OpenSSH asks), not changed.
  const other = checkKnownHosts(entries, 'bastion.example', key(K1));
  assert.deepEqual(other, { kind: 'unknown', otherTypes: ['ecdsa-sha2-nistp256'] });
  assert.deepEqual(checkKnownHosts(entries, 'nowhere.example', key(K1)), { kind: 'unknown', otherTypes: [] });
  // A @cert-authority line never vouches for a plain key.
  assert.equal(checkKnownHosts(entries, 'x.example', key(K1)).kind, 'unknown');
  // @revoked beats an entry that lists the key as good.
  assert.deepEqual(checkKnownHosts(entries, '10.0.0.7', key(K3)), { kind: 'revoked', line: 7 });
});

test('checkPinned', () => {
  assert.deepEqual(checkPinned(key(K1), key(K1)), { kind: 'ok' });
  const v = checkPinned(key(K1), key(K3));
  assert.equal(v.kind, 'changed');
});

test('hostKeyAlgorithms puts known key types first and never offers SHA-1 ssh-rsa', () => {
  assert.deepEqual(hostKeyAlgorithms([]).slice(0, 2), ['ssh-ed25519', 'ecdsa-sha2-nistp256']);
  assert.equal(hostKeyAlgorithms(['ecdsa-sha2-nistp256'])[0], 'ecdsa-sha2-nistp256');
  assert.deepEqual(hostKeyAlgorithms(['ssh-rsa']).slice(0, 2), ['rsa-sha2-512', 'rsa-sha2-256']);
  assert.ok(!hostKeyAlgorithms(['ssh-rsa']).includes('ssh-rsa'));
  const all = hostKeyAlgorithms(['ecdsa-sha2-nistp256', 'ssh-ed25519']);
  assert.equal(new Set(all).size, all.length, 'no duplicates');
  assert.equal(all.length, hostKeyAlgorithms([]).length);
});

test('hostKeyError: unknown key says the fingerprint and the exact line or hostKey value to pin', () => {
  const kh: HostKeyPolicy = { kind: 'known_hosts', path: '/lab/known_hosts', entries: [], missing: false };
  const e = hostKeyError('ssh:root@10.0.0.5:2222', '[10.0.0.5]:2222', kh, key(K1), { kind: 'unknown', otherTypes: [] });
  assert.equal(e.verdict, 'unknown');
  assert.equal(e.fingerprint, K1_FP);
  assert.equal(e.exitCode, 3);
  assert.match(e.message, /^\[ssh:root@10\.0\.0\.5:2222\] unknown host key ssh-ed25519 SHA256:6ABG/);
  assert.ok(e.hint!.includes(`add this line to /lab/known_hosts:\n  [10.0.0.5]:2222 ${K1}`), e.hint);
  assert.ok(e.hint!.includes('ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'), e.hint);

  const missing = hostKeyError('h', '[10.0.0.5]:2222', { ...kh, missing: true }, key(K1), { kind: 'unknown', otherTypes: [] });
  assert.match(missing.message, /\/lab\/known_hosts does not exist/);
  const ecdsaOnly = hostKeyError('h', 'bastion', kh, key(K1), { kind: 'unknown', otherTypes: ['ecdsa-sha2-nistp256'] });
  assert.match(ecdsaOnly.message, /has only ecdsa-sha2-nistp256 keys for it/);
  const ecdsa = hostKeyError('h', 'bastion', kh, key(K2), { kind: 'unknown', otherTypes: [] });
  assert.ok(ecdsa.hint!.includes('/etc/ssh/ssh_host_ecdsa_key.pub'));

  const pinned = hostKeyError('h', 'x', { kind: 'pinned', key: key(K3) }, key(K1), { kind: 'unknown', otherTypes: [] });
  assert.ok(pinned.hint!.includes(`hostKey: "${K1}"`), pinned.hint);
});

test('hostKeyError: changed key is loud and names both fingerprints; revoked is final', () => {
  const kh: HostKeyPolicy = { kind: 'known_hosts', path: '/lab/known_hosts', entries: [], missing: false };
  const e = hostKeyError('node1', '[10.0.0.5]:2222', kh, key(K3), { kind: 'changed', expected: [{ line: 3, key: key(K1) }] });
  assert.equal(e.verdict, 'changed');
  assert.match(e.message, /HOST KEY CHANGED/);
  assert.ok(e.message.includes(`now presents ssh-ed25519 ${K3_FP}, expected ${K1_FP} (/lab/known_hosts line 3)`), e.message);
  assert.match(e.message, /man-in-the-middle/);
  assert.ok(e.hint!.includes("ssh-keygen -R '[10.0.0.5]:2222' -f /lab/known_hosts"), e.hint);

  const p = hostKeyError('node1', 'x', { kind: 'pinned', key: key(K1) }, key(K3), checkPinned(key(K1), key(K3)) as never);
  assert.ok(p.message.includes(`expected ${K1_FP} (the pinned hostKey)`), p.message);
  assert.ok(p.hint!.includes(`hostKey: "${K3}"`));

  const r = hostKeyError('node1', 'x', kh, key(K3), { kind: 'revoked', line: 7 });
  assert.equal(r.verdict, 'revoked');
  assert.match(r.message, /REVOKED in \/lab\/known_hosts \(line 7\)/);
});
