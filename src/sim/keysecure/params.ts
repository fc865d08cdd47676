/** Reading KeySecure request bodies; every failure is 1004 naming the snake_case field. */
import { KEYSECURE_CODES, KeySecureSimError } from './codes.js';

export type Body = Record<string, unknown>;

export function invalid(field: string, detail: string): never {
  throw new KeySecureSimError(KEYSECURE_CODES.INVALID_PARAMETER, field, detail);
}

export function optionalString(body: Body, field: string, maxLength = 256): string | undefined {
  const v = body[field];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') invalid(field, 'must be a string');
  if (v.length > maxLength) invalid(field, `must be at most ${maxLength} characters`);
  return v;
}

export function requireString(body: Body, field: string, maxLength = 256): string {
  const v = optionalString(body, field, maxLength);
  if (v === undefined) invalid(field, 'must not be blank');
  return v;
}

export function requireOneOf<T extends string>(body: Body, field: string, allowed: readonly T[]): T {
  const v = requireString(body, field);
  if (!(allowed as readonly string[]).includes(v)) invalid(field, `must be one of ${allowed.join(', ')}`);
  return v as T;
}

export function optionalInt(body: Body, field: string, min: number, max: number, fallback: number): number {
  const v = body[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v)) invalid(field, 'must be an integer');
  if (v < min || v > max) invalid(field, `must be between ${min} and ${max}`);
  return v;
}

export function requireObject(body: Body, field: string): Body {
  const v = body[field];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid(field, 'must be an object');
  return v as Body;
}
