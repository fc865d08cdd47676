/** The mutable world of one KeySecure simulator instance: Api-Keys, tokens, cardholders, cards. */
import { randomBytes } from 'node:crypto';
import { ControlError } from '../control.js';

export const LOOPBACK_WHITELIST: readonly string[] = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

export interface ApiKeyRecord {
  apiKey: string;
  apiSecret: string | undefined;
  whitelist: string[];
}

export interface AccessTokenRecord {
  apiKey: string;
  expiresAtMs: number;
  revoked: boolean;
}

export interface Cardholder {
  cardholder_no: string;
  cardholder_unique_no: string;
  status: string;
  create_time: number;
}

export interface Card {
  card_no: string;
  card_unique_no: string;
  cardholder_no: string;
  card_type: 'Virtual' | 'Physical';
  card_bin_no: string | null;
  package_no: string | null;
  status: string;
  currency: string;
  create_time: number;
}

/** Per Api-Key business data (each key is one merchant account). */
export interface Account {
  cardholders: Map<string, Cardholder>;
  cards: Map<string, Card>;
  sequence: number;
}

export class KeySecureState {
  readonly keys = new Map<string, ApiKeyRecord>();
  readonly tokens = new Map<string, AccessTokenRecord>();
  readonly accounts = new Map<string, Account>();
  tokenCalls = 0;

  constructor(readonly tokenLifetimeMs: number, readonly timestampWindowMs: number) {}

  addKey(apiKey: string, apiSecret: string | undefined, whitelist: readonly string[] | undefined): void {
    if (typeof apiKey !== 'string' || apiKey === '') throw new TypeError('apiKeys[].apiKey must be a non-empty string');
    if (this.keys.has(apiKey)) throw new TypeError(`duplicate apiKey ${apiKey}`);
    this.keys.set(apiKey, { apiKey, apiSecret, whitelist: [...(whitelist ?? LOOPBACK_WHITELIST)] });
    this.accounts.set(apiKey, { cardholders: new Map(), cards: new Map(), sequence: 0 });
  }

  key(apiKey: string): ApiKeyRecord {
    const rec = this.keys.get(apiKey);
    if (!rec) throw new ControlError(404, `unknown apiKey ${JSON.stringify(apiKey)}`);
    return rec;
  }

  account(apiKey: string): Account {
    const acc = this.accounts.get(apiKey);
    if (!acc) throw new Error(`no account for ${apiKey}`);
    return acc;
  }

  /** Issues a new token; earlier tokens of the key stay valid until they expire. */
  issueToken(apiKey: string, now: number): { access_token: string; expired_time: number } {
    const token = randomBytes(24).toString('hex');
    const expiresAtMs = now + this.tokenLifetimeMs;
    this.tokens.set(token, { apiKey, expiresAtMs, revoked: false });
    return { access_token: token, expired_time: expiresAtMs };
  }

  /** Tokens of one key (or of every key) that match. */
  #tokensOf(apiKey: string | undefined): AccessTokenRecord[] {
    if (apiKey !== undefined) this.key(apiKey);
    return [...this.tokens.values()].filter((t) => apiKey === undefined || t.apiKey === apiKey);
  }

  revokeTokens(apiKey: string | undefined): void {
    for (const t of this.#tokensOf(apiKey)) t.revoked = true;
  }

  expireTokens(apiKey: string | undefined, now: number): void {
    for (const t of this.#tokensOf(apiKey)) t.expiresAtMs = Math.min(t.expiresAtMs, now);
  }

  setWhitelist(apiKey: string, ips: readonly string[]): void {
    if (!Array.isArray(ips) || !ips.every((ip) => typeof ip === 'string')) throw new TypeError('setWhitelist: ips must be an array of strings');
    this.key(apiKey).whitelist = [...ips];
  }

  nextNumber(apiKey: string, prefix: string, now: number): string {
    const acc = this.account(apiKey);
    acc.sequence++;
    const day = new Date(now).toISOString().slice(0, 10).replaceAll('-', '');
    return `${prefix}${day}${String(acc.sequence).padStart(6, '0')}`;
  }
}
