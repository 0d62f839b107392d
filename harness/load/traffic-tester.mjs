// lbbench's built-in traffic tester (ctraffic-style), plain Node with no dependencies.
//
// Keeps --connections long-lived TCP connections open for --duration seconds, each sending a small
// HTTP request (keep-alive) at a fixed pace so that all of them together send --rate messages per
// second. A connection that is reset, closed by the other end or stops answering for --timeout
// seconds is lost; the tester records why and opens a replacement, so the number of connections
// stays what the scenario asked for. Times are milliseconds since the tester's start; the start is
// printed as an epoch so the harness can place its events on the same timeline.
//
// Prints one JSON line: per-connection outcomes, per-second samples (active, new, lost, failed
// connects, messages), latency quantiles, and the tester's own CPU time so a saturated tester is
// flagged rather than mistaken for a slow LB.
import net from 'node:net';
import { arg, poolAddresses } from './tester-common.mjs';


const [host, portText] = arg('target', '').split(/:(?=\d+$)/);
const port = Number(portText);
const durationMs = Number(arg('duration', '10')) * 1000;
const nconn = Number(arg('connections', '100'));
const rate = Number(arg('rate', '1000'));
const timeoutMs = Number(arg('timeout', '2')) * 1000;
const path = arg('path', '/');
const sourcesSpec = arg('sources', '');
if (!host || !Number.isInteger(port) || !(durationMs > 0) || !(nconn > 0) || !(rate > 0) || !(timeoutMs > 0)) {
  process.stderr.write('usage: traffic-tester --target IP:PORT --duration S --connections N --rate MSG_PER_S [--timeout S] [--path P] [--sources CIDR:COUNT] [--start-at EPOCH_MS]\n');
  process.exit(2);
}


const sources = poolAddresses(sourcesSpec);
// Each connection's own pace; connections start spread over one interval so messages do not
// arrive in bursts of nconn.
const intervalMs = (nconn / rate) * 1000;
const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 'latin1');
const seconds = Math.ceil(durationMs / 1000);
const samples = Array.from({ length: seconds }, (_, t) => ({ t, active: 0, new: 0, lost: 0, failedConnects: 0, messages: 0, failedMessages: 0, bytes: 0 }));
const records = [];
const rtts = [];
const perBackend = {};
// Spans with no answered message on any connection for longer than gapMs: what an outage looks
// like from the clients (last good answer before, first after), at a resolution the per-second
// samples do not have.
// 50 ms: above the scheduling hiccups of a busy 2-core host, well below a VRRP failover.
const gapMs = Math.max(50, 3 * (1000 / rate));
const gaps = [];
let lastAnswer = 0;
let nextSource = 0;
let ended = false;
let active = 0;
const live = new Set();

// The harness times its events on its own clock; starting at an agreed moment puts both on one
// timeline (a late start just starts now, and the printed start epoch says so).
const startAt = Number(arg('start-at', '0'));
if (startAt > Date.now()) await new Promise((r) => setTimeout(r, startAt - Date.now()));
const epoch0 = Date.now();
const hr0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage();
const now = () => Number(process.hrtime.bigint() - hr0) / 1e6;
const bucket = (t) => samples[Math.min(seconds - 1, Math.max(0, Math.floor(t / 1000)))];

function open(id, delayMs) {
  const pending = {
    stop: () => clearTimeout(timer),
  };
  const timer = setTimeout(() => {
    live.delete(pending);
    start(id);
  }, delayMs);
  live.add(pending);
}

function start(id) {
  if (ended) return;
  const src = sources.length ? sources[nextSource++ % sources.length] : undefined;
  const rec = { id, src: src ?? null, start: Math.round(now()), end: null, backend: null, backends: 0, messages: 0, outcome: 'lasted', reason: null };
  const sock = net.connect({ host, port, localAddress: src });
  sock.setNoDelay(true);
  let connected = false;
  let done = false;
  let buf = Buffer.alloc(0);
  let sentAt = 0;
  let pace;
  let replyTimer;
  const seen = new Set();
  const conn = {
    rec,
    connected: () => connected,
    stop() {
      done = true;
      clearInterval(pace);
      clearTimeout(replyTimer);
      clearTimeout(connectTimer);
      sock.destroy();
    },
  };
  live.add(conn);

  const fail = (reason) => {
    if (done || ended) return;
    conn.stop();
    live.delete(conn);
    const t = now();
    rec.end = Math.round(t);
    rec.reason = reason;
    if (connected) {
      rec.outcome = 'lost';
      active--;
      bucket(t).lost++;
    } else {
      rec.outcome = 'connect-failed';
      bucket(t).failedConnects++;
    }
    records.push(rec);
    // A refused connect is retried after a pause, not in a tight loop that would eat the CPU.
    open(id, connected ? 0 : Math.min(200, intervalMs));
  };
  const connectTimer = setTimeout(() => fail('connect-timeout'), timeoutMs);

  const send = () => {
    if (done) return;
    // One message in flight per connection: a late reply is the reply timeout's business.
    if (sentAt) return;
    sentAt = now();
    sock.write(request);
    replyTimer = setTimeout(() => fail('timeout'), timeoutMs);
  };

  sock.once('connect', () => {
    clearTimeout(connectTimer);
    connected = true;
    active++;
    rec.start = Math.round(now());
    bucket(rec.start).new++;
    send();
    pace = setInterval(send, intervalMs);
  });
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    for (;;) {
      const head = buf.indexOf('\r\n\r\n');
      if (head < 0) return;
      const headers = buf.subarray(0, head).toString('latin1');
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headers)?.[1] ?? NaN);
      if (!Number.isFinite(len)) return fail('bad-reply');
      if (buf.length < head + 4 + len) return;
      const body = buf.subarray(head + 4, head + 4 + len).toString('latin1');
      buf = buf.subarray(head + 4 + len);
      const t = now();
      clearTimeout(replyTimer);
      const s = bucket(t);
      s.bytes += head + 4 + len;
      const ok = /^HTTP\/1\.[01] 200 /.test(headers);
      const name = ok ? /^(\S+)/.exec(body)?.[1] : undefined;
      if (!name) {
        s.failedMessages++;
      } else {
        s.messages++;
        rec.messages++;
        if (t - lastAnswer > gapMs) gaps.push([Math.round(lastAnswer), Math.round(t)]);
        lastAnswer = t;
        rtts.push((t - sentAt) * 1000);
        perBackend[name] = (perBackend[name] ?? 0) + 1;
        rec.backend = name;
        seen.add(name);
        rec.backends = seen.size;
      }
      sentAt = 0;
      if (/\r\nconnection:\s*close/i.test(headers)) return fail('closed');
    }
  });
  sock.once('end', () => fail('closed'));
  sock.once('error', (e) => fail(e.code === 'ECONNRESET' ? 'reset' : e.code === 'ECONNREFUSED' ? 'refused' : String(e.code ?? e.message).toLowerCase()));
  sock.once('close', () => fail('closed'));
}

for (let i = 0; i < nconn; i++) open(i, (i / nconn) * intervalMs);

// Active connections at the end of each second, read on the second.
const sampler = setInterval(() => {
  const t = now();
  const s = samples[Math.floor(t / 1000) - 1];
  if (s) s.active = active;
}, 1000);

await new Promise((r) => setTimeout(r, durationMs));
ended = true;
const endMs = now();
clearInterval(sampler);
samples[seconds - 1].active = active;
if (endMs - lastAnswer > gapMs) gaps.push([Math.round(lastAnswer), null]);
for (const c of live) c.stop();

// Connections still open at the end lasted (end: null); one still connecting was neither.
const lasted = [...live].filter((c) => c.rec && c.connected()).map((c) => c.rec);
const cpu = process.cpuUsage(cpu0);
rtts.sort((a, b) => a - b);
const q = (p) => (rtts.length ? rtts[Math.min(rtts.length - 1, Math.max(0, Math.ceil((p / 100) * rtts.length) - 1))] : null);
const mean = rtts.length ? rtts.reduce((a, b) => a + b, 0) / rtts.length : null;
const stdev = rtts.length ? Math.sqrt(rtts.reduce((a, b) => a + (b - mean) ** 2, 0) / rtts.length) : null;
process.stdout.write(
  'LBBENCH_TRAFFIC ' +
    JSON.stringify({
      v: 1,
      startEpochMs: epoch0,
      seconds: endMs / 1000,
      connections: nconn,
      rate,
      intervalMs,
      timeoutMs,
      sources: sources.length,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      latencyUs: { count: rtts.length, mean, stdev, cdf: [0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100].map((p) => [p, q(p)]) },
      perBackend,
      samples,
      gapMs,
      gaps,
      records: [...records, ...lasted].sort((a, b) => a.id - b.id || a.start - b.start),
    }) +
    '\n',
);
process.exit(0);
