// Writes results/<run-id>/ while the run goes on. result.json is rewritten in full after every
// recorded fact (repetition, describe, error) and swapped in with rename(2), so a reader — or a
// crash — only ever sees a complete file: a crash loses at most the repetition being measured.
import { mkdir, open, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, LbbError } from '../errors.ts';
import { toCsv } from './csv.ts';
import { RESULT_FILE } from './reader.ts';
import {
  FORMAT_VERSION,
  type PointResult,
  type Repetition,
  type RunResult,
  type RunStatus,
} from './types.ts';

/**
 * What identifies a point; every call takes it, so the runner needn't "open" points in order.
 * `params` is looser than PointResult's index-signature type so a planner's own `interface` of
 * params (which TS never treats as indexable) can be passed as is.
 */
export interface PointMeta {
  id: string;
  lb: PointResult['lb'];
  params: { backends: number };
}

export type RunInit = Omit<RunResult, 'points' | 'status' | 'formatVersion'>;

export interface WriterOptions {
  /** Injected clock for tests; finishedAt comes from it. */
  now?: () => Date;
}

export const RAW_DIR = 'raw';
export const CSV_FILE = 'samples.csv';

/** Point ids hold "/" and "="; file names get a conservative alphabet. */
export function sanitizeId(id: string): string {
  const s = id.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '');
  return s || 'point';
}

function errorText(e: unknown): string {
  if (e instanceof LbbError && e.hint) return `${e.message}\nhint: ${e.hint}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

function shellQuote(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** The raw file is for humans reading it next to the tool's docs: argv first, streams labelled. */
function rawText(pointId: string, rep: Repetition): string {
  return [
    `# point: ${pointId}`,
    `# repetition: ${rep.index}`,
    `# started: ${rep.startedAt}`,
    `# tool: ${rep.raw.tool}`,
    `# argv: ${rep.raw.argv.map(shellQuote).join(' ')}`,
    '--- stdout ---',
    rep.raw.stdout,
    '--- stderr ---',
    rep.raw.stderr,
    '',
  ].join('\n');
}

/** Write to a temp file, fsync, rename over the target: readers see the old or the new file. */
async function writeAtomic(path: string, data: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export class ResultWriter {
  private readonly result: RunResult;
  private readonly now: () => Date;
  /** Writes are chained so two overlapping calls can't rename an older state over a newer one. */
  private pending: Promise<void> = Promise.resolve();
  private readonly rawNames = new Map<string, string>();
  private finished = false;

  private constructor(readonly dir: string, result: RunResult, opts: WriterOptions) {
    this.result = result;
    this.now = opts.now ?? (() => new Date());
  }

  /** Creates `dir` and `dir/raw/` and writes result.json with status "running". */
  static async create(dir: string, init: RunInit, opts: WriterOptions = {}): Promise<ResultWriter> {
    const existing = await stat(join(dir, RESULT_FILE)).catch(() => undefined);
    if (existing) {
      throw new ConfigError(
        `${join(dir, RESULT_FILE)} already exists; refusing to overwrite an earlier run`,
        [],
        'use a new run id or another output directory',
      );
    }
    await mkdir(join(dir, RAW_DIR), { recursive: true });
    const result: RunResult = {
      formatVersion: FORMAT_VERSION,
      ...structuredClone(init),
      status: 'running',
      points: [],
    };
    const w = new ResultWriter(dir, result, opts);
    await w.flush();
    return w;
  }

  get file(): string {
    return join(this.dir, RESULT_FILE);
  }

  /** A copy of what has been recorded so far (the runner prints summaries from it). */
  snapshot(): RunResult {
    return structuredClone(this.result);
  }

  /** Records the point with no repetitions yet, so a point that dies in apply() still shows. */
  async startPoint(meta: PointMeta): Promise<void> {
    this.point(meta);
    await this.flush();
  }

  /**
   * Stores one repetition: the tool output goes to raw/<point>-rep<N>.txt (path kept in
   * rep.raw.file, relative to the result dir) and stays in result.json as well. Returns the
   * stored copy.
   */
  async addRepetition(meta: PointMeta, rep: Repetition): Promise<Repetition> {
    const p = this.point(meta);
    if (p.repetitions.some((r) => r.index === rep.index)) {
      throw new Error(`point ${meta.id}: repetition ${rep.index} recorded twice`);
    }
    const stored = structuredClone(rep);
    const rel = `${RAW_DIR}/${this.rawName(meta.id)}-rep${rep.index}.txt`;
    stored.raw.file = rel;
    await this.chain(() => writeAtomic(join(this.dir, rel), rawText(meta.id, stored)));
    p.repetitions.push(stored);
    p.repetitions.sort((a, b) => a.index - b.index);
    await this.flush();
    return structuredClone(stored);
  }

  async setPointDescribe(meta: PointMeta, describe: { version: string; config: string }): Promise<void> {
    this.point(meta).lbDescribe = { ...describe };
    await this.flush();
  }

  async setPointTimings(meta: PointMeta, timings: Record<string, number[]>): Promise<void> {
    this.point(meta).datapathTimings = structuredClone(timings);
    await this.flush();
  }

  async setPointTuning(meta: PointMeta, tuning: NonNullable<PointResult['tuning']>): Promise<void> {
    this.point(meta).tuning = structuredClone(tuning);
    await this.flush();
  }

  async setPointNetwork(meta: PointMeta, network: NonNullable<PointResult['network']>): Promise<void> {
    this.point(meta).network = { ...network };
    await this.flush();
  }

  async setPointCpuPerMillion(meta: PointMeta, value: number): Promise<void> {
    this.point(meta).cpuPerMillion = value;
    await this.flush();
  }

  /** Marks the point failed; repetitions already recorded are kept. */
  async setPointError(meta: PointMeta, error: unknown, opts: { skipped?: boolean } = {}): Promise<void> {
    const p = this.point(meta);
    p.error = errorText(error);
    if (opts.skipped) p.skipped = true;
    await this.flush();
  }

  async setEnvironment(env: Record<string, unknown>): Promise<void> {
    this.assertOpen();
    this.result.environment = structuredClone(env);
    await this.flush();
  }

  /** Final status; also writes samples.csv. A run left at "running" on disk means it crashed. */
  async finish(status: Exclude<RunStatus, 'running'>, error?: unknown): Promise<void> {
    this.assertOpen();
    this.result.status = status;
    this.result.finishedAt = this.now().toISOString();
    if (error !== undefined) this.result.error = errorText(error);
    this.finished = true;
    const csv = toCsv(this.result);
    await this.chain(() => writeAtomic(join(this.dir, CSV_FILE), csv));
    await this.chain(() => this.writeJson());
  }

  private assertOpen(): void {
    if (this.finished) throw new Error(`result writer for ${this.dir} is already finished`);
  }

  private point(meta: PointMeta): PointResult {
    this.assertOpen();
    let p = this.result.points.find((x) => x.id === meta.id);
    if (!p) {
      const params = structuredClone(meta.params) as PointResult['params'];
      p = { id: meta.id, lb: structuredClone(meta.lb), params, repetitions: [] };
      this.result.points.push(p);
    }
    return p;
  }

  /** Distinct ids that sanitize alike ("a/b", "a=b") must not share raw files. */
  private rawName(id: string): string {
    let name = this.rawNames.get(id);
    if (name) return name;
    const base = sanitizeId(id);
    const taken = new Set(this.rawNames.values());
    name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}~${n}`;
    this.rawNames.set(id, name);
    return name;
  }

  private flush(): Promise<void> {
    return this.chain(() => this.writeJson());
  }

  private writeJson(): Promise<void> {
    return writeAtomic(this.file, `${JSON.stringify(this.result, null, 2)}\n`);
  }

  /** A failed write rejects its own caller but doesn't wedge the ones after it. */
  private chain(fn: () => Promise<void>): Promise<void> {
    const next = this.pending.catch(() => {}).then(fn);
    this.pending = next;
    return next;
  }
}
