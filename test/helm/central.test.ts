import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';
import { k8sProblems } from './k8s-schema.js';
import { parse } from 'yaml';
import { CONFIG_PATH, example, FAKE, FULL_CENTRAL, refusal, secretData } from './chart-values.js';
import { configAt, gatewayContainer, mountedFiles, podSpec, secretFileRefs, type PodSpec } from './pod-config.js';
import { CHART, kinds, one, render } from './renderer.js';

/** Central egress mode: the Deployment, its Services and the objects around it. */

test('central Deployment: rolling update without unavailability, grace longer than the drain, spread across nodes', async (t) => {
  const r = await render({ files: [example('minimal.yaml')] });
  const deploy = one<{ spec: { replicas: number; strategy: { type: string; rollingUpdate: { maxUnavailable: number } } } }>(r, 'Deployment');
  t.is(deploy.spec.replicas, 2);
  t.is(deploy.spec.strategy.type, 'RollingUpdate');
  t.is(deploy.spec.strategy.rollingUpdate.maxUnavailable, 0);
  const pod = podSpec(deploy);
  const c = gatewayContainer(pod);
  // 25 s drain after the preStop pause, plus margin.
  t.true(pod.terminationGracePeriodSeconds! > 25 + c.lifecycle!.preStop!.sleep!.seconds);
  const spread = (pod as unknown as { topologySpreadConstraints: Array<{ topologyKey: string; labelSelector: { matchLabels: Record<string, string> } }> }).topologySpreadConstraints;
  t.is(spread[0]!.topologyKey, 'kubernetes.io/hostname');
  t.deepEqual(spread[0]!.labelSelector.matchLabels, (deploy.spec as unknown as { selector: { matchLabels: object } }).selector.matchLabels);
  // Your own constraints go through tpl: "{{ .Release.Name }}" becomes the release's name.
  const custom = podSpec(one(await render({ files: [example('central-redis.yaml')], release: 'egress-gw' }), 'Deployment')) as unknown as { topologySpreadConstraints: typeof spread };
  t.deepEqual(custom.topologySpreadConstraints.map((c) => [c.topologyKey, c.labelSelector.matchLabels['app.kubernetes.io/instance']]), [
    ['kubernetes.io/hostname', 'egress-gw'],
    ['topology.kubernetes.io/zone', 'egress-gw'],
  ]);
});

test('central: probes hit /healthz and /readyz on the admin port, which is where the config puts the admin listener', async (t) => {
  const r = await render({ values: FULL_CENTRAL });
  const pod = podSpec(one(r, 'Deployment'));
  const c = gatewayContainer(pod);
  const adminPort = c.ports!.find((p) => p.name === 'admin')!.containerPort;
  t.deepEqual(c.livenessProbe!.httpGet, { path: '/healthz', port: 'admin' });
  t.deepEqual(c.readinessProbe!.httpGet, { path: '/readyz', port: 'admin' });
  t.deepEqual(c.startupProbe!.httpGet, { path: '/readyz', port: 'admin' });
  const config = configAt(r, pod, c, CONFIG_PATH) as { listen: { admin: string; proxy: string } };
  t.is(config.listen.admin, `0.0.0.0:${adminPort}`);
  t.is(config.listen.proxy, `0.0.0.0:${c.ports!.find((p) => p.name === 'proxy')!.containerPort}`);
  // The proxy Service exposes only the proxy port; the admin Service only the admin port.
  const proxySvc = one<{ spec: { ports: Array<{ targetPort: string }> } }>(r, 'Service', 'countersign');
  const adminSvc = one<{ spec: { ports: Array<{ targetPort: string }> } }>(r, 'Service', '-admin');
  t.deepEqual(proxySvc.spec.ports.map((p) => p.targetPort), ['proxy']);
  t.deepEqual(adminSvc.spec.ports.map((p) => p.targetPort), ['admin']);
});

test('central: the security context is non-root, read-only, without privilege escalation or capabilities, seccomp RuntimeDefault', async (t) => {
  const r = await render({ values: FULL_CENTRAL });
  const pod = podSpec(one(r, 'Deployment'));
  const sc = gatewayContainer(pod).securityContext as Record<string, unknown>;
  t.is(sc.runAsNonRoot, true);
  t.is(sc.runAsUser, 10001);
  t.is(sc.readOnlyRootFilesystem, true);
  t.is(sc.allowPrivilegeEscalation, false);
  t.deepEqual((sc.capabilities as { drop: string[] }).drop, ['ALL']);
  t.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' });
  t.is(pod.securityContext!.runAsNonRoot, true);
  t.deepEqual(pod.securityContext!.seccompProfile, { type: 'RuntimeDefault' });
  // Config and secrets readable by the gateway's group only (fsGroup 10001), read-only.
  t.is(pod.volumes![0]!.projected?.defaultMode, 0o440);
  t.is(pod.securityContext!.fsGroup, 10001);
  // Nothing writable is mounted with a redis store: no volume but the read-only config.
  t.deepEqual(gatewayContainer(pod).volumeMounts, [{ name: 'countersign-config', mountPath: '/etc/countersign', readOnly: true }]);
});

test('the config is mounted at /etc/countersign/config.yaml, the path the container is told to serve', async (t) => {
  for (const opts of [{ values: FULL_CENTRAL }, { files: [example('central-redis.yaml')] }]) {
    const r = await render(opts);
    const pod = podSpec(one(r, 'Deployment'));
    const c = gatewayContainer(pod);
    t.deepEqual(c.args, ['serve', '--config', CONFIG_PATH]);
    t.is(mountedFiles(pod, c).get(CONFIG_PATH)?.kind, 'configMap');
    t.truthy(configAt(r, pod, c, CONFIG_PATH).upstreams);
  }
});

test('secrets: no secret value in any ConfigMap (nor anywhere but the Secret); every <key>File of the config is a mounted key of the Secret', async (t) => {
  const r = await render({ values: { ...FULL_CENTRAL, metrics: { dashboard: { enabled: true }, prometheusRule: { enabled: true } } } });
  t.is(r.objects.filter((o) => o.kind === 'ConfigMap').length, 2);
  // Nowhere but in the Secret: not in the ConfigMaps, the Deployment (env, annotations), the NOTES.
  for (const obj of r.objects.filter((o) => o.kind !== 'Secret')) {
    const text = JSON.stringify(obj);
    for (const value of Object.values(FAKE)) t.false(text.includes(value), `${obj.kind} ${obj.metadata.name} holds a secret value`);
    t.false(text.includes('FAKE-'), `${obj.kind} ${obj.metadata.name}`);
  }
  t.false(r.notes.includes('FAKE-'));
  const pod = podSpec(one(r, 'Deployment'));
  const c = gatewayContainer(pod);
  const config = configAt(r, pod, c, CONFIG_PATH);
  const refs = secretFileRefs(config);
  t.deepEqual([...refs.keys()].sort(), [
    'admin.tokenFile',
    'callers.0.tokenFile',
    'callers.1.tokenFile',
    'store.urlFile',
    'upstreams.keeta.appSecretFile',
    'upstreams.keysecure-hk.apiKeyFile',
    'upstreams.keysecure-hk.apiSecretFile',
  ]);
  const files = mountedFiles(pod, c);
  const data = secretData(r);
  const secretName = one(r, 'Secret').metadata.name;
  for (const [at, path] of refs) {
    const src = files.get(path);
    t.is(src?.kind, 'secret', `${at}: ${path} is not mounted from a Secret`);
    t.is(src?.name, secretName);
    // The chart-made Secret holds exactly the value given for that key.
    t.is(data[src!.key], FAKE[src!.key as keyof typeof FAKE], at);
  }
  t.deepEqual(Object.keys(data).sort(), Object.keys(FAKE).sort());
});

test('existing Secret: the chart creates none and mounts the required keys plus the optional ones listed', async (t) => {
  const r = await render({ files: [example('central-redis.yaml')] });
  t.false(kinds(r).includes('Secret'));
  const pod = podSpec(one(r, 'Deployment'));
  const c = gatewayContainer(pod);
  const secretFiles = [...mountedFiles(pod, c).values()].filter((s) => s.kind === 'secret');
  t.true(secretFiles.every((s) => s.name === 'countersign-credentials'));
  t.deepEqual(secretFiles.map((s) => s.key).sort(), [
    'admin.token',
    'callers.card-service.token',
    'callers.order-service.token',
    'store.url',
    'upstreams.keeta.appSecret',
    'upstreams.keysecure-hk.apiKey',
    'upstreams.keysecure-hk.apiSecret',
  ]);
  t.regex(r.notes, /Secret countersign-credentials \(yours: it must hold admin\.token, callers\.card-service\.token/);
});

test('secrets: a missing required key, an unused key, and values beside an existing Secret are refused', async (t) => {
  const missing = await refusal({ values: { ...FULL_CENTRAL, secrets: { values: { ...FAKE, 'upstreams.keeta.appSecret': '' } } } });
  t.true(missing.includes('secrets.values."upstreams.keeta.appSecret" is required'));
  const unused = await refusal({ values: { ...FULL_CENTRAL, secrets: { values: { ...FAKE, 'upstreams.keta.appSecret': 'x' } } } });
  t.true(unused.includes('secrets.values."upstreams.keta.appSecret" is not used by this config'));
  const both = await refusal({ values: { ...FULL_CENTRAL, secrets: { existingSecret: 'mine', values: FAKE } } });
  t.true(both.includes('secrets.values must be empty when secrets.existingSecret is set'));
  const optional = await refusal({ values: { ...FULL_CENTRAL, secrets: { existingSecret: 'mine', existingSecretOptionalKeys: ['upstreams.keeta.apiSecret'] } } });
  t.true(optional.includes('"upstreams.keeta.apiSecret" is not an optional key of this config'));
});

test('store: file or memory with more than one replica (or an autoscaler) is refused; one file-store replica uses Recreate and a volume', async (t) => {
  for (const type of ['file', 'memory']) {
    const message = await refusal({ values: { ...FULL_CENTRAL, config: { ...FULL_CENTRAL.config, store: { type } }, replicaCount: 2 } });
    t.true(message.includes(`config.store.type ${type} holds tokens in one process, but up to 2 replicas would run`), message);
  }
  const hpa = await refusal({ values: { ...FULL_CENTRAL, config: { ...FULL_CENTRAL.config, store: { type: 'file' } }, replicaCount: 1, autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 3 } } });
  t.true(hpa.includes('up to 3 replicas would run'));

  const values = { ...FULL_CENTRAL, config: { ...FULL_CENTRAL.config, store: { type: 'file' } }, replicaCount: 1, secrets: { values: { ...FAKE, 'store.url': undefined } } };
  delete (values.secrets.values as Record<string, unknown>)['store.url'];
  const r = await render({ values });
  const deploy = one<{ spec: { strategy: { type: string } } }>(r, 'Deployment');
  t.is(deploy.spec.strategy.type, 'Recreate');
  const pod = podSpec(deploy);
  t.deepEqual(gatewayContainer(pod).volumeMounts!.find((m) => m.name === 'countersign-store'), { name: 'countersign-store', mountPath: '/var/lib/countersign' });
  t.deepEqual(pod.volumes!.find((v) => v.name === 'countersign-store')?.emptyDir, {});
  const config = configAt(r, pod, gatewayContainer(pod), CONFIG_PATH) as { store: Record<string, unknown> };
  t.deepEqual(config.store, { type: 'file', path: '/var/lib/countersign/tokens.json' });

  const pvc = await render({ values: { ...values, persistence: { enabled: true, size: '1Gi' } } });
  const claim = one<{ spec: { resources: { requests: { storage: string } } } }>(pvc, 'PersistentVolumeClaim');
  t.is(claim.spec.resources.requests.storage, '1Gi');
  t.is(podSpec(one(pvc, 'Deployment')).volumes!.find((v) => v.name === 'countersign-store')?.persistentVolumeClaim?.claimName, claim.metadata.name);
  const outside = await refusal({ values: { ...values, config: { ...values.config, store: { type: 'file', path: '/data/tokens.json' } } } });
  t.true(outside.includes('config.store.path must be under /var/lib/countersign/'));
});

test('redis store: the password and Sentinel settings reach the config; with Sentinel the URL is optional', async (t) => {
  const withPassword = await render({ values: { ...FULL_CENTRAL, secrets: { values: { ...FAKE, 'store.password': 'FAKE-redis-pw-3301' } } } });
  let pod = podSpec(one(withPassword, 'Deployment'));
  let config = configAt(withPassword, pod, gatewayContainer(pod), CONFIG_PATH) as { store: Record<string, unknown> };
  t.deepEqual(config.store, {
    type: 'redis',
    keyPrefix: 'countersign:',
    urlFile: '/etc/countersign/secrets/store.url',
    passwordFile: '/etc/countersign/secrets/store.password',
  });
  t.is(mountedFiles(pod, gatewayContainer(pod)).get('/etc/countersign/secrets/store.password')?.key, 'store.password');

  const secrets = { ...FAKE } as Record<string, string>;
  delete secrets['store.url'];
  const sentinel = await render({
    values: { ...FULL_CENTRAL, config: { ...FULL_CENTRAL.config, store: { type: 'redis', sentinels: ['10.0.0.1:26379', '10.0.0.2:26379'], name: 'mymaster' } }, secrets: { values: secrets } },
  });
  pod = podSpec(one(sentinel, 'Deployment'));
  config = configAt(sentinel, pod, gatewayContainer(pod), CONFIG_PATH) as { store: Record<string, unknown> };
  t.deepEqual(config.store, { type: 'redis', keyPrefix: 'countersign:', sentinels: ['10.0.0.1:26379', '10.0.0.2:26379'], name: 'mymaster' });
});

test('a grace period not longer than the preStop pause plus the 25 s drain is refused', async (t) => {
  const message = await refusal({ values: { ...FULL_CENTRAL, terminationGracePeriodSeconds: 30, preStopSleepSeconds: 5 } });
  t.true(message.includes('terminationGracePeriodSeconds (30) must be more than preStopSleepSeconds + 25 s'));
});

test('preStop uses the native sleep action from Kubernetes 1.30 and the image\'s sleep before', async (t) => {
  const current = gatewayContainer(podSpec(one(await render({ values: FULL_CENTRAL, kubeVersion: 'v1.30.2' }), 'Deployment')));
  t.deepEqual(current.lifecycle, { preStop: { sleep: { seconds: 5 } } });
  const older = gatewayContainer(podSpec(one(await render({ values: FULL_CENTRAL, kubeVersion: 'v1.29.4' }), 'Deployment')));
  t.deepEqual(older.lifecycle, { preStop: { exec: { command: ['sleep', '5'] } } });
});

test('ServiceMonitor scrapes /metrics on the admin Service only', async (t) => {
  const r = await render({ files: [example('central-redis.yaml')] });
  const sm = one<{ spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string; path: string }>; namespaceSelector: { matchNames: string[] } } }>(r, 'ServiceMonitor');
  const selected = r.objects.filter((o) => o.kind === 'Service' && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v));
  t.deepEqual(selected.map((s) => s.metadata.name), ['countersign-admin']);
  const ports = (selected[0]!.spec as { ports: Array<{ name: string }> }).ports.map((p) => p.name);
  t.deepEqual(sm.spec.endpoints.map((e) => [e.port, e.path]), [['admin', '/metrics']]);
  t.true(ports.includes('admin'));
  t.deepEqual(sm.spec.namespaceSelector.matchNames, ['egress']);
});

test('NetworkPolicy: only labelled clients reach the proxy port; egress only to DNS, Redis and the listed upstream CIDRs', async (t) => {
  const r = await render({ files: [example('central-networkpolicy-hpa.yaml')] });
  type Peer = { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: { matchLabels?: Record<string, string> }; ipBlock?: { cidr: string; except?: string[] } };
  type Rule = { from?: Peer[]; to?: Peer[]; ports: Array<{ port: string | number; protocol: string }> };
  const np = one<{ spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: Rule[]; egress: Rule[] } }>(r, 'NetworkPolicy');
  t.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
  t.deepEqual(np.spec.podSelector.matchLabels, { 'app.kubernetes.io/name': 'countersign', 'app.kubernetes.io/instance': 'countersign' });
  const proxyRule = np.spec.ingress.find((rule) => rule.ports.some((p) => p.port === 'proxy'))!;
  t.deepEqual(proxyRule.from, [{ podSelector: { matchLabels: { 'countersign-client': 'true' } }, namespaceSelector: { matchLabels: { 'team-egress': 'allowed' } } }]);
  t.deepEqual(proxyRule.ports, [{ port: 'proxy', protocol: 'TCP' }]);
  const adminRule = np.spec.ingress.find((rule) => rule.ports.some((p) => p.port === 'admin'))!;
  t.is(adminRule.from![0]!.namespaceSelector!.matchLabels!['kubernetes.io/metadata.name'], 'monitoring');
  t.is(np.spec.ingress.length, 2);
  // Every ingress and egress rule names its peers: none is open to everyone.
  for (const rule of [...np.spec.ingress, ...np.spec.egress]) t.true((rule.from ?? rule.to ?? []).length > 0);
  const [dns, redis, ...upstreams] = np.spec.egress;
  t.deepEqual(dns!.ports.map((p) => `${p.port}/${p.protocol}`), ['53/UDP', '53/TCP']);
  t.deepEqual(redis!.ports, [{ port: 6379, protocol: 'TCP' }]);
  t.is(redis!.to![0]!.namespaceSelector!.matchLabels!['kubernetes.io/metadata.name'], 'redis');
  t.deepEqual(upstreams, [
    { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ port: 443, protocol: 'TCP' }] },
    { to: [{ ipBlock: { cidr: '198.51.100.0/24', except: ['198.51.100.128/25'] } }], ports: [{ port: 443, protocol: 'TCP' }] },
  ]);
  const noRedisPeers = await refusal({ values: { ...FULL_CENTRAL, networkPolicy: { enabled: true } } });
  t.true(noRedisPeers.includes('networkPolicy.redis.to: list the Redis peers'));
});

test('HorizontalPodAutoscaler scales the Deployment, which then leaves replicas to it', async (t) => {
  const r = await render({ files: [example('central-networkpolicy-hpa.yaml')] });
  const hpa = one<{ spec: { scaleTargetRef: { kind: string; name: string }; minReplicas: number; maxReplicas: number; metrics: Array<{ resource: { name: string; target: { averageUtilization: number } } }> } }>(r, 'HorizontalPodAutoscaler');
  const deploy = one<{ spec: Record<string, unknown> }>(r, 'Deployment');
  t.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deploy.metadata.name } as never);
  t.is(hpa.spec.minReplicas, 2);
  t.is(hpa.spec.maxReplicas, 8);
  t.deepEqual(hpa.spec.metrics.map((m) => [m.resource.name, m.resource.target.averageUtilization]), [['cpu', 65], ['memory', 80]]);
  t.false('replicas' in deploy.spec);
  const noTarget = await refusal({ values: { ...FULL_CENTRAL, autoscaling: { enabled: true, targetCPUUtilizationPercentage: 0, targetMemoryUtilizationPercentage: 0 } } });
  t.true(noTarget.includes('autoscaling: set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage above 0'));
  const inverted = await refusal({ values: { ...FULL_CENTRAL, autoscaling: { enabled: true, minReplicas: 4, maxReplicas: 3 } } });
  t.true(inverted.includes('autoscaling.maxReplicas must be at least autoscaling.minReplicas'));
});

test('PodDisruptionBudget and ServiceAccount: one replica at a time may go, and no API token in the pod', async (t) => {
  const minimal = await render({ files: [example('minimal.yaml')] });
  const pdb = one<{ spec: { maxUnavailable?: number; minAvailable?: number; selector: { matchLabels: Record<string, string> } } }>(minimal, 'PodDisruptionBudget');
  t.is(pdb.spec.maxUnavailable, 1);
  t.is(pdb.spec.minAvailable, undefined);
  t.deepEqual(pdb.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'countersign', 'app.kubernetes.io/instance': 'countersign' });
  const sa = one<{ automountServiceAccountToken: boolean }>(minimal, 'ServiceAccount');
  t.is(sa.automountServiceAccountToken, false);
  const deploy = one<{ spec: { template: { spec: { serviceAccountName: string; automountServiceAccountToken: boolean } } } }>(minimal, 'Deployment');
  t.is(deploy.spec.template.spec.serviceAccountName, sa.metadata.name);
  t.is(deploy.spec.template.spec.automountServiceAccountToken, false);
  const redis = await render({ files: [example('central-redis.yaml')] });
  t.is(one<{ spec: { minAvailable?: number } }>(redis, 'PodDisruptionBudget').spec.minAvailable, 2);
});

test('ingress listener: a third port and Service, an Ingress for /oauth/ and /hooks/ only, and the upstreams\' inbound settings passed through', async (t) => {
  const r = await render({ files: [example('central-ingress.yaml')] });
  const pod = podSpec(one(r, 'Deployment'));
  const c = gatewayContainer(pod);
  t.deepEqual(c.ports!.map((p) => [p.name, p.containerPort]), [['proxy', 8080], ['admin', 9090], ['ingress', 8443]]);
  const config = configAt(r, pod, c, CONFIG_PATH) as { listen: Record<string, string>; upstreams: Record<string, Record<string, unknown>> };
  t.is(config.listen.ingress, '0.0.0.0:8443');
  const values = parse(readFileSync(example('central-ingress.yaml'), 'utf8')) as { config: { upstreams: Record<string, Record<string, unknown>> } };
  t.deepEqual(config.upstreams.keeta!.oauth, values.config.upstreams.keeta!.oauth);
  t.deepEqual(config.upstreams.keeta!.webhooks, values.config.upstreams.keeta!.webhooks);
  // The callback app id is a secret of the gateway's: from the Secret, as a file.
  t.deepEqual(config.upstreams['keysecure-hk']!.callbacks, {
    ...(values.config.upstreams['keysecure-hk']!.callbacks as object),
    appIdFile: '/etc/countersign/secrets/upstreams.keysecure-hk.callbacks.appId',
  });
  const svc = one<{ spec: { ports: Array<{ name: string; port: number; targetPort: string }> } }>(r, 'Service', '-ingress');
  t.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['ingress', 8443, 'ingress']]);
  const ing = one<{ spec: { ingressClassName: string; rules: Array<{ host: string; http: { paths: Array<{ path: string; pathType: string; backend: { service: { name: string; port: { name: string } } } }> } }> } }>(r, 'Ingress');
  t.is(ing.spec.ingressClassName, 'nginx');
  t.deepEqual(ing.spec.rules.map((rule) => rule.host), ['hooks.example.com']);
  t.deepEqual(ing.spec.rules[0]!.http.paths.map((p) => [p.path, p.pathType, p.backend.service.name, p.backend.service.port.name]), [
    ['/oauth/', 'Prefix', svc.metadata.name, 'ingress'],
    ['/hooks/', 'Prefix', svc.metadata.name, 'ingress'],
  ]);
  const withoutListener = await refusal({ values: { ...FULL_CENTRAL, ingress: { enabled: true, hosts: ['hooks.example.com'] } } });
  t.true(withoutListener.includes('ingress.enabled routes to the ingress listener: set ingressListener.enabled too'));
});

test('examples/central-tls.yaml: TLS from the cert-manager Secret, client CA, the cluster JWKS with the service-account CA, callers by identity', async (t) => {
  const r = await render({ files: [example('central-tls.yaml')] });
  const pod = podSpec(one(r, 'Deployment'));
  const c = gatewayContainer(pod);
  const config = configAt(r, pod, c, CONFIG_PATH) as {
    listen: { tls: Record<string, unknown> };
    auth: { kubernetes: Record<string, string> };
    callers: Array<Record<string, unknown>>;
  };
  t.deepEqual(config.listen.tls, {
    proxy: { certFile: '/etc/countersign/tls/tls.crt', keyFile: '/etc/countersign/tls/tls.key', clientCaFile: '/etc/countersign/tls/ca.crt' },
  });
  t.deepEqual(config.auth.kubernetes, {
    issuer: 'https://kubernetes.default.svc.cluster.local',
    audience: 'countersign',
    jwksUrl: 'https://kubernetes.default.svc/openid/v1/jwks',
    caFile: '/etc/countersign/serviceaccount/ca.crt',
    tokenPath: '/etc/countersign/serviceaccount/token',
  });
  t.deepEqual(config.callers.map((x) => Object.keys(x).sort()), [['allow', 'merchants', 'name', 'tokenFile'], ['allow', 'certificate', 'name'], ['allow', 'name', 'serviceAccount']]);
  const sources = pod.volumes!.find((v) => v.name === 'countersign-config')!.projected!.sources as Array<Record<string, any>>;
  const tlsSource = sources.find((s) => s.secret?.name === 'countersign-tls');
  t.deepEqual(tlsSource?.secret.items.map((i: { path: string }) => i.path), ['tls/tls.crt', 'tls/tls.key', 'tls/ca.crt']);
  t.deepEqual(sources.find((s) => s.serviceAccountToken)?.serviceAccountToken, { path: 'serviceaccount/token', expirationSeconds: 3600 });
  t.deepEqual(sources.find((s) => s.configMap?.name === 'kube-root-ca.crt')?.configMap.items, [{ key: 'ca.crt', path: 'serviceaccount/ca.crt' }]);
  const cert = one<{ spec: { secretName: string; dnsNames: string[]; issuerRef: unknown } }>(r, 'Certificate');
  t.is(cert.spec.secretName, 'countersign-tls');
  t.true(cert.spec.dnsNames.includes('countersign.egress.svc'));
  t.deepEqual(cert.spec.issuerRef, { name: 'cluster-ca', kind: 'ClusterIssuer' });
  // No caller token is asked for the certificate and ServiceAccount callers.
  t.deepEqual(Object.keys(secretData(r)).filter((k) => k.startsWith('callers.')), ['callers.order-service.token']);
});

test('a certificate caller without tls.clientCa, a ServiceAccount caller without serviceAccountAuth, a Certificate without an issuer are refused', async (t) => {
  const message = await refusal({
    values: {
      ...FULL_CENTRAL,
      tls: { enabled: true, certificate: { create: true } },
      config: {
        ...(FULL_CENTRAL.config as Record<string, unknown>),
        callers: [
          { name: 'billing', certificate: { uri: 'spiffe://x' }, allow: ['keeta:*'] },
          { name: 'menu', serviceAccount: 'menu/menu-sync', allow: ['keeta:*'] },
        ],
      },
    },
  });
  t.true(message.includes('config.callers billing is known by its client certificate: set tls.enabled, tls.clientCa'));
  t.true(message.includes('config.callers menu is known by its ServiceAccount token: set serviceAccountAuth.enabled'));
  t.true(message.includes('tls.certificate.issuerRef.name'));
});

test('the caller-token templates give a calling app a projected token with audience countersign', async (t) => {
  const r = await render({ chart: join(ROOT, 'test/helm/fixtures/caller-app'), release: 'menu-sync', namespace: 'menu', dependencies: { countersign: CHART } });
  const app = r.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'menu-sync')!;
  const pod = podSpec(app) as PodSpec & { volumes: Array<Record<string, any>> };
  t.deepEqual(pod.volumes, [{ name: 'countersign-caller-token', projected: { sources: [{ serviceAccountToken: { audience: 'countersign', expirationSeconds: 3600, path: 'token' } }] } }]);
  t.deepEqual(pod.containers[0]!.volumeMounts, [{ name: 'countersign-caller-token', mountPath: '/var/run/secrets/countersign', readOnly: true }]);
  t.deepEqual(k8sProblems(app), []);
});
