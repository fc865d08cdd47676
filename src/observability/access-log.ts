import { pino } from 'pino';
import { isCountersignLogger, isoTimeField, type Logger } from './logger.js';

/**
 * The access log: one line per proxied request, at `info`, in the same JSON shape and on the
 * same destination as every other log line:
 *
 *   {"level":"info","time":"…","service":"countersign","requestId":"…","upstream":"keeta",
 *    "method":"POST","path":"/order/get","status":200,"class":"success","durationMs":1.2,
 *    "caller":"svc","msg":"request"}
 *
 * Its fields are fixed and none carries a header, a body or a query, so the line is built
 * directly rather than through pino's generic serialiser and redaction, the costliest part of a
 * log line on the proxy's hot path (README "Performance"). Loggers not made by `createLogger`
 * (whose line shape this cannot know) get the same fields through pino itself.
 */
export interface AccessLogEntry {
  requestId: string;
  upstream: string | undefined;
  method: string | undefined;
  /** The path below the upstream, never its query string. */
  path: string;
  status: number;
  class: string;
  durationMs: number;
  caller?: string | undefined;
  retried?: string | undefined;
  error?: string | undefined;
}

export type AccessLog = (entry: AccessLogEntry) => void;

const INFO = 30;

export function createAccessLog(log: Logger): AccessLog {
  if (!isCountersignLogger(log)) {
    const child = log.child({}, { redact: { paths: [] } });
    return (e) => {
      child.info(
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
    };
  }
  const stream = (log as unknown as Record<symbol, { write(line: string): unknown }>)[pino.symbols.streamSym]!;
  const bindings = (log as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? '';
  return (e) => {
    if (log.levelVal > INFO) return;
    let line = `{"level":"info"${isoTimeField()}${bindings},"requestId":${jsonString(e.requestId)}`;
    if (e.upstream !== undefined) line += `,"upstream":${jsonString(e.upstream)}`;
    if (e.method !== undefined) line += `,"method":${jsonString(e.method)}`;
    line += `,"path":${jsonString(e.path)},"status":${jsonNumber(e.status)},"class":${jsonString(e.class)},"durationMs":${jsonNumber(e.durationMs)}`;
    if (e.caller) line += `,"caller":${jsonString(e.caller)}`;
    if (e.retried) line += `,"retried":${jsonString(e.retried)}`;
    if (e.error) line += `,"error":${jsonString(e.error)}`;
    stream.write(`${line},"msg":"request"}\n`);
  };
}

/**
 * A JSON string literal, exactly as JSON.stringify writes it; the common case (no quote,
 * backslash, control character or surrogate) is quoted without JSON.stringify's call.
 */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** A JSON number; a non-finite value (never expected) is written as null, as JSON.stringify does. */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}
