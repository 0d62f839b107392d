// The small error model: every error a user can cause or fix carries a hint and maps to a distinct
// exit code in the one top-level catch (cli.ts). Anything else is a bug and keeps its stack.

export abstract class LbbError extends Error {
  abstract readonly exitCode: number;
  constructor(message: string, readonly hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad scenario/topology/CLI input. `problems` are complete `file:line:col: path: message` lines. */
export class ConfigError extends LbbError {
  readonly exitCode = 2;
  constructor(message: string, readonly problems: string[] = [], hint?: string) {
    super(message, hint);
  }
}

/** A tool, kernel feature or privilege is missing; the hint is the exact fix. */
export class PreflightError extends LbbError {
  readonly exitCode = 3;
}

/** Building the topology or deploying a load balancer failed. */
export class ProvisionError extends LbbError {
  readonly exitCode = 4;
}

/** Tool output could not be parsed. Never turned into a zero sample. */
export class ParseError extends LbbError {
  readonly exitCode = 5;
  constructor(message: string, readonly tool: string, readonly excerpt = '', hint?: string) {
    super(`${tool}: ${message}`, hint);
  }
}

/** A command run on a Host failed (non-zero exit, timeout, signal). */
export class CommandError extends LbbError {
  readonly exitCode = 4;
  constructor(
    readonly host: string,
    readonly argv: string[],
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
    readonly timedOut = false,
  ) {
    const what = timedOut ? 'timed out' : `exited with ${code}`;
    const tail = (stderr || stdout).trim().split('\n').slice(-5).join('\n');
    super(`[${host}] ${argv.join(' ')} ${what}${tail ? `:\n${tail}` : ''}`);
  }
}

/** The run was interrupted by a signal; teardown has run, results so far are kept. */
export class Interrupted extends LbbError {
  readonly exitCode = 130;
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
  }
}

/** compare-reports found a regression (used by CI gates). */
export class RegressionDetected extends LbbError {
  readonly exitCode = 10;
}

/** A scenario threshold was violated. k6 uses 99 for the same thing. */
export class ThresholdsFailed extends LbbError {
  readonly exitCode = 99;
}
