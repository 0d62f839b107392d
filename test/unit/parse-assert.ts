import assert from 'node:assert/strict';
import { ParseError } from '../../harness/errors.ts';

/** Runs fn and returns the ParseError it must throw (anything else, or nothing, fails the test). */
export function throwsParse(fn: () => unknown, pattern?: RegExp): ParseError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ParseError, `expected ParseError, got ${String(caught)}`);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}
