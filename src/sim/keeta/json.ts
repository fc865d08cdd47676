/**
 * The Keeta simulator's own lexeme-preserving JSON parser (RFC 8259, strict).
 *
 * - numbers keep their exact text (`1234567890123456789`, `12.50`, `1e3` stay as written);
 * - object members keep the order they were sent in;
 * - strings are decoded (escapes resolved);
 * - a repeated key in any object is an error (`DuplicateKeyError`);
 * - anything RFC 8259 does not allow (trailing commas, comments, single quotes, leading
 *   zeros, raw control characters in strings, trailing garbage) is a `JsonSyntaxError`.
 *
 * Deliberately independent of the proxy's own JSON code.
 */

export type JsonValue =
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'number'; readonly lexeme: string }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'null' }
  | JsonObject
  | { readonly type: 'array'; readonly items: readonly JsonValue[] };

export interface JsonObject {
  readonly type: 'object';
  readonly entries: ReadonlyArray<readonly [string, JsonValue]>;
}

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at offset ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

export class DuplicateKeyError extends Error {
  constructor(
    readonly key: string,
    readonly path: string,
  ) {
    super(`duplicate key ${JSON.stringify(key)} in object at ${path}`);
    this.name = 'DuplicateKeyError';
  }
}

const MAX_DEPTH = 256;
const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

export function parseJson(text: string): JsonValue {
  const parser = new Parser(text);
  parser.skipWhitespace();
  const value = parser.parseValue(0, '$');
  parser.skipWhitespace();
  if (parser.pos !== text.length) parser.fail('unexpected data after the JSON value');
  return value;
}

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  fail(message: string): never {
    throw new JsonSyntaxError(message, this.pos);
  }

  skipWhitespace(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else break;
    }
  }

  parseValue(depth: number, path: string): JsonValue {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.parseObject(depth, path);
      case '[':
        return this.parseArray(depth, path);
      case '"':
        return { type: 'string', value: this.parseString() };
      case 't':
        this.expectWord('true');
        return { type: 'boolean', value: true };
      case 'f':
        this.expectWord('false');
        return { type: 'boolean', value: false };
      case 'n':
        this.expectWord('null');
        return { type: 'null' };
      case undefined:
        return this.fail('unexpected end of input');
      default:
        if (c === '-' || (c >= '0' && c <= '9')) return this.parseNumber();
        return this.fail(`unexpected character ${JSON.stringify(c)}`);
    }
  }

  private expectWord(word: string): void {
    if (!this.text.startsWith(word, this.pos)) this.fail(`expected ${word}`);
    this.pos += word.length;
  }

  private parseNumber(): JsonValue {
    NUMBER_RE.lastIndex = this.pos;
    const m = NUMBER_RE.exec(this.text);
    if (!m) return this.fail('invalid number');
    const lexeme = m[0];
    this.pos += lexeme.length;
    // A number must not run straight into more number-ish characters (e.g. `01`, `1.`).
    const next = this.text[this.pos];
    if (next !== undefined && /[0-9.eE+-]/.test(next)) this.fail('invalid number');
    return { type: 'number', lexeme };
  }

  private parseString(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = '';
    let chunkStart = this.pos;
    for (;;) {
      if (this.pos >= t.length) this.fail('unterminated string');
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        out += t.slice(chunkStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('raw control character in string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += t.slice(chunkStart, this.pos);
      const e = t[this.pos + 1];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = t.slice(this.pos + 2, this.pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.pos += 4;
          break;
        }
        default:
          this.fail('invalid escape');
      }
      this.pos += 2;
      chunkStart = this.pos;
    }
  }

  private parseObject(depth: number, path: string): JsonObject {
    this.pos++; // {
    const entries: Array<readonly [string, JsonValue]> = [];
    const seen = new Set<string>();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return { type: 'object', entries };
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail('expected a string key');
      const key = this.parseString();
      if (seen.has(key)) throw new DuplicateKeyError(key, path);
      seen.add(key);
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail('expected ":"');
      this.pos++;
      this.skipWhitespace();
      entries.push([key, this.parseValue(depth + 1, `${path}.${key}`)]);
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === '}') {
        this.pos++;
        return { type: 'object', entries };
      }
      this.fail('expected "," or "}"');
    }
  }

  private parseArray(depth: number, path: string): JsonValue {
    this.pos++; // [
    const items: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return { type: 'array', items };
    }
    for (;;) {
      this.skipWhitespace();
      items.push(this.parseValue(depth + 1, `${path}[${items.length}]`));
      this.skipWhitespace();
      const c = this.text[this.pos];
      if (c === ',') {
        this.pos++;
        continue;
      }
      if (c === ']') {
        this.pos++;
        return { type: 'array', items };
      }
      this.fail('expected "," or "]"');
    }
  }
}

/**
 * Compact JSON text: no whitespace, members in their original order, numbers as their
 * lexemes, strings escaped exactly as `JSON.stringify` escapes them.
 */
export function toCompactJson(value: JsonValue): string {
  switch (value.type) {
    case 'string':
      return JSON.stringify(value.value);
    case 'number':
      return value.lexeme;
    case 'boolean':
      return value.value ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'array':
      return `[${value.items.map(toCompactJson).join(',')}]`;
    case 'object':
      return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${toCompactJson(v)}`).join(',')}}`;
  }
}

/** The member `key` of an object, or undefined. */
export function member(obj: JsonObject, key: string): JsonValue | undefined {
  for (const [k, v] of obj.entries) if (k === key) return v;
  return undefined;
}

/**
 * Plain JavaScript view of a value, for control bodies: integers outside the safe range
 * become digit strings (so int64 ids survive), other numbers become numbers.
 */
export function toPlain(value: JsonValue): unknown {
  switch (value.type) {
    case 'string':
    case 'boolean':
      return value.value;
    case 'null':
      return null;
    case 'number': {
      const n = Number(value.lexeme);
      if (/^-?\d+$/.test(value.lexeme) && !Number.isSafeInteger(n)) return value.lexeme;
      return n;
    }
    case 'array':
      return value.items.map(toPlain);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of value.entries) {
        Object.defineProperty(out, k, { value: toPlain(v), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
  }
}
