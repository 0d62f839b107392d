// lbbench's built-in connection tester (mconnect-style), plain Node with no dependencies so it
// runs wherever `node` does (this host's namespaces, SSH hosts that have Node).
//
// For --duration seconds it keeps --concurrency connections in flight; each one connects (from
// the next address of --sources when given), sends one HTTP request with Connection: close and
// reads which backend answered (lbbench's backends reply with their name). Prints one JSON line:
// what a careful reader needs to tell a failed connect from a failed read, per backend, plus the
// tester's own CPU time so a saturated tester can be flagged.
import net from 'node:net';
import { arg, poolAddresses } from './tester-common.mjs';


const [host, portText] = arg('target', '').split(/:(?=\d+$)/);
const port = Number(portText);
const durationMs = Number(arg('duration', '5')) * 1000;
const concurrency = Number(arg('concurrency', '16'));
const timeoutMs = Number(arg('timeout', '2')) * 1000;
const path = arg('path', '/');
const sourcesSpec = arg('sources', '');
if (!host || !Number.isInteger(port) || !(durationMs > 0) || !(concurrency > 0)) {
  process.stderr.write('usage: connect-tester --target IP:PORT --duration S --concurrency N [--timeout S] [--path P] [--sources CIDR:COUNT]\n');
  process.exit(2);
}


const sources = poolAddresses(sourcesSpec);
const perBackend = {};
const latenciesUs = [];
let total = 0;
let failedConnects = 0;
let failedReads = 0;
let timeouts = 0;
let bytes = 0;
let next = 0;
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const deadline = Date.now() + durationMs;

function once() {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const localAddress = sources.length ? sources[next++ % sources.length] : undefined;
    const sock = net.connect({ host, port, localAddress });
    let connected = false;
    let body = '';
    let done = false;
    const finish = (outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      total++;
      if (outcome === 'ok') {
        const name = /\r\n\r\n(\S+)/.exec(body)?.[1];
        if (name) {
          perBackend[name] = (perBackend[name] ?? 0) + 1;
          latenciesUs.push(Number(process.hrtime.bigint() - started) / 1000);
        } else failedReads++;
      } else if (outcome === 'timeout') {
        timeouts++;
        if (connected) failedReads++;
        else failedConnects++;
      } else if (connected) failedReads++;
      else failedConnects++;
      resolve();
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    sock.once('connect', () => {
      connected = true;
      // write, not end: a half-close makes L4 proxies (nginx stream without proxy_half_close)
      // drop the upstream before the answer arrives. The server closes after answering.
      sock.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    sock.on('data', (d) => {
      bytes += d.length;
      body += d.toString('latin1');
    });
    sock.once('end', () => finish('ok'));
    sock.once('error', () => finish('error'));
  });
}

async function worker() {
  while (Date.now() < deadline) await once();
}

await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
latenciesUs.sort((a, b) => a - b);
process.stdout.write(
  'LBBENCH_CONNECT ' +
    JSON.stringify({
      v: 1,
      seconds,
      total,
      failedConnects,
      failedReads,
      timeouts,
      bytes,
      perBackend,
      sources: sources.length,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      latenciesUs: latenciesUs.map((x) => Math.round(x)),
    }) +
    '\n',
);
