import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Recorded } from './recording-upstream.js';

/**
 * Signature checks written from each vendor's documentation, as the vendor's server would do
 * them: they share no code with src/provider. Each takes a request as it arrived on the wire.
 */

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function queryOf(rec: Recorded): { path: string; params: URLSearchParams } {
  const u = new URL(rec.url, 'http://upstream.invalid');
  return { path: u.pathname, params: u.searchParams };
}

/** Sorted by name (byte order of the names, which are ASCII here), concatenated name+value. */
function concatSorted(entries: Array<[string, string]>): string {
  return entries
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => k + v)
    .join('');
}

/**
 * Lazada Open Platform "Signature algorithm": sort every system and business parameter except
 * `sign`, concatenate name+value, prefix the API name (path), HMAC-SHA256 with the app secret,
 * upper-case hex. `basePath` is the part of the URL before the API name (e.g. /rest).
 */
export function lazadaSignatureOk(rec: Recorded, secret: string, basePath: string): boolean {
  const { path, params } = queryOf(rec);
  const api = path.slice(basePath.length);
  const entries = [...params].filter(([k]) => k !== 'sign');
  const expected = createHmac('sha256', secret).update(api + concatSorted(entries), 'utf8').digest('hex').toUpperCase();
  return same(params.get('sign') ?? '', expected);
}

/**
 * TikTok Shop "Sign your API request" (202309): query parameters except sign and access_token,
 * sorted, name+value; path first; body appended unless multipart; wrapped in the secret;
 * HMAC-SHA256 keyed by the secret; lower-case hex.
 */
export function tiktokSignatureOk(rec: Recorded, secret: string): boolean {
  const { path, params } = queryOf(rec);
  const entries = [...params].filter(([k]) => k !== 'sign' && k !== 'access_token');
  const multipart = String(rec.headers['content-type'] ?? '').startsWith('multipart/');
  const input = secret + path + concatSorted(entries) + (multipart ? '' : rec.body) + secret;
  const expected = createHmac('sha256', secret).update(input, 'utf8').digest('hex');
  return same(params.get('sign') ?? '', expected);
}

/**
 * Taobao TOP "API call": every parameter except sign (empty values skipped), sorted,
 * name+value. md5: MD5(secret + s + secret); hmac: HMAC-MD5(secret, s). Upper-case hex.
 */
export function taobaoSignatureOk(rec: Recorded, secret: string): boolean {
  const { params } = queryOf(rec);
  const all: Array<[string, string]> = [...params];
  if (String(rec.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) all.push(...new URLSearchParams(rec.body));
  const entries = all.filter(([k, v]) => k !== 'sign' && v !== '');
  const s = concatSorted(entries);
  const method = all.find(([k]) => k === 'sign_method')?.[1];
  const expected = (method === 'hmac' ? createHmac('md5', secret).update(s, 'utf8') : createHash('md5').update(secret + s + secret, 'utf8')).digest('hex').toUpperCase();
  return same(all.find(([k]) => k === 'sign')?.[1] ?? '', expected);
}
