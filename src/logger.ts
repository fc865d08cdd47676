import { pino, type DestinationStream, type Logger } from 'pino';
import { batchedDestination } from './log-destination.js';

export type { Logger };

/**
 * Structured JSON logs. Countersign logs its own fields, never raw bodies or raw headers; the
 * redaction list below is the second line of defence for anything secret-bearing that ends up
 * in a logged object by mistake.
 */
export const REDACT_PATHS = [
  'accessToken',
  'refreshToken',
  'appSecret',
  'apiKey',
  'apiSecret',
  'token',
  'sig',
  '*.accessToken',
  '*.refreshToken',
  '*.appSecret',
  '*.apiKey',
  '*.apiSecret',
  '*.token',
  '*.access_token',
  'headers.authorization',
  'headers["access-token"]',
  'headers["api-key"]',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers["access-token"]',
  '*.headers["api-key"]',
];

/**
 * Without a destination the log goes to stdout through an asynchronous buffered writer
 * (log-destination.ts): the lines of one event-loop turn go out in one write, and the access
 * log never blocks a request on a syscall. `flushLogger` (called at shutdown) and an exit hook
 * write out whatever is still buffered.
 */
export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'countersign' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? batchedDestination(1),
  );
}

/**
 * The access log's logger: the same destination and level, without the generic redaction
 * pass (the costliest part of a log line). Safe because the access log writes only its own
 * fixed fields (request id, upstream, method, path without query, status, class, duration,
 * caller name, retry reason, error code), never headers, bodies or queries.
 */
export function accessLogger(log: Logger): Logger {
  return log.child({}, { redact: { paths: [] } });
}

/** Write out every buffered line (at shutdown, before the process exits). */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}

let lastMs = -1;
let lastStamp = '';
/** pino's ISO `time` field, formatted once per millisecond rather than once per line. */
function isoTime(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastStamp = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return lastStamp;
}
