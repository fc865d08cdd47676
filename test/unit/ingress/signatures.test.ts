import test from 'ava';
import { createHash, createHmac } from 'node:crypto';
import { callbackSignatureMatches, callbackSignText, callbackSignature } from '../../../src/ingress/callback-signature.js';
import { matchingRecipe, sortedParams } from '../../../src/ingress/webhook-signature.js';
import { parseJsonText, type JsonObjectNode } from '../../../src/provider/steps/json-text.js';

const obj = (text: string) => parseJsonText(text) as JsonObjectNode;

// docs/protocols.md 2.5, the derived vector.
const VECTOR_DATA = '{"card_no":"C202605220001","before_status":"Activated","after_status":"Frozen","reason":"merchant request","time":1716307200000}';
const VECTOR_STRING =
  'after_status=Frozen&appId=demo_app_id&before_status=Activated&card_no=C202605220001&reason=merchant request&time=1716307200000&timestamp=1716307200000';
const VECTOR_SIG = '365664c882b7b44a0371b9dcd6d6a7b861572928c29ae090e7747324da93a72c';

test('the KeySecure derived vector of docs/protocols.md 2.5 verifies', (t) => {
  const text = callbackSignText('demo_app_id', '1716307200000', obj(VECTOR_DATA));
  t.is(text, VECTOR_STRING);
  t.is(callbackSignature('demo_secret', text), VECTOR_SIG);
  t.true(callbackSignatureMatches('demo_secret', text, VECTOR_SIG));
  t.true(callbackSignatureMatches('demo_secret', text, VECTOR_SIG.toUpperCase()));
});

test('a tampered field, another secret, appId or timestamp fail the KeySecure signature', (t) => {
  const tampered = VECTOR_DATA.replace('"Frozen"', '"Activated"');
  t.false(callbackSignatureMatches('demo_secret', callbackSignText('demo_app_id', '1716307200000', obj(tampered)), VECTOR_SIG));
  t.false(callbackSignatureMatches('other_secret', VECTOR_STRING, VECTOR_SIG));
  t.false(callbackSignatureMatches('demo_secret', callbackSignText('other_app', '1716307200000', obj(VECTOR_DATA)), VECTOR_SIG));
  t.false(callbackSignatureMatches('demo_secret', callbackSignText('demo_app_id', '1716307200001', obj(VECTOR_DATA)), VECTOR_SIG));
  t.false(callbackSignatureMatches('demo_secret', VECTOR_STRING, 'not-hex'));
});

test('KeySecure: nulls are skipped, non-strings are their compact JSON as received, numbers keep their lexeme', (t) => {
  const data = obj('{"amount": 12.50, "remark": null, "merchant_info": {"merchant_name": "A&B", "city": "HK"}, "fee_detail": [{"fee_type":"x","amount":1.0}], "ok": true, "empty": ""}');
  t.is(
    callbackSignText('app', '1', data),
    'amount=12.50&appId=app&empty=&fee_detail=[{"fee_type":"x","amount":1.0}]&merchant_info={"merchant_name":"A&B","city":"HK"}&ok=true&timestamp=1',
  );
  // Computed independently with node:crypto over the expected string.
  const expected = createHmac('sha256', 's').update('amount=12.50&appId=app&empty=&fee_detail=[{"fee_type":"x","amount":1.0}]&merchant_info={"merchant_name":"A&B","city":"HK"}&ok=true&timestamp=1').digest('hex');
  t.is(callbackSignature('s', callbackSignText('app', '1', data)), expected);
});

const WEBHOOK = '{"sig":"x","eventId":1002,"appId":3762772727,"messageId":"1930106161957212198","shopId":9007199254740993,"message":"{\\"orderViewId\\":553440887574627,\\"status\\":30}","timestamp":1749008143}';
const SORTED = 'appId=3762772727&eventId=1002&message={"orderViewId":553440887574627,"status":30}&messageId=1930106161957212198&shopId=9007199254740993&timestamp=1749008143';
const OWN = 'https://hooks.example.com/hooks/keeta';
const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

test('webhook fields other than sig are sorted, int64 kept exact, message as the raw string', (t) => {
  t.is(sortedParams(obj(WEBHOOK)), SORTED);
});

test('each candidate recipe is recognised, and only when it is configured', (t) => {
  const all = ['url-query', 'url-concat', 'sorted', 'query'] as const;
  const sigs = {
    'url-query': sha(`${OWN}?${SORTED}secret`),
    'url-concat': sha(`${OWN}${SORTED}secret`),
    sorted: sha(`${SORTED}secret`),
    query: sha(`?${SORTED}secret`),
  };
  for (const recipe of all) {
    t.is(matchingRecipe(all, OWN, obj(WEBHOOK), sigs[recipe], 'secret'), recipe, recipe);
    t.is(matchingRecipe(all.filter((r) => r !== recipe), OWN, obj(WEBHOOK), sigs[recipe], 'secret'), undefined, `${recipe} not configured`);
    t.is(matchingRecipe(all, OWN, obj(WEBHOOK), sigs[recipe], 'other-secret'), undefined, `${recipe} with another secret`);
  }
  t.is(matchingRecipe(all, OWN, obj(WEBHOOK.replace('"status\\":30', '"status\\":50')), sigs['url-query'], 'secret'), undefined, 'a changed message');
  t.is(matchingRecipe(all, `${OWN}/`, obj(WEBHOOK), sigs['url-query'], 'secret'), undefined, 'another own URL');
  t.is(matchingRecipe(all, OWN, obj(WEBHOOK), 'zz', 'secret'), undefined);
});
