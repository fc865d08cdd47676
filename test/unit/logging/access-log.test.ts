import test from 'ava';
import { pino } from 'pino';
import { createAccessLog, jsonString, type AccessLogEntry } from '../../../src/observability/access-log.js';
import { createLogger } from '../../../src/observability/logger.js';

function memory() {
  const lines: string[] = [];
  return { lines, destination: { write: (s: string) => void lines.push(...s.split('\n').filter(Boolean)) } };
}

const ENTRIES: AccessLogEntry[] = [
  { requestId: 'r-1', upstream: 'keeta', method: 'POST', path: '/order/get', status: 200, class: 'success', durationMs: 1.2, caller: 'svc', retried: undefined, error: undefined },
  { requestId: 'r-2', upstream: undefined, method: 'GET', path: '/a"b\\c\u0001d\u2028e\ud800f', status: 404, class: 'rejected', durationMs: 0.1, error: 'UNKNOWN_UPSTREAM' },
  { requestId: 'r-3', upstream: 'ks', method: undefined, path: '/', status: 502, class: 'network_error', durationMs: 12345.6, caller: 'a "quoted" caller', retried: 'token,clock_skew', error: 'UPSTREAM_UNREACHABLE' },
];

/** What pino itself writes for the same fields (the access log's shape before it was built directly). */
function viaPino(e: AccessLogEntry): Record<string, unknown> {
  const { lines, destination } = memory();
  createLogger({ level: 'info', destination }).info(
    {
      requestId: e.requestId,
      upstream: e.upstream,
      method: e.method,
      path: e.path,
      status: e.status,
      class: e.class,
      durationMs: e.durationMs,
      ...(e.caller && { caller: e.caller }),
      ...(e.retried && { retried: e.retried }),
      ...(e.error && { error: e.error }),
    },
    'request',
  );
  return JSON.parse(lines[0]!);
}

test('an access-log line has the same fields, values and order as the line pino writes', (t) => {
  const { lines, destination } = memory();
  const access = createAccessLog(createLogger({ level: 'info', destination }));
  for (const e of ENTRIES) access(e);
  t.is(lines.length, ENTRIES.length);
  ENTRIES.forEach((e, i) => {
    const line = JSON.parse(lines[i]!) as Record<string, unknown>;
    const expected = viaPino(e);
    t.regex(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    t.deepEqual(Object.keys(line), Object.keys(expected), 'same keys in the same order');
    t.deepEqual({ ...line, time: undefined }, { ...expected, time: undefined });
  });
});

test('the access log follows the logger level, also when it changes at run time', (t) => {
  const { lines, destination } = memory();
  const log = createLogger({ level: 'warn', destination });
  const access = createAccessLog(log);
  access(ENTRIES[0]!);
  t.is(lines.length, 0, 'nothing at warn');
  log.level = 'debug';
  access(ENTRIES[0]!);
  t.is(lines.length, 1);
});

test('a logger not made by createLogger still gets every field, through pino', (t) => {
  const { lines, destination } = memory();
  const access = createAccessLog(pino({ base: { svc: 'x' } }, destination));
  access(ENTRIES[2]!);
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.like(line, { level: 30, svc: 'x', msg: 'request', requestId: 'r-3', upstream: 'ks', path: '/', status: 502, class: 'network_error', caller: 'a "quoted" caller', retried: 'token,clock_skew', error: 'UPSTREAM_UNREACHABLE' });
});

test('jsonString quotes exactly as JSON.stringify does', (t) => {
  const samples = ['', 'plain', 'a"b', 'a\\b', '\n\t\u0000\u001f', '\u2028\u2029', 'é€😀', '\ud800', 'x\udfffy', '</script>', "'"];
  for (const s of samples) t.is(jsonString(s), JSON.stringify(s), JSON.stringify(s));
});
