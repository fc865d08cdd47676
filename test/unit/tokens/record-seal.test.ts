import { createSecretKey, randomBytes } from 'node:crypto';
import test from 'ava';
import { Keyring } from '../../../src/tokens/keyring.js';
import { openRecord, RECORD_FORMAT, sealRecord, type SealedRecord } from '../../../src/tokens/record-seal.js';
import type { TokenRecord } from '../../../src/tokens/types.js';
import { tokenForms } from '../../helpers/store-keys.js';

const key = (id: string) => ({ id, keyFile: `/keys/${id}`, key: createSecretKey(randomBytes(32)) });

function rec(over: Partial<TokenRecord> = {}): TokenRecord {
  return {
    upstream: 'keeta',
    merchant: 'm1',
    accessToken: 'access-token-AbC123-secret',
    refreshToken: 'refresh-token-XyZ789-secret',
    issuedAt: 1_700_000_000_000,
    expiresAt: 1_707_776_000_000,
    refreshedAt: 1_700_000_000_000,
    shopIds: ['466663'],
    ...over,
  };
}

test('a sealed record holds no token in any form, carries its format and key, and opens to the same record', (t) => {
  const ring = new Keyring({ keys: [key('k2')], plaintext: 'migrate' });
  const r = rec();
  const sealed = sealRecord(ring, r) as SealedRecord;
  const text = JSON.stringify(sealed);
  for (const form of tokenForms([r])) t.false(text.includes(form), form);
  t.is(sealed.v, RECORD_FORMAT);
  t.is(sealed.key, 'k2');
  t.is(sealed.issuedAt, r.issuedAt);
  t.is(Buffer.from(sealed.iv, 'base64').length, 12);
  t.deepEqual(openRecord(ring, JSON.parse(text), 'keeta', 'm1'), { ok: true, record: r, label: 'k2', migrate: false });
});

test('every write takes a fresh nonce', (t) => {
  const ring = new Keyring({ keys: [key('k')], plaintext: 'migrate' });
  const ivs = new Set(Array.from({ length: 200 }, () => (sealRecord(ring, rec()) as SealedRecord).iv));
  t.is(ivs.size, 200);
});

test('a record copied under another merchant or upstream does not open, even with its names edited to match', (t) => {
  const ring = new Keyring({ keys: [key('k')], plaintext: 'migrate' });
  const sealed = sealRecord(ring, rec()) as SealedRecord;
  const copied = openRecord(ring, sealed, 'keeta', 'm2');
  t.deepEqual(copied, { ok: false, reason: 'it names another upstream or merchant' });
  // Edited so its clear names match the key it was copied under: the associated data refuses it.
  const edited = openRecord(ring, { ...sealed, merchant: 'm2' }, 'keeta', 'm2');
  t.false(edited.ok);
  // The reason says what happened, not that the key is missing (it is configured).
  t.deepEqual(edited, { ok: false, reason: 'key "k" does not open it: the record was altered, or copied from another merchant or upstream' });
  t.false(openRecord(ring, { ...sealed, upstream: 'other' }, 'other', 'm1').ok);
});

test('every key is tried on read; the first writes; an unknown key or a tampered byte does not open', (t) => {
  const old = key('k1');
  const fresh = key('k2');
  const sealedOld = sealRecord(new Keyring({ keys: [old], plaintext: 'migrate' }), rec()) as SealedRecord;
  const both = new Keyring({ keys: [fresh, old], plaintext: 'migrate' });
  const opened = openRecord(both, sealedOld, 'keeta', 'm1');
  t.true(opened.ok);
  t.is((opened as { label: string }).label, 'k1');
  // Renamed key id: still found by trying every key.
  t.is((openRecord(both, { ...sealedOld, key: 'renamed' }, 'keeta', 'm1') as { label: string }).label, 'k1');
  t.is((sealRecord(both, rec()) as SealedRecord).key, 'k2');

  const onlyNew = new Keyring({ keys: [fresh], plaintext: 'migrate' });
  const unknown = openRecord(onlyNew, sealedOld, 'keeta', 'm1');
  t.false(unknown.ok);
  t.regex((unknown as { reason: string }).reason, /no configured key opens it \(sealed with key "k1"; configured: k2\)/);

  const data = Buffer.from(sealedOld.data, 'base64');
  data[3] = data[3]! ^ 1;
  const tampered = openRecord(both, { ...sealedOld, data: data.toString('base64') }, 'keeta', 'm1');
  t.false(tampered.ok);
  t.regex((tampered as { reason: string }).reason, /^key "k1" does not open it: the record was altered/);
  t.false(openRecord(both, { ...sealedOld, issuedAt: sealedOld.issuedAt + 1 }, 'keeta', 'm1').ok, 'the clear issuedAt must match the sealed one');
});

test('format versions: an unknown one is refused; a sealed record without keys is refused', (t) => {
  const ring = new Keyring({ keys: [key('k')], plaintext: 'migrate' });
  const sealed = sealRecord(ring, rec()) as SealedRecord;
  t.deepEqual(openRecord(ring, { ...sealed, v: 2 }, 'keeta', 'm1'), { ok: false, reason: 'unsupported record format 2' });
  const none = openRecord(new Keyring(), sealed, 'keeta', 'm1');
  t.false(none.ok);
  t.regex((none as { reason: string }).reason, /no store\.encryption key is configured/);
});

test('plaintext: usable without keys; migrated under migrate; refused under refuse; malformed and misnamed ones refused', (t) => {
  const r = rec();
  t.deepEqual(openRecord(new Keyring(), r, 'keeta', 'm1'), { ok: true, record: r, label: 'plaintext', migrate: false });
  t.deepEqual(openRecord(new Keyring({ keys: [key('k')], plaintext: 'migrate' }), r, 'keeta', 'm1'), { ok: true, record: r, label: 'plaintext', migrate: true });
  t.deepEqual(openRecord(new Keyring({ keys: [key('k')], plaintext: 'refuse' }), r, 'keeta', 'm1'), { ok: false, reason: 'it is in plaintext (store.encryption.plaintext: refuse)' });
  t.deepEqual(openRecord(new Keyring(), r, 'keeta', 'other'), { ok: false, reason: 'it names another upstream or merchant' });
  const bad = openRecord(new Keyring(), { ...r, issuedAt: 'soon' }, 'keeta', 'm1');
  t.deepEqual(bad, { ok: false, reason: 'malformed: issuedAt must be a finite number' });
  t.deepEqual(openRecord(new Keyring(), [1], 'keeta', 'm1'), { ok: false, reason: 'malformed: not a JSON object' });
  t.deepEqual(sealRecord(new Keyring(), r), r, 'without keys a record is written as it always was');
});
