import type { RequestClass } from '../observability/metrics.js';
import type { Recipe } from './recipe-schema.js';
import { pick } from './steps.js';

/**
 * How a recipe sorts an upstream's answers (its `answers` section): the code field, success
 * values, classes by value or range, and the codes that ask for a token renewal or a clock
 * correction. Built once per recipe; judging an answer is a few set lookups.
 */
export interface AnswerJudge {
  /** The classes this recipe can produce (metric series are made for these only). */
  readonly classes: readonly RequestClass[];
  judge(status: number, body: Buffer): { class: RequestClass; code?: string; codeLabel?: string; tokenRejected: boolean; timestampRejected: boolean };
}

const COMMON: readonly RequestClass[] = ['success', 'upstream_http_error', 'network_error', 'timeout', 'rejected', 'unknown_error'];
/** A range of codes up to this size is labelled code by code; wider ones as `other`. */
const LABELLED_RANGE = 1000;

export function answerJudge(recipe: Recipe): AnswerJudge {
  const a = recipe.answers;
  const success = new Set(a.success);
  const byCode = new Map<string, RequestClass>();
  const ranges: Array<{ from: number; to: number; cls: RequestClass }> = [];
  for (const rule of a.classes) {
    for (const c of rule.codes ?? []) if (!byCode.has(c)) byCode.set(c, rule.class);
    if (rule.from !== undefined && rule.to !== undefined) ranges.push({ from: rule.from, to: rule.to, cls: rule.class });
  }
  const tokenRejected = new Set(a.tokenRejected);
  const timestampRejected = new Set(a.timestampRejected);
  const labelled = new Set([...success, ...byCode.keys(), ...tokenRejected, ...timestampRejected]);
  const classes = new Set<RequestClass>([...COMMON, ...byCode.values(), ...ranges.map((r) => r.cls), a.noCode]);
  if (tokenRejected.size > 0) classes.add('auth_error');
  if (timestampRejected.size > 0) classes.add('timestamp_error');

  return {
    classes: [...classes],
    judge(status, body) {
      let parsed: unknown;
      if (body.length > 0 && body.length <= 4 * 1024 * 1024) {
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          parsed = undefined;
        }
      }
      const raw = parsed === undefined ? undefined : pick(parsed, a.code);
      if (raw === undefined || raw === null || (typeof raw !== 'string' && typeof raw !== 'number')) {
        const ok = status >= 200 && status <= 299;
        return { class: ok && parsed !== undefined ? a.noCode : ok ? 'unknown_error' : 'upstream_http_error', tokenRejected: false, timestampRejected: false };
      }
      const code = String(raw);
      let cls: RequestClass | undefined = success.has(code) ? 'success' : byCode.get(code);
      let inRange = false;
      if (cls === undefined && typeof raw === 'number') {
        for (const r of ranges) {
          if (raw >= r.from && raw <= r.to) {
            cls = r.cls;
            inRange = r.to - r.from < LABELLED_RANGE;
            break;
          }
        }
      }
      const tr = tokenRejected.has(code);
      const ts = timestampRejected.has(code);
      cls ??= tr ? 'auth_error' : ts ? 'timestamp_error' : 'unknown_error';
      return { class: cls, code, codeLabel: labelled.has(code) || inRange ? code : 'other', tokenRejected: tr, timestampRejected: ts };
    },
  };
}
