// nginx's stub_status page; the backends' own request counters give the per-backend distribution.
import { ParseError } from '../errors.ts';

export interface StubStatus {
  active: number;
  accepts: number;
  handled: number;
  requests: number;
  reading: number;
  writing: number;
  waiting: number;
}

// The exact layout nginx has printed since 0.x, trailing spaces included. The final newline is
// required: without it "Waiting: 12" cut to "Waiting: 1" would parse as a smaller number.
const STUB_STATUS =
  /^Active connections: (\d+)[ \t]*\r?\nserver accepts handled requests[ \t]*\r?\n[ \t]*(\d+) (\d+) (\d+)[ \t]*\r?\nReading: (\d+) Writing: (\d+) Waiting: (\d+)[ \t]*\r?\n$/;

/** Pure: throws ParseError on anything but a complete stub_status page. */
export function parseStubStatus(text: string): StubStatus {
  const m = STUB_STATUS.exec(text);
  if (!m) {
    const excerpt = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new ParseError('not a complete stub_status page', 'nginx stub_status', excerpt);
  }
  const n = m.slice(1).map(Number);
  if (n.some((v) => !Number.isSafeInteger(v))) {
    throw new ParseError('counter out of range', 'nginx stub_status', text);
  }
  const [active, accepts, handled, requests, reading, writing, waiting] = n as [
    number, number, number, number, number, number, number,
  ];
  return { active, accepts, handled, requests, reading, writing, waiting };
}
