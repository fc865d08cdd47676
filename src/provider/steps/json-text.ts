/**
 * Lexeme-preserving JSON (RFC 8259, strict) parser and compact serialiser.
 *
 * Why not JSON.parse: on the Keeta signing path a JavaScript number must never stand for a
 * JSON number (int64 IDs, `12.50`, `1E+5` must be signed and forwarded exactly as written),
 * and object key order must be kept exactly, including integer-like keys that plain JS
 * objects would move to the front. So:
 *
 * - numbers are kept as their source lexeme (`{ kind: 'number', lexeme: '12.50' }`);
 * - objects are an ordered array of `[key, value]` entries, never a JS object;
 * - strings are decoded to their JS value (all escapes resolved; `\uD83D\uDE00` pairs join
 *   naturally; an escaped lone surrogate is kept as a lone UTF-16 unit).
 *
 * Strictness: no trailing commas, no comments, no leading zeros, no NaN/Infinity, no
 * single quotes, only the standard escapes, no raw control characters in strings, no BOM,
 * whitespace only between tokens (space, tab, LF, CR), nothing but whitespace after the
 * value. Duplicate keys in any object are rejected (the upstream would keep only one of
 * them and the signature would be ambiguous). Nesting deeper than `maxDepth` (default 200)
 * is rejected before it can exhaust the stack.
 *
 * `toCompactText` trusts the nodes it is given: a number node's lexeme is emitted verbatim
 * (use `jsonNumber` to build one from untrusted text), and string nodes are escaped exactly
 * as `JSON.stringify` escapes them.
 *
 * Caches (performance): when the source text of a string, array or object is already in
 * compact canonical form (no whitespace between tokens, no escapes, no lone surrogates), its
 * compact text is exactly that source slice; the parser stores it in the node's `json` field
 * and `toCompactText` returns it instead of rebuilding. So a compact body costs almost nothing
 * to re-serialise. The consequence: NODES ARE IMMUTABLE (all fields are `readonly`; to change
 * a body, build new nodes). Hand-built nodes simply leave `json` undefined.
 */

export interface JsonStringNode {
  readonly kind: 'string';
  readonly value: string;
  /** Optional cache of `quoteJsonString(value)` (see "Caches" above). */
  readonly json?: string | undefined;
}
export interface JsonNumberNode {
  readonly kind: 'number';
  /** The number exactly as written in the source text, e.g. `1234567890123456789`, `-0`, `1E+5`. */
  readonly lexeme: string;
}
export interface JsonBooleanNode {
  readonly kind: 'boolean';
  readonly value: boolean;
}
export interface JsonNullNode {
  readonly kind: 'null';
}
export interface JsonArrayNode {
  readonly kind: 'array';
  readonly items: readonly JsonNode[];
  /** Optional cache of this node's compact text (see "Caches" above). */
  readonly json?: string | undefined;
}
export interface JsonObjectNode {
  readonly kind: 'object';
  /** Entries in source order. Keys are unique in anything `parseJsonText` returns. */
  readonly entries: ReadonlyArray<readonly [string, JsonNode]>;
  /** Optional cache of this node's compact text (see "Caches" above). */
  readonly json?: string | undefined;
}
export type JsonNode =
  | JsonStringNode
  | JsonNumberNode
  | JsonBooleanNode
  | JsonNullNode
  | JsonArrayNode
  | JsonObjectNode;

export const DEFAULT_MAX_DEPTH = 200;

export interface ParseOptions {
  /** Maximum nesting of arrays/objects; the top-level container is depth 1. Default 200. */
  maxDepth?: number;
}

/** A syntax error; `position` is the UTF-16 index in the input where the problem is. */
export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
  readonly position: number;
  constructor(what: string, position: number) {
    super(`${what} at position ${position}`);
    this.position = position;
  }
}

const NULL_NODE: JsonNullNode = Object.freeze({ kind: 'null' });
const TRUE_NODE: JsonBooleanNode = Object.freeze({ kind: 'boolean', value: true });
const FALSE_NODE: JsonBooleanNode = Object.freeze({ kind: 'boolean', value: false });

/** Above this many entries an object's duplicate-key check switches from a linear scan to a Set. */
const LINEAR_DUP_SCAN_LIMIT = 16;

/** Describe one input character without echoing more than that character. */
function describeChar(text: string, pos: number): string {
  if (pos >= text.length) return 'end of input';
  const c = text.charCodeAt(pos);
  if (c > 0x20 && c < 0x7f) return `character '${text[pos]}'`;
  return `character U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

class Parser {
  pos = 0;
  /**
   * Bumped whenever the text just parsed is not in compact canonical form (whitespace skipped,
   * an escape or a lone surrogate in a string). A container whose parse leaves it unchanged is
   * canonical, and its source slice is its compact text.
   */
  private dirty = 0;
  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  parseDocument(): JsonNode {
    this.skipWhitespace();
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos < this.text.length) throw this.unexpected('after the JSON value');
    return value;
  }

  private unexpected(context: string): JsonSyntaxError {
    return new JsonSyntaxError(`unexpected ${describeChar(this.text, this.pos)} ${context}`, this.pos);
  }

  private skipWhitespace(): void {
    const t = this.text;
    let p = this.pos;
    const len = t.length;
    while (p < len) {
      const c = t.charCodeAt(p);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    if (p !== this.pos) {
      this.dirty++;
      this.pos = p;
    }
  }

  /** Parses the value at `pos` (whitespace already skipped); `depth` = enclosing containers. */
  private parseValue(depth: number): JsonNode {
    const t = this.text;
    const c = t.charCodeAt(this.pos);
    switch (c) {
      case 0x22: // "
        return this.parseStringNode();
      case 0x7b: // {
        return this.parseObject(depth + 1);
      case 0x5b: // [
        return this.parseArray(depth + 1);
      case 0x74: // t
        this.expectWord('true');
        return TRUE_NODE;
      case 0x66: // f
        this.expectWord('false');
        return FALSE_NODE;
      case 0x6e: // n
        this.expectWord('null');
        return NULL_NODE;
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        throw this.unexpected('where a value was expected');
    }
  }

  private expectWord(word: string): void {
    if (!this.text.startsWith(word, this.pos)) {
      throw new JsonSyntaxError(`invalid literal (expected '${word}')`, this.pos);
    }
    this.pos += word.length;
  }

  private parseNumber(): JsonNumberNode {
    const t = this.text;
    const start = this.pos;
    let p = start;
    let c = t.charCodeAt(p);
    if (c === 0x2d) c = t.charCodeAt(++p); // -
    if (c === 0x30) {
      c = t.charCodeAt(++p);
      if (c >= 0x30 && c <= 0x39) throw new JsonSyntaxError('number with a leading zero', start);
    } else if (c >= 0x31 && c <= 0x39) {
      do c = t.charCodeAt(++p);
      while (c >= 0x30 && c <= 0x39);
    } else {
      throw new JsonSyntaxError('invalid number (a digit must follow the sign)', p);
    }
    if (c === 0x2e) {
      // .
      c = t.charCodeAt(++p);
      if (!(c >= 0x30 && c <= 0x39)) throw new JsonSyntaxError('invalid number (a digit must follow the decimal point)', p);
      do c = t.charCodeAt(++p);
      while (c >= 0x30 && c <= 0x39);
    }
    if (c === 0x65 || c === 0x45) {
      // e E
      c = t.charCodeAt(++p);
      if (c === 0x2b || c === 0x2d) c = t.charCodeAt(++p);
      if (!(c >= 0x30 && c <= 0x39)) throw new JsonSyntaxError('invalid number (a digit must follow the exponent)', p);
      do c = t.charCodeAt(++p);
      while (c >= 0x30 && c <= 0x39);
    }
    this.pos = p;
    return { kind: 'number', lexeme: t.slice(start, p) };
  }

  /**
   * A string value node. A literal without escapes or lone surrogates is canonical: its
   * source text (quotes included) is exactly `JSON.stringify(value)`, because `"`, `\\` and
   * control characters cannot occur raw in it; keep that as the node's `json`.
   */
  private parseStringNode(): JsonStringNode {
    const open = this.pos;
    const mark = this.dirty;
    const value = this.parseString();
    if (this.dirty !== mark) return { kind: 'string', value, json: undefined };
    return { kind: 'string', value, json: this.text.slice(open, this.pos) };
  }

  /**
   * Parses the string whose opening quote is at `pos`; returns its decoded value. Bumps
   * `dirty` if the literal is not canonical (has an escape or a lone surrogate).
   */
  private parseString(): string {
    const t = this.text;
    const len = t.length;
    const open = this.pos;
    let p = open + 1;
    // Fast path: no escapes, the value is a slice of the input.
    for (;;) {
      if (p >= len) throw new JsonSyntaxError('unterminated string', open);
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return t.slice(open + 1, p);
      }
      if (c === 0x5c) break;
      if (c < 0x20) throw new JsonSyntaxError('unescaped control character in string', p);
      if ((c & 0xf800) === 0xd800) {
        // surrogate: a valid pair is canonical (JSON.stringify keeps it raw), a lone one is not
        const d = t.charCodeAt(p + 1);
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) p++;
        else this.dirty++;
      }
      p++;
    }
    // Slow path: at least one escape.
    this.dirty++;
    let out = t.slice(open + 1, p);
    let chunk = p;
    for (;;) {
      if (p >= len) throw new JsonSyntaxError('unterminated string', open);
      const c = t.charCodeAt(p);
      if (c === 0x22) {
        this.pos = p + 1;
        return out + t.slice(chunk, p);
      }
      if (c === 0x5c) {
        out += t.slice(chunk, p);
        const e = t.charCodeAt(p + 1);
        switch (e) {
          case 0x22: out += '"'; break;
          case 0x5c: out += '\\'; break;
          case 0x2f: out += '/'; break;
          case 0x62: out += '\b'; break;
          case 0x66: out += '\f'; break;
          case 0x6e: out += '\n'; break;
          case 0x72: out += '\r'; break;
          case 0x74: out += '\t'; break;
          case 0x75: {
            // u: exactly four hex digits
            const h0 = hexValue(t.charCodeAt(p + 2));
            const h1 = hexValue(t.charCodeAt(p + 3));
            const h2 = hexValue(t.charCodeAt(p + 4));
            const h3 = hexValue(t.charCodeAt(p + 5));
            if ((h0 | h1 | h2 | h3) < 0) throw new JsonSyntaxError('invalid \\u escape (four hex digits required)', p);
            out += String.fromCharCode((h0 << 12) | (h1 << 8) | (h2 << 4) | h3);
            p += 4;
            break;
          }
          default:
            if (p + 1 >= len) throw new JsonSyntaxError('unterminated string', open);
            throw new JsonSyntaxError('invalid escape sequence in string', p);
        }
        p += 2;
        chunk = p;
        continue;
      }
      if (c < 0x20) throw new JsonSyntaxError('unescaped control character in string', p);
      p++;
    }
  }

  private parseArray(depth: number): JsonArrayNode {
    if (depth > this.maxDepth) throw new JsonSyntaxError(`nesting deeper than ${this.maxDepth}`, this.pos);
    const t = this.text;
    const open = this.pos;
    const mark = this.dirty;
    this.pos++; // [
    const items: JsonNode[] = [];
    this.skipWhitespace();
    if (t.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return { kind: 'array', items, json: this.dirty === mark ? '[]' : undefined };
    }
    for (;;) {
      items.push(this.parseValue(depth));
      this.skipWhitespace();
      const c = t.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWhitespace();
        continue;
      }
      if (c === 0x5d) {
        this.pos++;
        return { kind: 'array', items, json: this.dirty === mark ? t.slice(open, this.pos) : undefined };
      }
      throw this.unexpected("in array (expected ',' or ']')");
    }
  }

  private parseObject(depth: number): JsonObjectNode {
    if (depth > this.maxDepth) throw new JsonSyntaxError(`nesting deeper than ${this.maxDepth}`, this.pos);
    const t = this.text;
    const open = this.pos;
    const mark = this.dirty;
    this.pos++; // {
    const entries: Array<[string, JsonNode]> = [];
    this.skipWhitespace();
    if (t.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return { kind: 'object', entries, json: this.dirty === mark ? '{}' : undefined };
    }
    let keySet: Set<string> | undefined;
    for (;;) {
      if (t.charCodeAt(this.pos) !== 0x22) throw this.unexpected('in object (expected a string key)');
      const keyPos = this.pos;
      const key = this.parseString();
      if (keySet !== undefined) {
        if (keySet.has(key)) throw new JsonSyntaxError('duplicate object key', keyPos);
        keySet.add(key);
      } else {
        for (let i = 0; i < entries.length; i++) {
          if ((entries[i] as [string, JsonNode])[0] === key) throw new JsonSyntaxError('duplicate object key', keyPos);
        }
        if (entries.length >= LINEAR_DUP_SCAN_LIMIT) {
          keySet = new Set();
          for (const e of entries) keySet.add(e[0]);
          keySet.add(key);
        }
      }
      this.skipWhitespace();
      if (t.charCodeAt(this.pos) !== 0x3a) throw this.unexpected("in object (expected ':')");
      this.pos++;
      this.skipWhitespace();
      entries.push([key, this.parseValue(depth)]);
      this.skipWhitespace();
      const c = t.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWhitespace();
        continue;
      }
      if (c === 0x7d) {
        this.pos++;
        return { kind: 'object', entries, json: this.dirty === mark ? t.slice(open, this.pos) : undefined };
      }
      throw this.unexpected("in object (expected ',' or '}')");
    }
  }
}

/** Parses strict RFC 8259 JSON text. Throws `JsonSyntaxError`. */
export function parseJsonText(text: string, options?: ParseOptions): JsonNode {
  return new Parser(text, options?.maxDepth ?? DEFAULT_MAX_DEPTH).parseDocument();
}

/** True if `s` contains a UTF-16 surrogate that is not part of a valid pair (no UTF-8 form). */
export function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c & 0xf800) !== 0xd800) continue;
    if (c >= 0xdc00) return true; // low surrogate without a high one
    const d = s.charCodeAt(i + 1);
    if (!(d >= 0xdc00 && d <= 0xdfff)) return true; // high surrogate without a low one
    i++;
  }
  return false;
}

/** Characters that `JSON.stringify` escapes: `"`, `\`, C0 controls, and (possibly lone) surrogates. */
const NEEDS_QUOTING_WORK = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A string as a JSON string literal, byte-identical to `JSON.stringify(value)`: `"` `\`
 * and control characters escaped (`\b\f\n\r\t`, others `\u00xx`), `/` and non-ASCII raw,
 * lone surrogates as `\udxxx`.
 */
export function quoteJsonString(value: string): string {
  return NEEDS_QUOTING_WORK.test(value) ? JSON.stringify(value) : '"' + value + '"';
}

/** Compact JSON text: no whitespace, key order kept, numbers as their lexeme. */
export function toCompactText(node: JsonNode): string {
  switch (node.kind) {
    case 'string':
      return node.json ?? quoteJsonString(node.value);
    case 'number':
      return node.lexeme;
    case 'boolean':
      return node.value ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'array': {
      if (node.json !== undefined) return node.json;
      const items = node.items;
      if (items.length === 0) return '[]';
      let s = '[' + toCompactText(items[0] as JsonNode);
      for (let i = 1; i < items.length; i++) s += ',' + toCompactText(items[i] as JsonNode);
      return s + ']';
    }
    case 'object': {
      if (node.json !== undefined) return node.json;
      const entries = node.entries;
      if (entries.length === 0) return '{}';
      let s = '{';
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i] as readonly [string, JsonNode];
        if (i > 0) s += ',';
        s += quoteJsonString(e[0]) + ':' + toCompactText(e[1]);
      }
      return s + '}';
    }
  }
}

/** The value of `key` in an object node (first match), or undefined. */
export function getField(obj: JsonObjectNode, key: string): JsonNode | undefined {
  const entries = obj.entries;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as readonly [string, JsonNode];
    if (e[0] === key) return e[1];
  }
  return undefined;
}

// ---- Node constructors for callers that build bodies in code (e.g. the token refresher) ----

const NUMBER_LEXEME = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/** True if `lexeme` is a valid RFC 8259 number. */
export function isJsonNumberLexeme(lexeme: string): boolean {
  return NUMBER_LEXEME.test(lexeme);
}

export function jsonString(value: string): JsonStringNode {
  return { kind: 'string', value, json: undefined };
}

/**
 * A number node. Pass a lexeme string (validated; kept exactly) or a JS number (must be a
 * safe integer, so no precision can be lost).
 */
export function jsonNumber(value: string | number): JsonNumberNode {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError('jsonNumber: a JS number must be a safe integer; pass the lexeme as a string');
    return { kind: 'number', lexeme: String(value) };
  }
  if (!NUMBER_LEXEME.test(value)) throw new RangeError('jsonNumber: not a valid JSON number lexeme');
  return { kind: 'number', lexeme: value };
}

export function jsonObject(entries: ReadonlyArray<readonly [string, JsonNode]>): JsonObjectNode {
  return { kind: 'object', entries, json: undefined };
}
