// Maglev table population (Eisenbud et al., NSDI 2016, §3.4), computed in user space and written
// into a datapath's lookup table. Pure: the same names and size give the same table everywhere,
// so a table can be checked, diffed against the running one, and reproduced from a result file.

/** Entry value for "no backend" (only when the backend list is empty). */
export const MAGLEV_EMPTY = -1;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

const utf8 = new TextEncoder();

/**
 * FNV-1a with murmur3's finaliser: FNV alone leaves names that differ in one trailing digit
 * ("be1", "be2") close together in the low bits, which `% size` keeps.
 */
export function nameHash(name: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const byte of utf8.encode(name)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

const OFFSET_SEED = 0x2545f491;
const SKIP_SEED = 0x6b43a9b5;

/**
 * The lookup table: entry i is an index into `backendNames`. Each backend gets ⌊size/n⌋ or
 * ⌈size/n⌉ entries, and removing one backend moves few entries between the others.
 *
 * Backends take turns in name order, not list order, so a table depends only on the set of names:
 * a scale event that lists the same backends in another order changes nothing on the datapath.
 * An empty list gives a table of MAGLEV_EMPTY.
 */
export function maglevTable(backendNames: string[], size: number): number[] {
  // A prime size makes every skip coprime with it, so each preference list is a permutation.
  if (!isPrime(size)) throw new RangeError(`maglev table size must be a prime, got ${size}`);
  if (new Set(backendNames).size !== backendNames.length) {
    throw new RangeError(`maglev backend names must be unique: ${backendNames.join(', ')}`);
  }
  if (backendNames.length > size) {
    throw new RangeError(`maglev table of ${size} entries cannot hold ${backendNames.length} backends`);
  }
  const table: number[] = new Array(size).fill(MAGLEV_EMPTY);
  const n = backendNames.length;
  if (!n) return table;

  const order = backendNames.map((_, i) => i).sort((a, b) => (backendNames[a]! < backendNames[b]! ? -1 : 1));
  // Preference lists are generated lazily (position + k·skip mod size) rather than stored: n × size
  // numbers would be 190 M for the largest table the schema allows.
  const pos = order.map((i) => nameHash(backendNames[i]!, OFFSET_SEED) % size);
  const skip = order.map((i) => (nameHash(backendNames[i]!, SKIP_SEED) % (size - 1)) + 1);
  let filled = 0;
  for (;;) {
    for (let k = 0; k < n; k++) {
      let c = pos[k]!;
      while (table[c] !== MAGLEV_EMPTY) c = (c + skip[k]!) % size;
      table[c] = order[k]!;
      pos[k] = (c + skip[k]!) % size;
      if (++filled === size) return table;
    }
  }
}
