// The command line. One top-level catch maps the error model to exit codes; user errors print
// a message and a hint, never a stack trace.
import { resolve } from 'node:path';
import { rm } from 'node:fs/promises';
import yargs, { type Argv } from 'yargs';
import { ConfigError, Interrupted, LbbError, RegressionDetected, ThresholdsFailed } from './errors.ts';
import { checkThresholds, parseThreshold, type Threshold } from './compare/thresholds.ts';
import { compareReport, DEFAULT_COMPARE } from './compare/compare.ts';
import { publishSite } from './publish/site.ts';
import { fmtValue, formatJson, formatMarkdown, formatTable, type CompareReport } from './compare/format.ts';
import { Duration, type Scenario } from './scenario/schema.ts';
import { loadScenario, loadTopology } from './scenario/load.ts';
import { describePlan, plan } from './scenario/plan.ts';
import { scenarioJsonSchema } from './scenario/jsonschema.ts';
import { runScenario, selectPoints } from './run/runner.ts';
import { bringUp, upInstructions } from './run/up.ts';
import { reportFromResultDir, summaryTable } from './report/index.ts';
import { readResult } from './results/reader.ts';
import { resultJsonSchema } from './results/schema.ts';
import { LocalHost, setDetachedSpawns } from './host/local.ts';
import { deleteNamespaces, listNamespaces } from './topology/netns.ts';
import { findLeftovers } from './topology/leftovers.ts';
import { doctor, doctorBaremetal, PACKAGES, setup, TEST_PACKAGES } from './setup.ts';
import { buildNfqueue } from './lb/nfqueue.ts';
import { buildXdp } from './lb/xdp.ts';
import { ensureImage, imageDirFor, readImage } from '../vm-images/build.ts';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
};

/** SIGINT/SIGTERM/SIGHUP all become one abort: the runner's single shutdown path. */
function interruptible(io: Io): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
    const h = () => {
      if (ac.signal.aborted) {
        io.err(`${sig} again: still tearing down, please wait`);
        return;
      }
      io.err(`\n${sig}: stopping, tearing down, keeping results so far…`);
      ac.abort(sig);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return { signal: ac.signal, dispose: () => handlers.forEach(([s, h]) => process.off(s, h)) };
}

function applyOverrides(s: Scenario, a: { duration?: string; repetitions?: number; warmup?: string }): Scenario {
  const out = structuredClone(s);
  const dur = (flag: string, v: string) => {
    const r = Duration.safeParse(/^\d+(\.\d+)?$/.test(v) ? Number(v) : v);
    if (!r.success) throw new ConfigError(`--${flag} ${v}: expected a duration like "5s", "500ms" or "2m"`);
    return r.data;
  };
  if (a.duration !== undefined) out.load.duration = dur('duration', a.duration);
  if (a.warmup !== undefined) out.load.warmup = dur('warmup', a.warmup);
  if (a.repetitions !== undefined) {
    if (!Number.isInteger(a.repetitions) || a.repetitions < 1) throw new ConfigError(`--repetitions ${a.repetitions}: expected a whole number ≥ 1`);
    out.repetitions = a.repetitions;
  }
  return out;
}

function buildParser(argv: string[], io: Io, setExit: (code: number) => void): Argv {
  return yargs(argv)
    .scriptName('lbbench')
    .usage('$0 <command> [options]\n\nBenchmark and compare software load balancers.')
    .command(
      'run <scenario>',
      'run a scenario: provision, load every LB, write results and a report',
      (y) =>
        y
          .positional('scenario', { type: 'string', demandOption: true, describe: 'scenario YAML file' })
          .option('out', { type: 'string', describe: 'results root (results/<run-id>/ goes under it)' })
          .option('reports', { type: 'string', default: 'reports', describe: 'reports root' })
          .option('duration', { type: 'string', describe: 'override load.duration (e.g. 2s)' })
          .option('warmup', { type: 'string', describe: 'override load.warmup (e.g. 0.5s)' })
          .option('repetitions', { type: 'number', describe: 'override repetitions' })
          .option('lb', { type: 'string', array: true, describe: 'only these LB kinds or names (repeatable)' })
          .option('dry-run', { type: 'boolean', default: false, describe: 'validate and print the plan only' }),
      async (a) => {
        const scenario = applyOverrides(await loadScenario(a.scenario), a);
        const points = selectPoints(plan(scenario), a.lb);
        if (a.dryRun) {
          io.out(describePlan(points.map((p) => ({ ...p, repetitions: scenario.repetitions }))));
          return;
        }
        io.out(describePlan(points));
        const { signal, dispose } = interruptible(io);
        let outcome;
        try {
          outcome = await runScenario({ scenario, outRoot: a.out, only: a.lb, signal, log: io.out });
        } catch (e) {
          // The result on disk is partial but valid: render what there is before reporting the error.
          const dir = (e as { resultDir?: string }).resultDir;
          if (dir) await reportFromResultDir(dir, resolve(a.reports)).catch(() => {});
          throw e;
        } finally {
          dispose();
        }
        const report = await reportFromResultDir(outcome.resultDir, resolve(a.reports));
        io.out('');
        io.out(summaryTable(outcome.result));
        io.out('');
        io.out(`result: ${outcome.resultDir}/result.json`);
        io.out(`report: ${report}`);
        // Skipped LBs were asked for (`unavailable: skip`); only real failures fail the command.
        if (outcome.result.points.some((p) => p.error && !p.skipped)) setExit(6);
        const thresholds = scenario.thresholds.map((t) => parseThreshold(t) as Threshold);
        const failed = checkThresholds(outcome.result, thresholds).filter((t) => !t.ok);
        if (thresholds.length) io.out(failed.length ? `thresholds: ${failed.length} violated` : `thresholds: all ${thresholds.length} hold at every point`);
        for (const f of failed) io.out(`  ✗ ${f.point}: ${f.expr} (median ${fmtValue(f.actual)})`);
        // A violated threshold is the verdict CI asks for; it outranks failed points' exit 6.
        if (failed.length) setExit(new ThresholdsFailed('').exitCode);
      },
    )
    .command(
      'report <result>',
      're-render the HTML report from a result directory or result.json',
      (y) =>
        y
          .positional('result', { type: 'string', demandOption: true })
          .option('out', { type: 'string', default: 'reports', describe: 'reports root' }),
      async (a) => {
        const path = await reportFromResultDir(a.result, resolve(a.out));
        io.out(summaryTable(await readResult(a.result)));
        io.out(`report: ${path}`);
      },
    )
    .command(
      'up <scenario>',
      'build the topology and one LB and keep them for manual experiments',
      (y) =>
        y
          .positional('scenario', { type: 'string', demandOption: true })
          .option('lb', { type: 'string', describe: 'LB kind or name (default: the first one)' })
          .option('backends', { type: 'number', describe: 'number of backends (default: largest in the sweep)' })
          .option('detach', { type: 'boolean', default: false, describe: 'exit and leave it running; remove with `lbbench down`' }),
      async (a) => {
        const scenario = await loadScenario(a.scenario);
        setDetachedSpawns(a.detach);
        const up = await bringUp(scenario, { lb: a.lb, backends: a.backends, log: io.out });
        io.out(upInstructions(up));
        if (a.detach) {
          io.out('left running; remove with: lbbench down');
          return;
        }
        io.out('press Ctrl-C to tear down');
        const { signal, dispose } = interruptible(io);
        await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
        dispose();
        await up.teardown.unwind((l) => io.out(`teardown: ${l}`));
      },
    )
    .command(
      'down',
      'remove what `up --detach` left and leftovers of crashed runs (namespaces lbb-*, their processes, work dirs); runs still in progress are kept',
      (y) =>
        y
          .option('dry-run', { type: 'boolean', default: false, describe: 'list what would be removed' })
          .option('force', { type: 'boolean', default: false, describe: 'also remove runs whose lbbench process is still alive' }),
      async (a) => {
        const root = new LocalHost();
        const groups = await findLeftovers(await listNamespaces(root));
        const kept = groups.filter((g) => g.liveOwner && !a.force);
        const doomed = groups.filter((g) => !kept.includes(g));
        for (const g of kept) {
          io.out(`keeping ${g.prefix}* (${g.namespaces.length} namespaces): in use by pid ${g.liveOwner!.pid} (lbbench ${g.liveOwner!.command}); --force removes it`);
        }
        const names = doomed.flatMap((g) => g.namespaces);
        const dirs = doomed.flatMap((g) => (g.workDir ? [g.workDir] : []));
        if (a.dryRun) {
          io.out([`would remove namespaces: ${names.join(' ') || 'none'}`, `would remove work dirs: ${dirs.join(' ') || 'none'}`].join('\n'));
          return;
        }
        await deleteNamespaces(root, names);
        await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
        io.out(`removed ${names.length} namespaces and ${dirs.length} work dirs`);
      },
    )
    .command(
      'setup',
      'apt-get install the system tools lbbench needs (idempotent)',
      { tests: { type: 'boolean', default: false, describe: 'also what the test suite needs (openssh-server: starts a system sshd where systemd runs)' } },
      async (a) => {
        const host = new LocalHost();
        const installed = await setup(host, io.out, a.tests ? TEST_PACKAGES : PACKAGES);
        io.out(installed.length ? `installed ${installed.join(' ')}` : 'packages: nothing to do');
        // Our own datapaths are compiled here, against this host's headers (make rebuilds only on change).
        io.out(`built ${await buildNfqueue(host)}`);
        io.out(`built ${await buildXdp(host)}`);
      },
    )
    .command(
      'doctor',
      'check root, kernel features and tools, with the fix for each problem',
      { topology: { type: 'string', describe: 'also check every host of this topology file (bare-metal: over SSH)' } },
      async (a) => {
        const checks = await doctor(new LocalHost());
        if (a.topology) {
          const t = await loadTopology(a.topology);
          if (t.kind === 'baremetal') checks.push(...(await doctorBaremetal(t)));
        }
        for (const c of checks) io.out(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}${!c.ok && c.fix ? `\n     fix: ${c.fix}` : ''}`);
        const bad = checks.filter((c) => !c.ok).length;
        io.out(bad ? `${bad} problem(s)` : 'all good');
        if (bad) setExit(3);
      },
    )
    .command(
      'vm-image <action>',
      'the Debian guest image qemu topologies boot: `build` it (cached per recipe) or print its `path`',
      (y) =>
        y
          .positional('action', { choices: ['build', 'path'] as const, demandOption: true })
          .option('force', { type: 'boolean', default: false, describe: 'build: rebuild even if the cached image is current' }),
      async (a) => {
          if (a.action === 'path') {
            const { dir, hash } = await imageDirFor();
            const img = await readImage(dir);
            io.out(img ? dir : `${dir} (recipe ${hash}: not built yet; run: lbbench vm-image build)`);
            if (!img) setExit(3);
            return;
          }
          const img = await ensureImage(io.out, { rebuild: a.force });
          io.out(`${img.dir} (kernel ${img.kernelVersion}, built ${img.builtAt})`);
      },
    )
    .command(
      'compare-reports <base> <candidates..>',
      'compare a candidate run (or several) with a base run: improved / regressed / no change, per LB, params and metric',
      (y) =>
        y
          .positional('base', { type: 'string', demandOption: true, describe: 'base result directory or result.json' })
          .positional('candidates', { type: 'string', array: true, demandOption: true, describe: 'candidate result directories or files' })
          .option('format', { choices: ['table', 'markdown', 'json'] as const, default: 'table' as const, describe: 'output format' })
          .option('threshold', { type: 'number', default: DEFAULT_COMPARE.threshold, describe: 'noise band as a fraction: changes within it are "no change"' })
          .option('alpha', { type: 'number', default: DEFAULT_COMPARE.alpha, describe: 'significance level (after Holm correction)' })
          .option('seed', { type: 'number', default: DEFAULT_COMPARE.seed, describe: 'bootstrap seed (results are reproducible)' })
          .option('html', { type: 'string', describe: 'also write the comparison pages (both runs overlaid) as a static site in this directory' }),
      async (a) => {
        checkCompareFlags(a);
        const base = await readResult(a.base);
        let regressed = false;
        // The pages show the same comparisons, labelled by run id: the bootstrap runs once.
        const reports = new Map<string, CompareReport>();
        for (const path of a.candidates) {
          const cand = await readResult(path);
          const report = compareReport({ label: a.base, result: base }, { label: path, result: cand }, { ...DEFAULT_COMPARE, threshold: a.threshold, alpha: a.alpha, seed: a.seed });
          io.out(a.format === 'json' ? formatJson(report) : a.format === 'markdown' ? formatMarkdown(report) : formatTable(report));
          regressed ||= report.verdict === 'regressed';
          reports.set(`${base.runId}--${cand.runId}`, { ...report, base: base.runId, candidate: cand.runId });
        }
        if (a.html) {
          const site = await publishSite([a.base, ...a.candidates], { out: a.html, baseline: base.runId, compare: { threshold: a.threshold, alpha: a.alpha, seed: a.seed }, reports });
          for (const c of site.comparisons) if (c.file) io.err(`comparison page: ${c.file}`);
        }
        if (regressed) setExit(new RegressionDetected('').exitCode);
      },
    )
    .command(
      'publish <results..>',
      'build a static, offline HTML site of runs: an index, a page per run and per comparison (each run vs the previous run of its scenario)',
      (y) =>
        y
          .positional('results', { type: 'string', array: true, demandOption: true, describe: 'results/, run directories or result.json files' })
          .option('out', { type: 'string', default: 'site', describe: 'output directory' })
          .option('baseline', { type: 'string', describe: 'compare every run of its scenario with this run id instead of with the previous run' })
          .option('threshold', { type: 'number', default: DEFAULT_COMPARE.threshold, describe: 'noise band of the comparisons' })
          .option('alpha', { type: 'number', default: DEFAULT_COMPARE.alpha, describe: 'significance level of the comparisons' })
          .option('seed', { type: 'number', default: DEFAULT_COMPARE.seed, describe: 'bootstrap seed' }),
      async (a) => {
        checkCompareFlags(a);
        const site = await publishSite(a.results, { out: a.out, baseline: a.baseline, compare: { threshold: a.threshold, alpha: a.alpha, seed: a.seed }, log: io.out });
        io.out(`${site.runs.length} runs, ${site.comparisons.length} comparisons: ${site.index}`);
      },
    )
    .command(
      'schema',
      'print the JSON schema of scenario files (or, with --result, of result.json)',
      (y) => y.option('result', { type: 'boolean', default: false, describe: 'the schema of results/<run-id>/result.json' }),
      (a) => {
        io.out(JSON.stringify(a.result ? resultJsonSchema() : scenarioJsonSchema(), null, 2));
      },
    )
    .demandCommand(1, 'name a command; see lbbench --help')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      if (err) throw err;
      throw new ConfigError(msg, [], 'see lbbench --help');
    });
}

function checkCompareFlags(a: { threshold: number; alpha: number }): void {
  if (!(a.threshold >= 0 && a.threshold < 1)) throw new ConfigError(`--threshold ${a.threshold}: expected a fraction such as 0.05 (5%)`);
  if (!(a.alpha > 0 && a.alpha < 1)) throw new ConfigError(`--alpha ${a.alpha}: expected a probability such as 0.05`);
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  let exit = 0;
  try {
    const parser = buildParser(argv, io, (c) => (exit = c));
    let helpText = '';
    await parser.parseAsync(argv, {}, (_err, _argv, output) => {
      helpText = output;
    });
    if (helpText) io.out(helpText);
    return exit;
  } catch (e) {
    return reportError(e, io);
  }
}

export function reportError(e: unknown, io: Io): number {
  if (e instanceof LbbError) {
    io.err(`error: ${e.message}`);
    if (e instanceof ConfigError) for (const p of e.problems) io.err(`  ${p}`);
    if (e.hint) io.err(`hint: ${e.hint}`);
    return e instanceof Interrupted ? 130 : e.exitCode;
  }
  io.err(`internal error (a bug in lbbench, please report it):`);
  io.err(e instanceof Error ? (e.stack ?? e.message) : String(e));
  return 1;
}
