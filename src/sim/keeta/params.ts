/**
 * Reading business parameters out of a parsed Keeta body. Every failure is a
 * PARAM_INVALID naming the field.
 */
import { KeetaSimError } from './codes.js';
import { type JsonObject, type JsonValue, member } from './json.js';
import { canonicalInt64 } from './tokens.js';

function fail(key: string, problem: string): never {
  throw new KeetaSimError('PARAM_INVALID', `${key} ${problem}`);
}

function present(body: JsonObject, key: string): JsonValue | undefined {
  const v = member(body, key);
  return v === undefined || v.type === 'null' ? undefined : v;
}

/**
 * A positive int64 id sent as a JSON integer or a digit string; returned as canonical digits.
 * Never goes through a JavaScript number.
 */
export function optionalInt64(body: JsonObject, key: string): string | undefined {
  const v = present(body, key);
  if (v === undefined) return undefined;
  const text = v.type === 'number' ? v.lexeme : v.type === 'string' ? v.value : undefined;
  const id = text === undefined ? undefined : canonicalInt64(text);
  if (id === undefined) fail(key, 'must be a positive int64');
  return id;
}

export function requireInt64(body: JsonObject, key: string): string {
  const id = optionalInt64(body, key);
  if (id === undefined) fail(key, 'is required');
  return id;
}

/** A small integer (JSON number or digit string) within [min, max]. */
export function optionalInt(body: JsonObject, key: string, min: number, max: number): number | undefined {
  const v = present(body, key);
  if (v === undefined) return undefined;
  const text = v.type === 'number' ? v.lexeme : v.type === 'string' ? v.value : '';
  if (!/^-?\d{1,15}$/.test(text)) fail(key, 'must be an integer');
  const n = Number(text);
  if (n < min || n > max) fail(key, `must be between ${min} and ${max}`);
  return n;
}

export function requireInt(body: JsonObject, key: string, min: number, max: number): number {
  const n = optionalInt(body, key, min, max);
  if (n === undefined) fail(key, 'is required');
  return n;
}

export function optionalString(body: JsonObject, key: string): string | undefined {
  const v = present(body, key);
  if (v === undefined) return undefined;
  if (v.type !== 'string') fail(key, 'must be a string');
  return v.value;
}

export function requireString(body: JsonObject, key: string): string {
  const s = optionalString(body, key);
  if (s === undefined || s === '') fail(key, 'is required');
  return s;
}

export function requireObject(body: JsonObject, key: string): JsonObject {
  const v = present(body, key);
  if (v === undefined) fail(key, 'is required');
  if (v.type !== 'object') fail(key, 'must be a JSON object');
  return v;
}

export function requireArray(body: JsonObject, key: string, minItems: number, maxItems: number): readonly JsonValue[] {
  const v = present(body, key);
  if (v === undefined) fail(key, 'is required');
  if (v.type !== 'array') fail(key, 'must be a JSON array');
  if (v.items.length < minItems || v.items.length > maxItems) fail(key, `must have ${minItems}..${maxItems} items`);
  return v.items;
}
