// shellQuote and remoteCommand: what SshHost sends to the remote login shell. Checked against the
// real shells a remote may have (dash as sh, and bash), since the quoting is only right if they agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { remoteCommand, shellQuote } from '../../harness/host/ssh.ts';

const NASTY = [
  '',
  ' ',
  'plain',
  'two words',
  "it's",
  "'",
  "''",
  "'\\''",
  '"',
  '"$HOME"',
  '$HOME',
  '${HOME}',
  '$(id -u)',
  '`id -u`',
  '\\',
  '\\n',
  'a\nb',
  '\ttab',
  'trailing newline\n',
  '*',
  '?',
  '[a-z]',
  '~',
  '~root',
  '{a,b}',
  '!',
  '!!',
  ';',
  '; rm -rf /tmp/never-lbb',
  '&& false',
  '|',
  '>out',
  '<in',
  '#comment',
  '-n',
  '--',
  'a=b',
  '=',
  '%s',
  'ünïcødé ✓',
  '\x01\x7f',
  'x'.repeat(10_000),
];

const SHELLS = ['/bin/sh', '/bin/bash', '/bin/dash'].filter((s) => existsSync(s));

test('shellQuote leaves safe words alone and single-quotes everything else', () => {
  assert.equal(shellQuote(['ip', '-n', 'lbb-ab12-lb0', 'addr', 'add', '198.18.1.2/24']), 'ip -n lbb-ab12-lb0 addr add 198.18.1.2/24');
  assert.equal(shellQuote(['a=b', 'k:v,w', '@x', '%y', '+z']), 'a=b k:v,w @x %y +z');
  assert.equal(shellQuote(['']), "''");
  assert.equal(shellQuote(['a b']), "'a b'");
  assert.equal(shellQuote(["it's"]), `'it'\\''s'`);
  assert.equal(shellQuote(['~']), "'~'", 'no tilde expansion');
  assert.equal(shellQuote([]), '');
  assert.throws(() => shellQuote(['a\0b']), /NUL/);
});

for (const sh of SHELLS) {
  test(`shellQuote round-trips nasty arguments through ${sh}`, () => {
    const out = execFileSync(sh, ['-c', `printf '%s\\0' ${shellQuote(NASTY)}`], { encoding: 'utf8', cwd: '/' });
    assert.deepEqual(out.split('\0').slice(0, -1), NASTY);
  });

  test(`remoteCommand through ${sh}: PID marker first, env exported, argv exec'd intact`, () => {
    const env = { PLAIN: 'x', QUOTED: "it's $HOME `x`", EMPTY: '', NL: 'a\nb' };
    const cmd = remoteCommand(['sh', '-c', 'echo "$$"; printf "%s|" "$PLAIN" "$QUOTED" "$EMPTY" "$NL" "$@"', 'sh', ...NASTY.slice(0, 20)], env);
    const out = execFileSync(sh, ['-c', cmd], { encoding: 'utf8', cwd: '/' });
    const lines = out.split('\n');
    assert.match(lines[0]!, /^lbbench-pid=\d+$/);
    assert.equal(lines[0], `lbbench-pid=${lines[1]}`, 'exec kept the PID we reported');
    assert.equal(lines.slice(2).join('\n'), ['x', "it's $HOME `x`", '', 'a\nb', ...NASTY.slice(0, 20)].join('|') + '|');
  });
}

test('remoteCommand refuses env names the shell would misread', () => {
  assert.throws(() => remoteCommand(['true'], { 'A-B': 'x' }), /invalid environment variable name/);
  assert.throws(() => remoteCommand(['true'], { '1A': 'x' }), /invalid/);
  assert.throws(() => remoteCommand(['true'], { 'A;id': 'x' }), /invalid/);
  assert.throws(() => remoteCommand([]), /empty argv/);
  assert.equal(remoteCommand(['echo', 'a b'], { A_1: 'v' }), "echo lbbench-pid=$$; export A_1=v; exec echo 'a b'");
});
