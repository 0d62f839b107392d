// Scenario and topology files: YAML → zod → a resolved Scenario, or one ConfigError that lists every
// problem at once as `file:line:col: path: message`, each message saying what to write instead.
// zod's own messages ("Invalid input") name neither the valid keys nor the YAML position, so issues
// are re-explained here from the schema itself and placed on the YAML node they concern.
import { readFile, readdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { eventFindings } from './events-check.ts';
import { tuningFindings } from './tuning-check.ts';
import { rawList, valueAt, type Finding, type Path } from './raw.ts';
import { loadDrivers } from '../load/index.ts';
import { getLbDriver, ipv6Refusal } from '../lb/index.ts';
import { parseThreshold } from '../compare/thresholds.ts';
import {
  Duration,
  LinkRate,
  LB_KINDS,
  LbSpec,
  LoadSpec,
  ScenarioSpec,
  SweepSpec,
  ipv6Fields,
  ownsNamespaces,
  topologyName,
  TopologySpec,
  type NamedLbSpec,
  type Scenario,
} from './schema.ts';

/** The checkout this file belongs to: where `topologies/<name>.yaml` is looked up by default. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface LoadOptions {
  /** Root holding `topologies/`; defaults to PROJECT_ROOT. */
  projectRoot?: string;
  /** Directory that relative topology paths start from; defaults to the scenario file's directory. */
  baseDir?: string;
  /** Recorded as `Scenario.file`. */
  file?: string;
}

/** Read, validate and resolve a scenario file. Throws ConfigError listing every problem. */
export async function loadScenario(file: string, opts: { projectRoot?: string } = {}): Promise<Scenario> {
  const abs = resolve(file);
  const text = await readSource(abs, file, 'scenario', async () => {
    const names = await yamlNames(join(opts.projectRoot ?? PROJECT_ROOT, 'scenarios'));
    return names.length ? `ready-made scenarios: ${names.map((n) => `scenarios/${n}.yaml`).join(', ')}` : undefined;
  });
  return parseScenarioText(text, file, { ...opts, baseDir: dirname(abs), file: abs });
}

/** Validate scenario YAML given as text; `fileLabel` is what problem lines start with. */
export async function parseScenarioText(text: string, fileLabel: string, opts: LoadOptions = {}): Promise<Scenario> {
  const parsed = parseSource(text, fileLabel, 'the file is empty; a scenario needs at least "name" and "loadBalancers"');
  if ('problems' in parsed) throw invalid('scenario', fileLabel, parsed.problems);
  const { src, data } = parsed;

  const result = ScenarioSpec.safeParse(data);
  const findings = result.success ? [] : explainAll(result.error.issues, ScenarioSpec, data);
  findings.push(...duplicateLbNames(data), ...duplicateSweepValues(data), ...fewerConnectionsThanThreads(data));

  const baseDir = opts.baseDir ?? dirname(resolve(fileLabel));
  const topo = await resolveTopology(data, opts.projectRoot ?? PROJECT_ROOT, baseDir);
  findings.push(...topo.findings, ...sweepBeyondTopology(data, topo), ...eventFindings(data, topo.spec), ...generatorFindings(data, topo.spec), ...thresholdFindings(data), ...tuningFindings(data), ...overlayFindings(data, topo.spec), ...floodFindings(data, topo.spec), ...standbyFindings(data, topo.spec), ...familyFindings(data, topo.spec));

  const problems = [...placeAll(src, findings), ...topo.problems];
  if (problems.length || !result.success || !topo.spec) throw invalid('scenario', fileLabel, problems);
  return assemble(result.data, topo.spec, opts.file);
}

/** Read and validate one topology file on its own. */
export async function loadTopology(file: string): Promise<TopologySpec> {
  const text = await readSource(resolve(file), file, 'topology');
  const { spec, problems } = validateTopologyText(text, file);
  if (!spec) throw invalid('topology', file, problems);
  return spec;
}

/** The label results use: the explicit name, else kind, plus the mode where a kind has modes. */
export function lbName(lb: LbSpec): string {
  if (lb.name !== undefined) return lb.name;
  return 'mode' in lb ? `${lb.kind}-${lb.mode}` : lb.kind;
}

// ---------------------------------------------------------------------------------------------
// Files and YAML

async function readSource(
  abs: string,
  label: string,
  what: string,
  hint?: () => Promise<string | undefined>,
): Promise<string> {
  try {
    return await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`${what} file not found: ${label}`, [], await hint?.());
    throw new ConfigError(`cannot read ${what} file ${label}: ${code ?? String(err)}`);
  }
}

async function yamlNames(dir: string): Promise<string[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  return entries
    .filter((f) => /\.ya?ml$/i.test(f))
    .map((f) => f.replace(/\.ya?ml$/i, ''))
    .sort();
}

interface Source {
  label: string;
  doc: Document.Parsed;
  lines: LineCounter;
}


interface Problem {
  file: string;
  line: number;
  col: number;
  path?: string;
  message: string;
}

function parseSource(text: string, label: string, emptyMessage: string): { src: Source; data: unknown } | { problems: Problem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length) {
    return {
      problems: doc.errors.map((e) => ({ file: label, ...lines.linePos(e.pos[0]), message: `YAML: ${e.message}` })),
    };
  }
  if (doc.contents === null) return { problems: [{ file: label, line: 1, col: 1, message: emptyMessage }] };
  try {
    return { src: { label, doc, lines }, data: doc.toJS({ maxAliasCount: 1000 }) };
  } catch (err) {
    return { problems: [{ file: label, line: 1, col: 1, message: `YAML: ${(err as Error).message}` }] };
  }
}

/** Walks the YAML tree along `path`; stops at the deepest node that exists (the parent of a missing key). */
function locate(src: Source, path: Path, at?: 'key'): { line: number; col: number } {
  let node: unknown = src.doc.contents;
  let key: unknown;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      key = pair.key;
      // `load:` with nothing after it: the empty value sits after the colon; its key reads better.
      node = pair.value === null || isEmptyScalar(pair.value) ? pair.key : pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] != null) {
      key = undefined;
      node = node.items[seg];
    } else {
      break;
    }
  }
  const target = (at === 'key' && key ? key : node) as { range?: [number, number, number] } | null;
  return src.lines.linePos(target?.range?.[0] ?? 0);
}

function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.value === null && !!node.range && node.range[0] === node.range[1];
}

function placeAll(src: Source, findings: Finding[]): Problem[] {
  return findings
    .map((f) => ({ file: src.label, ...locate(src, f.path, f.at), path: formatPath(f.path), message: f.message }))
    .sort((a, b) => a.line - b.line || a.col - b.col);
}

/** `loadBalancers[2].mode`; the document itself is `(top level)`. */
function formatPath(path: Path): string {
  if (!path.length) return '(top level)';
  return path.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i ? `.${String(seg)}` : String(seg))).join('');
}

function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

function invalid(what: string, label: string, problems: Problem[]): ConfigError {
  const n = problems.length;
  return new ConfigError(
    `invalid ${what} ${label}: ${n} problem${n === 1 ? '' : 's'}`,
    problems.map(formatProblem),
    '`lbbench schema` prints every key with its description',
  );
}

// ---------------------------------------------------------------------------------------------
// zod issues → findings that say what to write instead

interface Ctx {
  root: z.core.$ZodType;
  data: unknown;
}

function explainAll(issues: z.core.$ZodIssue[], root: z.core.$ZodType, data: unknown): Finding[] {
  return issues.flatMap((issue) => explain(issue, { root, data }, []));
}

function explain(issue: z.core.$ZodIssue, ctx: Ctx, prefix: Path): Finding[] {
  const path = [...prefix, ...issue.path];
  const value = valueAt(ctx.data, path);
  const at = (message: string): Finding[] => [{ path, message }];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const valid = keysOf(objectAt(ctx, path));
      return issue.keys.map((k) => ({ path: [...path, k], at: 'key', message: unknownKey(k, valid) }));
    }
    case 'invalid_union':
      return issue.discriminator !== undefined
        ? at(unknownDiscriminator(issue.discriminator, ('options' in issue && issue.options) || [], value, ctx, path))
        : explainUnion(issue.errors, ctx, path, value);
    case 'invalid_type':
      return at(wrongType(ctx, path, value));
    case 'invalid_value':
      return at(`invalid value ${show(value)}; allowed values: ${issue.values.map(String).join(', ')}${didYouMean(value, issue.values.map(String))}`);
    case 'too_small':
      return at(tooSmall(issue, value, ctx, path));
    case 'too_big':
      return at(tooBig(issue, value));
    case 'invalid_format':
    case 'custom':
      // A check across a map's keys says what it found itself; "got a map" would add nothing.
      return at(value !== null && typeof value === 'object' && !Array.isArray(value) ? issue.message : `${issue.message}, got ${show(value)}`);
    default:
      return at(issue.message);
  }
}

/** Picks the branch the user evidently meant (the one whose type matched) and explains that. */
function explainUnion(branches: z.core.$ZodIssue[][], ctx: Ctx, path: Path, value: unknown): Finding[] {
  const typeMismatch = (b: z.core.$ZodIssue[]) => b.every((i) => i.code === 'invalid_type' && i.path.length === 0);
  const meant = branches.filter((b) => !typeMismatch(b)).sort((a, b) => a.length - b.length)[0];
  if (!meant) return [{ path, message: wrongType(ctx, path, value) }];
  if (meant.length === 1 && meant[0]!.code === 'invalid_value' && meant[0]!.path.length === 0) {
    return [{ path, message: `invalid value ${show(value)}; expected ${expectation(schemaAt(ctx, path))}` }];
  }
  return meant.flatMap((i) => explain(i, ctx, path));
}

function wrongType(ctx: Ctx, path: Path, value: unknown): string {
  const expected = expectation(schemaAt(ctx, path));
  const last = path[path.length - 1];
  if (value === undefined && last !== undefined && typeof last !== 'number') {
    return `missing required key "${String(last)}"; expected ${expected}`;
  }
  return `expected ${expected}, got ${show(value)}`;
}

function unknownKey(key: string, valid: string[]): string {
  return `unknown key "${key}"; valid keys: ${valid.join(', ')}${didYouMean(key, valid)}`;
}

function unknownDiscriminator(disc: string, options: readonly unknown[], value: unknown, ctx: Ctx, path: Path): string {
  const kinds = options.filter((o) => o !== undefined).map(String);
  const parentPath = path[path.length - 1] === disc ? path.slice(0, -1) : path;
  const what = unwrap(schemaAt(ctx, parentPath)) === LbSpec ? `load balancer ${disc}` : disc;
  const list = `valid ${disc}s: ${kinds.join(', ')}`;
  if (value === undefined) return `missing required key "${disc}"; ${list}`;
  return `unknown ${what} ${show(value)}; ${list}${didYouMean(value, kinds)}`;
}

function tooSmall(issue: z.core.$ZodIssueTooSmall, value: unknown, ctx: Ctx, path: Path): string {
  const min = Number(issue.minimum);
  if (issue.origin === 'array' || issue.origin === 'string') {
    if (min > 1) return `must have at least ${min} ${issue.origin === 'array' ? 'items' : 'characters'}`;
    const list = unwrap(schemaAt(ctx, path));
    if (list instanceof z.ZodArray && list.element === LbSpec) {
      return `must not be empty; add at least one load balancer, e.g. "- kind: router" (kinds: ${LB_KINDS.join(', ')})`;
    }
    return 'must not be empty';
  }
  return `${issue.inclusive ? 'must be at least' : 'must be greater than'} ${min}, got ${show(value)}`;
}

function tooBig(issue: z.core.$ZodIssueTooBig, value: unknown): string {
  const max = Number(issue.maximum);
  if (issue.origin === 'array') return `must have at most ${max} items`;
  if (issue.origin === 'string') return `must be at most ${max} characters`;
  return `${issue.inclusive ? 'must be at most' : 'must be less than'} ${max}, got ${show(value)}`;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return String(v);
}

/** Suggests a candidate only when one stands out: a close spelling, or a unique prefix match. */
function didYouMean(input: unknown, candidates: readonly string[]): string {
  if (typeof input !== 'string' || !input) return '';
  const typed = input.toLowerCase();
  const maxDist = Math.max(1, Math.floor(typed.length / 3));
  const scored = candidates
    .map((c) => ({ c, d: osaDistance(typed, c.toLowerCase()) }))
    .filter((x) => x.d <= maxDist)
    .sort((a, b) => a.d - b.d);
  const close = scored.filter((x) => x.d === scored[0]?.d).map((x) => x.c);
  const prefixed =
    typed.length >= 3
      ? candidates.filter((c) => c.toLowerCase().startsWith(typed) || typed.startsWith(c.toLowerCase()))
      : [];
  const pick = close.length === 1 ? close[0] : close.length === 0 && prefixed.length === 1 ? prefixed[0] : undefined;
  return pick && pick !== input ? `; did you mean ${pick}?` : '';
}

/** Edit distance counting an adjacent transposition ("ngnix") as one edit. */
function osaDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Reading the schema itself, so messages list exactly what it accepts


function unwrap(s: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  while (s && s !== Duration && s !== LinkRate) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s.unwrap();
    } else if (s instanceof z.ZodPipe) {
      s = s.in;
    } else {
      break;
    }
  }
  return s;
}

/** For a union, the option the data is meant for: by discriminator, else by shape (map or list). */
function branchFor(s: z.core.$ZodType | undefined, data: unknown): z.core.$ZodType | undefined {
  const u = unwrap(s);
  if (!(u instanceof z.ZodUnion)) return u;
  const options = u.options.map((o) => unwrap(o));
  if (u instanceof z.ZodDiscriminatedUnion) {
    const disc = u._zod.def.discriminator;
    const tag = valueAt(data, [disc]);
    // A left-out tag selects the option whose tag has a default (topology kind: netns).
    return options.find(
      (o) => o instanceof z.ZodObject && (tag === undefined ? o.shape[disc]?.safeParse(undefined).success : literalValues(o.shape[disc]).includes(tag)),
    );
  }
  const isList = Array.isArray(data);
  const isMapLike = data !== null && typeof data === 'object' && !isList;
  const picked = options.find((o) => (isMapLike && (o instanceof z.ZodObject || o instanceof z.ZodUnion)) || (isList && o instanceof z.ZodArray));
  return picked instanceof z.ZodUnion ? branchFor(picked, data) : picked;
}

function literalValues(s: z.core.$ZodType | undefined): unknown[] {
  const u = unwrap(s);
  return u instanceof z.ZodLiteral ? [...u.values] : [];
}

function schemaAt(ctx: Ctx, path: Path): z.core.$ZodType | undefined {
  let s: z.core.$ZodType | undefined = ctx.root;
  for (let i = 0; i < path.length; i++) {
    const here = branchFor(s, valueAt(ctx.data, path.slice(0, i)));
    const seg = path[i]!;
    if (here instanceof z.ZodObject) s = here.shape[String(seg)];
    else if (here instanceof z.ZodArray) s = here.element;
    else return undefined;
  }
  return s;
}

function objectAt(ctx: Ctx, path: Path): z.core.$ZodType | undefined {
  return branchFor(schemaAt(ctx, path), valueAt(ctx.data, path));
}

function keysOf(s: z.core.$ZodType | undefined): string[] {
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** What a value of this schema looks like, in words a YAML author can act on. */
function expectation(schema: z.core.$ZodType | undefined): string {
  const s = unwrap(schema);
  if (!s) return 'a different value';
  if (s === Duration) return 'a duration such as 5, "5s", "500ms" or "2m"';
  if (s === LinkRate) return 'a link rate such as "1gbit", "100mbit" or "500kbit"';
  if (s instanceof z.ZodNumber) return `${numberNoun(s, false)}${numberRange(s)}`;
  if (s instanceof z.ZodString) return 'a string';
  if (s instanceof z.ZodBoolean) return 'true or false';
  if (s instanceof z.ZodEnum) return `one of ${s.options.map(String).join(', ')}`;
  if (s instanceof z.ZodLiteral) return [...s.values].map(String).join(' or ');
  if (s instanceof z.ZodArray) return `a list of ${plural(s.element)}`;
  if (s instanceof z.ZodDiscriminatedUnion) {
    const disc = s._zod.def.discriminator;
    const kinds = s.options.flatMap((o) => literalValues(o instanceof z.ZodObject ? o.shape[disc] : undefined));
    return `a map with "${disc}:" (one of ${kinds.map(String).join(', ')})`;
  }
  if (s instanceof z.ZodUnion) return s.options.map((o) => expectation(o)).join(' or ');
  if (s instanceof z.ZodObject) return `a map (keys: ${keysOf(s).join(', ')})`;
  return 'a different value';
}

function plural(schema: z.core.$ZodType): string {
  const s = unwrap(schema);
  if (s instanceof z.ZodNumber) return `${numberNoun(s, true)}${numberRange(s)}`;
  if (s instanceof z.ZodString) return 'strings';
  if (s instanceof z.ZodObject || s instanceof z.ZodUnion) return 'maps';
  return 'values';
}

function numberNoun(s: z.ZodNumber, many: boolean): string {
  const noun = s.isInt ? 'integer' : 'number';
  return many ? `${noun}s` : `${s.isInt ? 'an' : 'a'} ${noun}`;
}

/** Bounds from the schema's checks; the safe-integer limits z.int() carries are not worth saying. */
function numberRange(s: z.ZodNumber): string {
  let lo: { value: number; inclusive: boolean } | undefined;
  let hi: { value: number; inclusive: boolean } | undefined;
  for (const check of s._zod.def.checks ?? []) {
    const def = check._zod.def as { check: string; value?: unknown; inclusive?: boolean };
    if (def.check === 'greater_than') lo = { value: Number(def.value), inclusive: !!def.inclusive };
    if (def.check === 'less_than') hi = { value: Number(def.value), inclusive: !!def.inclusive };
  }
  if (lo && hi && lo.inclusive && hi.inclusive) return ` from ${lo.value} to ${hi.value}`;
  const parts = [
    lo && `${lo.inclusive ? 'at least' : 'greater than'} ${lo.value}`,
    hi && `${hi.inclusive ? 'at most' : 'less than'} ${hi.value}`,
  ].filter(Boolean);
  return parts.length ? ` ${parts.join(' and ')}` : '';
}

// ---------------------------------------------------------------------------------------------
// Checks that span fields, run on the raw data so they report alongside schema problems


function duplicateLbNames(data: unknown): Finding[] {
  const firstIndex = new Map<string, number>();
  const findings: Finding[] = [];
  rawList(data, ['loadBalancers']).forEach((raw, i) => {
    const parsed = LbSpec.safeParse(raw);
    if (!parsed.success) return;
    const name = lbName(parsed.data);
    const first = firstIndex.get(name);
    if (first === undefined) {
      firstIndex.set(name, i);
    } else if (parsed.data.name !== undefined) {
      findings.push({
        path: ['loadBalancers', i, 'name'],
        message: `duplicate name "${name}", already used by loadBalancers[${first}]; choose another name`,
      });
    } else {
      findings.push({
        path: ['loadBalancers', i],
        message: `duplicate name "${name}" (the default for this kind and mode), already used by loadBalancers[${first}]; add a distinct "name:" to one of them`,
      });
    }
  });
  return findings;
}

/** A repeated sweep value would plan two points with the same id. */
function duplicateSweepValues(data: unknown): Finding[] {
  return (['backends', 'connections', 'threads'] as const).flatMap((axis) => {
    const list = rawList(data, ['sweep', axis]);
    return list.flatMap((v, i) => {
      const first = list.indexOf(v);
      if (first === i || typeof v !== 'number') return [];
      return [{
        path: ['sweep', axis, i],
        message: `${v} is already listed at sweep.${axis}[${first}]; list each value once (repetitions repeat points)`,
      }];
    });
  });
}

/** wrk refuses to start with fewer connections than threads; catch it before anything is built. */
function fewerConnectionsThanThreads(data: unknown): Finding[] {
  const sweep = SweepSpec.safeParse(valueAt(data, ['sweep']) ?? {});
  const load = LoadSpec.safeParse(valueAt(data, ['load']) ?? {});
  if (!sweep.success || !load.success) return [];
  const threads = sweep.data.threads ?? [load.data.threads];
  const maxThreads = Math.max(...threads);
  const connections = sweep.data.connections ?? [load.data.connections];
  const where = (i: number): Path => {
    if (sweep.data.connections) return ['sweep', 'connections', i];
    if (valueAt(data, ['load', 'connections']) !== undefined) return ['load', 'connections'];
    return sweep.data.threads ? ['sweep', 'threads', threads.indexOf(maxThreads)] : ['load', 'threads'];
  };
  return connections.flatMap((c, i) =>
    c < maxThreads
      ? [{ path: where(i), message: `${c} connections with ${maxThreads} threads: wrk needs at least one connection per thread` }]
      : [],
  );
}

function thresholdFindings(data: unknown): Finding[] {
  return rawList(data, ['thresholds']).flatMap((t, i) => {
    if (typeof t !== 'string') return [];
    const parsed = parseThreshold(t);
    return typeof parsed === 'string' ? [{ path: ['thresholds', i], message: `"${t}": ${parsed}` }] : [];
  });
}

/** A generator that cannot work on this topology or at these backend counts says why. */
function generatorFindings(data: unknown, topo: TopologySpec | undefined): Finding[] {
  const load = LoadSpec.safeParse(valueAt(data, ['load']) ?? {});
  const sweep = SweepSpec.safeParse(valueAt(data, ['sweep']) ?? {});
  if (!load.success || !sweep.success || !topo) return [];
  const driver = loadDrivers[load.data.generator];
  const why = driver.unsupported?.(topo, sweep.data.backends);
  const findings: Finding[] = why ? [{ path: valueAt(data, ['load', 'generator']) === undefined ? ['load'] : ['load', 'generator'], message: why }] : [];
  if (driver.protocols?.(load.data).includes('udp')) {
    rawList(data, ['loadBalancers']).forEach((raw, i) => {
      const lb = LbSpec.safeParse(raw);
      if (lb.success && !getLbDriver(lb.data.kind).udp?.(lb.data as never)) {
        findings.push({ path: ['loadBalancers', i], message: `${lbName(lb.data)} balances TCP only, and this load is UDP (load.protocol: udp); measure it in a TCP scenario` });
      }
    });
  }
  return findings;
}

/** Generators whose requests make a probe: a success rate and a latency per request. */
const PROBES = ['wrk', 'connect', 'traffic'];

/** Family 6 needs dual-stack namespaces, and drivers and a generator that speak IPv6. */
function familyFindings(data: unknown, topo: TopologySpec | undefined): Finding[] {
  const sweep = SweepSpec.safeParse(valueAt(data, ['sweep']) ?? {});
  const load = LoadSpec.safeParse(valueAt(data, ['load']) ?? {});
  if (!sweep.success || !load.success || !topo || !sweep.data.family?.includes(6)) return [];
  const findings: Finding[] = [];
  if (topo.kind === 'baremetal' && ipv6Fields(topo).some((f) => f.value === undefined)) {
    const missing = ipv6Fields(topo).filter((f) => f.value === undefined).map((f) => f.name);
    findings.push({ path: ['sweep', 'family'], message: `family 6 on bare metal needs your hosts' IPv6 addresses in the topology: write ${missing.join(', ')} (as in topologies/baremetal-example.yaml), or measure family 4 only` });
  }
  rawList(data, ['loadBalancers']).forEach((raw, i) => {
    const lb = LbSpec.safeParse(raw);
    const why = lb.success ? ipv6Refusal(lb.data, lbName(lb.data)) : undefined;
    if (why) findings.push({ path: ['loadBalancers', i], message: `${why}; measure it in a scenario with family [4]` });
  });
  const gen = loadDrivers[load.data.generator].ipv6;
  if (gen !== true) findings.push({ path: ['load', 'generator'], message: `${load.data.generator} does not load an IPv6 VIP${typeof gen === 'string' ? ` (${gen})` : ' in lbbench yet'}; use wrk, connect, traffic, iperf3, trafgen, mconnect or ctraffic with family 6` });
  return findings;
}

/** vrrp needs the standby LB node only the netns builder makes. */
function standbyFindings(data: unknown, topo: TopologySpec | undefined): Finding[] {
  if (!topo || ownsNamespaces(topo)) return [];
  return rawList(data, ['loadBalancers']).flatMap((raw, i) => {
    const lb = LbSpec.safeParse(raw);
    return lb.success && getLbDriver(lb.data.kind).needsStandbyLb
      ? [{ path: ['loadBalancers', i], message: `${lbName(lb.data)} needs a standby LB node beside lb0, which lbbench builds on netns and qemu one-guest topologies, not ${topologyName(topo)}; measure it on kind: netns` }]
      : [];
  });
}

function floodFindings(data: unknown, topo: TopologySpec | undefined): Finding[] {
  const load = LoadSpec.safeParse(valueAt(data, ['load']) ?? {});
  const sweep = SweepSpec.safeParse(valueAt(data, ['sweep']) ?? {});
  if (!load.success || !sweep.success || !topo) return [];
  const rates = sweep.data.floodPps ?? (load.data.flood ? [load.data.flood.pps] : []);
  if (!rates.some((r) => r > 0)) return [];
  const where = sweep.data.floodPps ? ['sweep', 'floodPps'] : ['load', 'flood'];
  const findings: Finding[] = [];
  if (!PROBES.includes(load.data.generator)) {
    findings.push({ path: where, message: `a flood is measured by the probe beside it, and ${load.data.generator} makes no requests to probe with; set load.generator: connect (one request per connection, like a curl loop), wrk or traffic` });
  }
  if (!ownsNamespaces(topo)) {
    findings.push({ path: where, message: `the flood is trafgen writing frames on the client's eth0 towards the LB node's MAC, which lbbench knows only on netns and qemu one-guest topologies (not ${topologyName(topo)}); remove the flood or use kind: netns` });
  }
  return findings;
}

/** LBs whose datapath needs the backends on a plain Ethernet segment, with why. */
function vxlanRefusal(lb: LbSpec): string | undefined {
  if (lb.kind === 'xdp') return 'xdp redirects frames natively into the veth towards the backends; a VXLAN device takes no XDP redirects';
  if (lb.kind === 'ipvs' && lb.mode !== 'nat') return `ipvs ${lb.mode} sends replies straight back to the client, a path not wired through the overlay`;
  if (lb.kind === 'vrrp') return 'its standby LB node is not wired into the overlay';
  return undefined;
}

function overlayFindings(data: unknown, topo: TopologySpec | undefined): Finding[] {
  const sweep = SweepSpec.safeParse(valueAt(data, ['sweep']) ?? {});
  if (!sweep.success || !topo) return [];
  const own = topo.kind === 'baremetal' ? undefined : topo.overlay;
  const overlays = sweep.data.overlay ?? (own ? [own] : []);
  if (!overlays.includes('vxlan')) return [];
  const where = sweep.data.overlay ? ['sweep', 'overlay'] : ['topology'];
  if (!ownsNamespaces(topo)) {
    return [{ path: where, message: `an overlay is built on the veths of a netns topology (or qemu one-guest); ${topo.kind === 'baremetal' ? 'on bare metal your network is what it is' : 'per-role guests are linked by qemu sockets'} — remove the overlay, or use kind: netns` }];
  }
  const findings: Finding[] = [];
  rawList(data, ['loadBalancers']).forEach((raw, i) => {
    const lb = LbSpec.safeParse(raw);
    const why = lb.success ? vxlanRefusal(lb.data) : undefined;
    if (why) findings.push({ path: ['loadBalancers', i], message: `${lbName(lb.data!)} cannot run over the vxlan overlay: ${why}; measure it in a scenario without vxlan` });
  });
  return findings;
}

interface ResolvedTopology {
  spec?: TopologySpec;
  /** Where an explicit `backends` was set, for the cross-check message. */
  origin?: string;
  /** Problems placed in the scenario file. */
  findings: Finding[];
  /** Problems inside a referenced topology file (already placed there). */
  problems: Problem[];
}

async function resolveTopology(data: unknown, projectRoot: string, baseDir: string): Promise<ResolvedTopology> {
  const ref = valueAt(data, ['topology']) ?? 'netns-basic';
  if (ref !== null && typeof ref === 'object' && !Array.isArray(ref)) {
    // An inline topology was already validated as part of the scenario.
    const inline = TopologySpec.safeParse(ref);
    return { spec: inline.success ? inline.data : undefined, origin: 'topology.backends', findings: [], problems: [] };
  }
  if (typeof ref !== 'string' || ref === '') return { findings: [], problems: [] };

  const byPath = /\.ya?ml$/i.test(ref);
  const file = byPath ? resolve(baseDir, ref) : join(projectRoot, 'topologies', `${ref}.yaml`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    let message: string;
    if (code !== 'ENOENT') {
      message = `cannot read topology file ${displayPath(file)}: ${code ?? String(err)}`;
    } else if (byPath) {
      message = `topology file ${displayPath(file)} not found (a path is relative to the scenario file)`;
    } else {
      const names = await yamlNames(join(projectRoot, 'topologies'));
      message =
        `unknown topology "${ref}" (no file ${displayPath(file)}); ` +
        `available topologies: ${names.length ? names.join(', ') : 'none'}${didYouMean(ref, names)}`;
    }
    return { findings: [{ path: ['topology'], message }], problems: [] };
  }
  const label = displayPath(file);
  const { spec, problems } = validateTopologyText(text, label);
  return { spec, origin: `${spec?.kind === 'baremetal' ? 'backendHosts' : 'backends'} in ${label}`, findings: [], problems };
}

function validateTopologyText(text: string, label: string): { spec?: TopologySpec; problems: Problem[] } {
  const parsed = parseSource(text, label, 'the file is empty; a topology needs at least "kind: netns"');
  if ('problems' in parsed) return { problems: parsed.problems };
  const result = TopologySpec.safeParse(parsed.data);
  if (result.success) return { spec: result.data, problems: [] };
  return { problems: placeAll(parsed.src, explainAll(result.error.issues, TopologySpec, parsed.data)) };
}

/** How many backends a topology has, when it fixes the number (bare-metal: its hosts). */
function topologyBackendLimit(t: TopologySpec | undefined): number | undefined {
  if (!t) return undefined;
  return t.kind === 'baremetal' ? t.backendHosts.length : t.backends;
}

function sweepBeyondTopology(data: unknown, topo: ResolvedTopology): Finding[] {
  const limit = topologyBackendLimit(topo.spec);
  if (limit === undefined) return [];
  return rawList(data, ['sweep', 'backends']).flatMap((v, i) =>
    typeof v === 'number' && v > limit
      ? [{
          path: ['sweep', 'backends', i],
          message: `${v} backends, but the topology builds only ${limit} (${topo.origin}: ${limit}); raise that, or remove it so it follows the sweep`,
        }]
      : [],
  );
}

/** Relative to the working directory when inside it, so problem lines stay short and clickable. */
function displayPath(abs: string): string {
  const rel = relative(process.cwd(), abs);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : abs;
}

function assemble(spec: ScenarioSpec, topology: TopologySpec, file: string | undefined): Scenario {
  const backends = topologyBackendLimit(topology) ?? Math.max(...spec.sweep.backends);
  const loadBalancers: NamedLbSpec[] = spec.loadBalancers.map((lb) => ({ ...lb, name: lbName(lb) }));
  return { ...spec, loadBalancers, topology: { ...topology, backends }, ...(file ? { file } : {}) };
}
