/**
 * The config-reload alert in promtool unit tests (as observability.test.ts does for the other
 * rules): it fires while a replica's last reload was refused and clears once one succeeds.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { assertBinary } from '../helpers/prometheus.js';

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; annotations?: unknown }> }>;
}

test('CountersignConfigReloadFailed fires for the replica whose last reload was refused, and clears after a good one', async (t) => {
  assertBinary('promtool', 'promtool');
  const dir = await mkdtemp(join(tmpdir(), 'countersign-reload-alert-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // promtool test compares annotations verbatim; they are templates checked elsewhere.
  const rules = parseYaml(await readFile(resolve('grafana/alerts.yaml'), 'utf8')) as RuleFile;
  for (const g of rules.groups) for (const r of g.rules) delete r.annotations;
  const rulesFile = join(dir, 'alerts.yaml');
  await writeFile(rulesFile, JSON.stringify(rules));
  const a = 'instance="a:1",job="countersign"';
  const b = 'instance="b:1",job="countersign"';
  const firingOnA = [{ exp_labels: { severity: 'warning', instance: 'a:1', job: 'countersign' } }];
  const unitTests = {
    rule_files: [rulesFile],
    evaluation_interval: '1m',
    tests: [
      {
        name: 'a refused reload alerts after a minute, per replica, until a reload succeeds',
        interval: '1m',
        input_series: [
          // a: loaded fine, a reload refused at 5m, fixed at 15m. b: fine throughout.
          { series: `countersign_config_last_reload_successful{${a}}`, values: '1x4 0x10 1x10' },
          { series: `countersign_config_last_reload_successful{${b}}`, values: '1x24' },
          { series: `countersign_config_reloads_total{result="failure",${a}}`, values: '0x4 1x20' },
        ],
        alert_rule_test: [
          { eval_time: '4m', alertname: 'CountersignConfigReloadFailed', exp_alerts: [] },
          { eval_time: '5m', alertname: 'CountersignConfigReloadFailed', exp_alerts: [] },
          { eval_time: '7m', alertname: 'CountersignConfigReloadFailed', exp_alerts: firingOnA },
          { eval_time: '14m', alertname: 'CountersignConfigReloadFailed', exp_alerts: firingOnA },
          { eval_time: '16m', alertname: 'CountersignConfigReloadFailed', exp_alerts: [] },
        ],
      },
    ],
  };
  const testFile = join(dir, 'alerts.test.yaml');
  await writeFile(testFile, JSON.stringify(unitTests, null, 2));
  const r = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
});
