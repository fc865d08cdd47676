#!/usr/bin/env node
// Copies the Grafana dashboard and the alert rules from grafana/ into the chart: Helm's .Files
// can only read files inside the chart. `npm run chart:sync`; test/helm/chart.test.ts fails
// when the copies differ from grafana/.
import { copyFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const SYNCED = ['alerts.yaml', 'countersign-dashboard.json'];

for (const name of SYNCED) {
  copyFileSync(`${root}grafana/${name}`, `${root}helm/countersign/files/${name}`);
  console.log(`grafana/${name} -> helm/countersign/files/${name}`);
}
