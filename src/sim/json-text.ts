/**
 * Writing response JSON text without routing exact numbers through JavaScript numbers.
 *
 * A `RawJson` value is inserted into the output verbatim, so an int64 id such as
 * `9007199254740993` or an amount such as `12.50` leaves the simulator exactly as written.
 */
export class RawJson {
  constructor(readonly text: string) {}
}

/** A JSON number written exactly as `lexeme` (must already be valid JSON number text). */
export function rawNumber(lexeme: string): RawJson {
  if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(lexeme)) {
    throw new Error(`rawNumber: not a JSON number: ${lexeme}`);
  }
  return new RawJson(lexeme);
}

/**
 * Compact JSON text of `value`. Plain objects keep insertion order, `undefined` members are
 * left out (as JSON.stringify does), `RawJson` is written verbatim.
 */
export function toJsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new Error(`toJsonText: non-finite number ${value}`);
      return JSON.stringify(value);
    case 'bigint':
      return value.toString();
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((item) => (item === undefined ? 'null' : toJsonText(item))).join(',')}]`;
      }
      const parts: string[] = [];
      for (const [key, member] of Object.entries(value as Record<string, unknown>)) {
        if (member === undefined) continue;
        parts.push(`${JSON.stringify(key)}:${toJsonText(member)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new Error(`toJsonText: cannot serialise a ${typeof value}`);
  }
}
