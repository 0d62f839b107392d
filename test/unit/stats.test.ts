import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cv, max, mean, median, min, quantile, stdev } from '../../harness/stats/descriptive.ts';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} ≉ ${b}`);

test('median of odd and even counts, unsorted input', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
});

test('mean, min, max', () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  assert.equal(min([5, -2, 9]), -2);
  assert.equal(max([5, -2, 9]), 9);
});

test('stdev is the sample (n − 1) standard deviation', () => {
  // var = ((2-5)^2+(4-5)^2+(4-5)^2+(4-5)^2+(5-5)^2+(5-5)^2+(7-5)^2+(9-5)^2) / 7 = 32/7
  close(stdev([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7));
  assert.equal(stdev([3, 3, 3]), 0);
});

test('coefficient of variation is stdev / mean', () => {
  close(cv([10, 20, 30]), 10 / 20);
  close(cv([-10, -20, -30]), 0.5);
  assert.ok(Number.isNaN(cv([0, 0, 0])), 'undefined for a zero mean');
});

test('quantile interpolates linearly between closest ranks (R type 7)', () => {
  const xs = [10, 20, 30, 40, 50];
  assert.equal(quantile(xs, 0), 10);
  assert.equal(quantile(xs, 1), 50);
  assert.equal(quantile(xs, 0.5), 30);
  assert.equal(quantile(xs, 0.25), 20);
  close(quantile(xs, 0.9), 46);
  close(quantile([1, 2, 3, 4], 0.75), 3.25); // numpy.quantile([1,2,3,4], .75)
  assert.throws(() => quantile(xs, 1.5), RangeError);
  assert.throws(() => quantile(xs, Number.NaN), RangeError);
});

test('empty input gives NaN, never a zero that looks like a measurement', () => {
  for (const f of [median, mean, min, max, stdev, cv]) assert.ok(Number.isNaN(f([])), f.name);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('a single value has no spread', () => {
  assert.ok(Number.isNaN(stdev([5])));
  assert.ok(Number.isNaN(cv([5])));
});

test('non-finite values are ignored', () => {
  assert.equal(median([1, Number.NaN, 3]), 2);
  assert.equal(max([1, Number.POSITIVE_INFINITY, 3]), 3);
});

test('inputs are not mutated', () => {
  const xs = [3, 1, 2];
  quantile(xs, 0.5);
  assert.deepEqual(xs, [3, 1, 2]);
});
