import type { Logger } from '../../observability/logger.js';

/**
 * Named step `config-faults` (recipe `answers.faults`): answer codes no retry can cure, each with
 * the likely cause an operator has to fix (KeySecure's whitelist and Api-Key codes,
 * docs/protocols.md 4.3). They are never retried; each is logged at most once a minute with its
 * cause, and a token request refused with one names the cause in its error.
 */
export const FAULT_LOG_EVERY_MS = 60_000;

export interface FaultReporter {
  has(code: string): boolean;
  /** The likely cause of a fault code, or undefined. */
  cause(code: string): string | undefined;
  /** Log the fault unless the same code was logged within the last minute. */
  report(code: string): void;
}

export function createFaultReporter(upstream: string, faults: Readonly<Record<string, string>>, log: Logger | undefined, now: () => number = Date.now): FaultReporter {
  const causes = new Map(Object.entries(faults));
  const lastLogged = new Map<string, number>();
  return {
    has: (code) => causes.has(code),
    cause: (code) => causes.get(code),
    report(code) {
      const cause = causes.get(code);
      if (cause === undefined || !log) return;
      const t = now();
      if ((lastLogged.get(code) ?? -Infinity) + FAULT_LOG_EVERY_MS > t) return;
      lastLogged.set(code, t);
      const numeric = /^-?\d{1,15}$/.test(code) ? Number(code) : code;
      log.error({ upstream, code: numeric, likelyCause: cause }, `${upstream}: configuration fault ${code}: ${cause}`);
    },
  };
}
