import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';

const CONFIG = `
upstreams:
  lz:
    type: lazada
    baseUrl: https://api.lazada.com/rest
    appKey: "123456"
    appSecret: helloworld
  tt:
    type: tiktok-shop
    baseUrl: https://open-api.tiktokglobalshop.com
    appKey: 29a39d
    appSecret: e59af819cc
  tb:
    type: taobao-top
    baseUrl: https://gw.api.taobao.com/router/rest
    appKey: "12345678"
    appSecret: helloworld
`;

function configFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-sign-recipe-'));
  const file = join(dir, 'countersign.yaml');
  writeFileSync(file, CONFIG);
  return file;
}

test('sign reproduces each preset vendor example; --path carries the query, --timestamp is rendered in the recipe unit, secrets are masked', async (t) => {
  const file = configFile();
  const lz = await runCli(['sign', '--config', file, '--upstream', 'lz', '--path', '/order/get?order_id=1234', '--access-token', 'test', '--timestamp', '1517820392']);
  t.is(lz.code, 0, lz.stderr);
  t.true(lz.stdout.includes('/order/getaccess_token<access_token>app_key123456order_id1234sign_methodsha256timestamp1517820392000'), lz.stdout);
  t.true(lz.stdout.includes('sign: 4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A'));

  const tt = await runCli(['sign', '--config', file, '--upstream', 'tt', '--path', '/authorization/202309/shops', '--timestamp', '1623812664']);
  t.is(tt.code, 0, tt.stderr);
  t.true(tt.stdout.includes('sign: b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8'), tt.stdout);
  t.true(tt.stdout.includes('<app.secret>/authorization/202309/shops'));

  // 2016-01-01 12:00:00 in UTC+8 is 1451620800.
  const tb = await runCli([
    'sign', '--config', file, '--upstream', 'tb', '--access-token', 'test', '--timestamp', '1451620800',
    '--path', '/?method=taobao.item.seller.get&fields=num_iid,title,nick,price,num&num_iid=11223344',
  ]);
  t.is(tb.code, 0, tb.stderr);
  t.true(tb.stdout.includes('sign: 66987CB115214E59E6EC978214934FB8'), tb.stdout);
  for (const out of [lz.stdout, tt.stdout, tb.stdout]) {
    t.false(out.includes('helloworld'));
    t.false(out.includes('e59af819cc'));
  }
});
