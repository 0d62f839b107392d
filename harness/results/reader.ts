// Reads result files written by any lbbench version: older formats are upgraded step by step to
// FORMAT_VERSION, newer ones are refused (guessing at fields we don't know would render nonsense).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { FORMAT_VERSION, type RunResult } from './types.ts';
import { resultProblems } from './schema.ts';

export const RESULT_FILE = 'result.json';

/**
 * One step per format version: UPGRADES[n] turns a version-n object into version n+1 (and sets
 * formatVersion). There are none yet; when FORMAT_VERSION becomes 2, add `1: (r) => ({...})` and
 * keep a version-1 file under test/fixtures/results/ so the step stays tested.
 */
type Upgrade = (old: Record<string, unknown>) => Record<string, unknown>;
const UPGRADES: Record<number, Upgrade> = {};

export function upgradeResult(
  obj: Record<string, unknown>,
  file: string,
  upgrades: Record<number, Upgrade> = UPGRADES,
  target: number = FORMAT_VERSION,
): Record<string, unknown> {
  let cur = obj;
  let v = cur.formatVersion as number;
  while (v < target) {
    const step = upgrades[v];
    if (!step) {
      throw new ConfigError(
        `${file}: result format version ${v} is no longer readable by this lbbench (format ${target})`,
        [],
        'use the lbbench release that wrote it to re-export, or re-run the scenario',
      );
    }
    cur = step(cur);
    const next = cur.formatVersion;
    if (next !== v + 1) throw new Error(`result upgrade ${v} → ${v + 1} set formatVersion ${String(next)}`);
    v = next;
  }
  return cur;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads `dir/result.json` or the given result.json path. Throws ConfigError naming the file. */
export async function readResult(dirOrFile: string): Promise<RunResult> {
  let file = dirOrFile;
  try {
    if ((await stat(dirOrFile)).isDirectory()) file = join(dirOrFile, RESULT_FILE);
  } catch {
    throw new ConfigError(`${dirOrFile}: no such result directory or file`, [], 'pass results/<run-id> or its result.json');
  }

  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(
      `${file}: cannot read result file (${code ?? String(e)})`,
      [],
      code === 'ENOENT' ? 'the run may have failed before writing results; pass results/<run-id>' : undefined,
    );
  }

  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(
      `${file}: not valid JSON (${(e as Error).message})`,
      [],
      'the file is damaged or was not written by lbbench; result.json is replaced atomically, so look for a stray result.json.tmp-* next to it',
    );
  }
  if (!isObj(obj)) throw new ConfigError(`${file}: expected a JSON object`);

  const v = obj.formatVersion;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new ConfigError(`${file}: missing or invalid formatVersion; not an lbbench result file`);
  }
  if (v > FORMAT_VERSION) {
    throw new ConfigError(
      `${file}: result format version ${v} is newer than this lbbench understands (${FORMAT_VERSION})`,
      [],
      'upgrade lbbench to read it',
    );
  }

  const upgraded = upgradeResult(obj, file);
  const problems = resultProblems(upgraded);
  if (problems.length) {
    throw new ConfigError(
      `${file}: not a valid lbbench result (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
      problems.map((p) => `${file}: ${p}`),
    );
  }
  return upgraded as unknown as RunResult;
}
