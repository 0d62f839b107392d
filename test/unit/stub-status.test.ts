// nginx stub_status, fed pages recorded from a real nginx 1.22 (test/fixtures/nginx, recorded by
// test/fixtures/wrk/record.sh). Broken variants are cut from the real pages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ParseError } from '../../harness/errors.ts';
import { parseStubStatus } from '../../harness/topology/stub-status.ts';

const read = (name: string) => readFileSync(new URL(`../fixtures/nginx/${name}`, import.meta.url), 'utf8');
const fresh = read('stub_status-fresh.txt');
const afterLoad = read('stub_status-after-load.txt');

test('fresh nginx', () => {
  assert.deepEqual(parseStubStatus(fresh), {
    active: 1, accepts: 2, handled: 2, requests: 2, reading: 0, writing: 1, waiting: 0,
  });
});

test('after the recorded wrk runs', () => {
  assert.deepEqual(parseStubStatus(afterLoad), {
    active: 1, accepts: 763, handled: 763, requests: 725470, reading: 0, writing: 1, waiting: 0,
  });
});

test('CRLF line endings (a page fetched through a proxy) parse the same', () => {
  assert.deepEqual(parseStubStatus(afterLoad.replaceAll('\n', '\r\n')), parseStubStatus(afterLoad));
});

test('every truncation of a real page is a ParseError', () => {
  for (const page of [fresh, afterLoad]) {
    for (let cut = 0; cut < page.length; cut++) {
      assert.throws(() => parseStubStatus(page.slice(0, cut)), ParseError, `cut at ${cut}: ${JSON.stringify(page.slice(0, cut))}`);
    }
  }
});

test('other pages nginx serves are ParseErrors, with an excerpt', () => {
  for (const name of ['stub_status-wrong-path.html', 'plain-body.txt', 'nginx-version.txt']) {
    assert.throws(() => parseStubStatus(read(name)), (e: unknown) => {
      assert.ok(e instanceof ParseError, name);
      assert.equal(e.tool, 'nginx stub_status');
      assert.match(e.message, /not a complete stub_status page/);
      assert.ok(e.excerpt.length > 0 && e.excerpt.length <= 201);
      return true;
    });
  }
});

test('garbled variants of a real page are ParseErrors', () => {
  const variants: [string, string][] = [
    ['letter in a counter', afterLoad.replace('725470', '7254x0')],
    ['negative counter', afterLoad.replace(' 763 763', ' -763 763')],
    ['missing counter', afterLoad.replace(' 763 763 725470', ' 763 725470')],
    ['fractional counter', afterLoad.replace('725470', '725.470')],
    ['lines swapped', afterLoad.split('\n').reverse().join('\n')],
    ['two pages', afterLoad + afterLoad],
    ['leading junk', `x${afterLoad}`],
    ['header renamed', afterLoad.replace('server accepts', 'server accepted')],
    ['huge counter', afterLoad.replace('725470', '99999999999999999999')],
    ['wrk output', readFileSync(new URL('../fixtures/wrk/c8-t1.stdout', import.meta.url), 'utf8')],
    ['empty', ''],
  ];
  for (const [what, text] of variants) {
    assert.notEqual(text, afterLoad, what);
    assert.throws(() => parseStubStatus(text), ParseError, what);
  }
});
