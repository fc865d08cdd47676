/**
 * The control routes both simulators serve under `/_sim` (see src/sim/README.md), and small
 * validators for control request bodies.
 */
import { ControlError, type FailNextOptions } from './control.js';
import type { ControlRoute } from './server-base.js';

/** The operations every simulator's control object offers. */
export interface CommonControl {
  setClockOffset(ms: number): void;
  setLatency(ms: number): void;
  failNext(count: number, options?: FailNextOptions): void;
  /** The next business requests fail one each, in this order. */
  failSequence(faults: readonly FailNextOptions[]): void;
  counters(): unknown;
  reset(): void;
  clock(): { offsetMs: number; now: number };
}

export function asRecord(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ControlError(400, 'body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

export function requireNumber(obj: Record<string, unknown>, key: string): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ControlError(400, `${key}: a number is required`);
  return v;
}

export function optionalNumber(obj: Record<string, unknown>, key: string): number | undefined {
  return obj[key] === undefined ? undefined : requireNumber(obj, key);
}

export function requireString(obj: Record<string, unknown>, key: string): string {
  const v = obj[key];
  if (typeof v !== 'string' || v === '') throw new ControlError(400, `${key}: a non-empty string is required`);
  return v;
}

export function optionalString(obj: Record<string, unknown>, key: string): string | undefined {
  return obj[key] === undefined ? undefined : requireString(obj, key);
}

export function requireStringArray(obj: Record<string, unknown>, key: string): string[] {
  const v = obj[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new ControlError(400, `${key}: an array of strings is required`);
  }
  return v as string[];
}

function failNextOptions(obj: Record<string, unknown>): FailNextOptions {
  const options: FailNextOptions = {};
  const code = optionalNumber(obj, 'code');
  if (code !== undefined) options.code = code;
  const message = obj['message'];
  if (message !== undefined) {
    if (typeof message !== 'string') throw new ControlError(400, 'message: must be a string');
    options.message = message;
  }
  const httpStatus = optionalNumber(obj, 'httpStatus');
  if (httpStatus !== undefined) options.httpStatus = httpStatus;
  if (obj['body'] !== undefined) options.body = obj['body'];
  const include = obj['includeTokenEndpoint'];
  if (include !== undefined) {
    if (typeof include !== 'boolean') throw new ControlError(400, 'includeTokenEndpoint: must be a boolean');
    options.includeTokenEndpoint = include;
  }
  return options;
}

export function commonControlRoutes(control: CommonControl): ControlRoute[] {
  return [
    { method: 'GET', pattern: /^\/clock$/, handle: () => control.clock() },
    {
      method: 'POST',
      pattern: /^\/clock$/,
      handle: (_p, body) => {
        control.setClockOffset(requireNumber(asRecord(body), 'offsetMs'));
        return control.clock();
      },
    },
    {
      method: 'POST',
      pattern: /^\/latency$/,
      handle: (_p, body) => {
        const ms = requireNumber(asRecord(body), 'ms');
        control.setLatency(ms);
        return { ms };
      },
    },
    {
      method: 'POST',
      pattern: /^\/fail-next$/,
      handle: (_p, body) => {
        const obj = asRecord(body);
        const count = requireNumber(obj, 'count');
        control.failNext(count, failNextOptions(obj));
        return { count };
      },
    },
    {
      method: 'POST',
      pattern: /^\/fail-sequence$/,
      handle: (_p, body) => {
        const faults = asRecord(body)['faults'];
        if (!Array.isArray(faults)) throw new ControlError(400, 'faults: an array of {code?, message?, httpStatus?, body?, includeTokenEndpoint?} is required');
        control.failSequence(faults.map((f, i) => {
          try {
            return failNextOptions(asRecord(f));
          } catch (err) {
            throw err instanceof ControlError ? new ControlError(400, `faults[${i}].${err.message}`) : err;
          }
        }));
        return { count: faults.length };
      },
    },
    { method: 'GET', pattern: /^\/counters$/, handle: () => control.counters() },
    {
      method: 'POST',
      pattern: /^\/reset$/,
      handle: () => {
        control.reset();
        return { ok: true };
      },
    },
  ];
}
