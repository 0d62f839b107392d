// Glue between a load driver's pure halves and a Host: the only place a generator process runs.
import { ParseError } from '../errors.ts';
import type { Host } from '../host/types.ts';
import type { GeneratorMetrics, LoadDriver, LoadOutput, LoadRunSpec } from './types.ts';

/** Slack on top of duration + request timeout before the generator is killed. */
const TIMEOUT_SLACK_S = 15;

/** A generator's output could not be parsed; `output` is kept so the runner can store it. */
export class LoadParseError extends ParseError {
  constructor(
    readonly output: LoadOutput,
    cause: ParseError,
    note = '',
  ) {
    const prefix = `${cause.tool}: `;
    const msg = cause.message.startsWith(prefix) ? cause.message.slice(prefix.length) : cause.message;
    super(`${msg}${note}`, cause.tool, cause.excerpt, cause.hint);
    this.cause = cause;
  }
}

export interface RunLoadOptions {
  /** Aborting stops the generator (SIGTERM, then SIGKILL) and rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * prepare → run (bounded by duration + timeout + 15 s) → parse. A non-zero exit is not an error by
 * itself: the parser decides from what wrk printed (wrk exits 1 with only a stderr line when it
 * cannot connect). Spawned rather than exec'd so an abort can stop the process.
 */
export async function runLoad<M extends GeneratorMetrics>(
  host: Host,
  driver: LoadDriver<M>,
  spec: LoadRunSpec,
  opts: RunLoadOptions = {},
): Promise<{ metrics: M; output: LoadOutput }> {
  const { signal } = opts;
  signal?.throwIfAborted();
  await driver.prepare(host, spec);
  const argv = driver.buildArgv(spec);
  const boundS = Math.ceil(spec.durationS) + Math.ceil(spec.load.timeout) + TIMEOUT_SLACK_S + (driver.extraBoundS ?? 0);
  signal?.throwIfAborted();

  const proc = host.spawn(argv, { timeoutMs: boundS * 1000 });
  const onAbort = () => void proc.stop();
  signal?.addEventListener('abort', onAbort, { once: true });
  let r: Awaited<typeof proc.exited>;
  try {
    r = await proc.exited;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  signal?.throwIfAborted();

  const output: LoadOutput = { argv, stdout: r.stdout, stderr: r.stderr, code: r.code };
  try {
    return { metrics: driver.parse(r.stdout, r.stderr), output };
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    const note = r.signal
      ? ` (${argv[0]} killed by ${r.signal}; bounded at ${boundS} s)`
      : r.code !== 0
        ? ` (exit ${r.code})`
        : '';
    throw new LoadParseError(output, e, note);
  }
}
