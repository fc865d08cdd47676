import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { runCli, spawnCli } from '../helpers/cli.js';
import { k8sProblems } from './k8s-schema.js';
import { configAt, gatewayContainer, materialize, mountedFiles, podSpec, type Container } from './pod-config.js';
import { CHART, kinds, one, render, RenderError, type Rendered } from './renderer.js';

/**
 * Sidecar mode as a service team uses it: examples/my-service is an application chart with
 * this chart as a dependency; its Deployment includes the countersign.sidecar.* templates.
 */

const run = promisify(execFile);
const APP_CHART = join(CHART, 'examples/my-service');
const RENDERED_EXAMPLE = join(APP_CHART, 'rendered.yaml');
const CONFIG_PATH = '/etc/countersign/config.yaml';
/** examples/sidecar.yaml as the countersign values of my-service (null drops my-service's keeta upstream). */
function sidecarValues(): Record<string, unknown> {
  const values = parse(readFileSync(join(CHART, 'examples/sidecar.yaml'), 'utf8')) as { config: { upstreams: Record<string, unknown> } };
  values.config.upstreams.keeta = null;
  return values;
}

function renderApp(countersign?: Record<string, unknown>) {
  return render({
    chart: APP_CHART,
    release: 'my-service',
    namespace: 'shop',
    dependencies: { countersign: CHART },
    ...(countersign && { values: { countersign } }),
  });
}

function appPod(r: Rendered) {
  const deploy = one(r, 'Deployment');
  const pod = podSpec(deploy);
  return { deploy, pod, sidecar: gatewayContainer(pod) };
}

/** `helm template`'s output shape: each template under a "# Source:" line. */
function asHelmOutput(r: Rendered): string {
  const byTemplate = new Map<string, string[]>();
  for (const o of r.objects) {
    const { template, ...obj } = o;
    byTemplate.set(template, [...(byTemplate.get(template) ?? []), stringify(obj, { version: '1.1' })]);
  }
  const header = '# Rendered from examples/my-service with the countersign chart as its dependency\n# (release my-service, namespace shop). Regenerate: UPDATE_CHART_EXAMPLES=1 npx ava test/helm/sidecar.test.ts\n';
  return header + [...byTemplate].flatMap(([template, objs]) => objs.map((o) => `---\n# Source: ${template}\n${o}`)).join('');
}


test('examples/sidecar.yaml renders only the shared parts: config, Secret, PodMonitor, rules, dashboard', async (t) => {
  const r = await render({ files: [join(CHART, 'examples/sidecar.yaml')] });
  t.deepEqual(kinds(r), ['ConfigMap', 'ConfigMap', 'PodMonitor', 'PrometheusRule', 'Secret']);
  t.deepEqual(r.objects.flatMap(k8sProblems), []);
  const pm = one<{ spec: { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: Array<{ port: string; path: string }> } }>(r, 'PodMonitor');
  t.deepEqual(pm.spec.selector.matchLabels, { 'countersign-sidecar': 'countersign' });
  t.deepEqual(pm.spec.podMetricsEndpoints.map((e) => [e.port, e.path]), [['cs-admin', '/metrics']]);
  t.true(r.notes.includes('The app then calls http://127.0.0.1:18080/<upstream>/<path>.'));
});

test('the application chart renders an app Deployment with the gateway as a native sidecar, and every object validates', async (t) => {
  const r = await renderApp();
  t.deepEqual(r.objects.flatMap(k8sProblems), []);
  t.deepEqual(kinds(r), ['ConfigMap', 'Deployment', 'PodMonitor']); // existing Secret: none made
  const { deploy, pod, sidecar } = appPod(r);
  t.is(deploy.metadata.name, 'my-service');
  t.deepEqual(pod.initContainers!.map((c) => [c.name, c.restartPolicy]), [['countersign', 'Always']]);
  t.deepEqual(pod.containers.map((c) => c.name), ['app']);
  t.deepEqual(sidecar.args, ['serve', '--config', CONFIG_PATH]);
  t.is((sidecar as Container & { image: string }).image, 'ghcr.io/countersign/countersign:0.1.0');
  // The same security context as in central mode.
  t.like(sidecar.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
  // The proxy on loopback; the admin port reachable for Prometheus, and the probes use it.
  const config = configAt(r, pod, sidecar, CONFIG_PATH) as { listen: { proxy: string; admin: string }; admin: { tokenFile: string } };
  t.deepEqual(config.listen, { proxy: '127.0.0.1:18080', admin: '0.0.0.0:19090' });
  t.deepEqual(sidecar.ports, [{ name: 'cs-admin', containerPort: 19090, protocol: 'TCP' }] as never);
  t.deepEqual(sidecar.startupProbe!.httpGet, { path: '/readyz', port: 'cs-admin' });
  t.deepEqual(sidecar.livenessProbe!.httpGet, { path: '/healthz', port: 'cs-admin' });
  t.deepEqual(sidecar.readinessProbe!.httpGet, { path: '/readyz', port: 'cs-admin' });
  // The app is pointed at the sidecar's proxy.
  const env = (pod.containers[0] as unknown as { env: Array<{ name: string; value: string }> }).env;
  t.deepEqual(env.map((e) => e.value), ['http://127.0.0.1:18080/keeta', 'http://127.0.0.1:18080/keysecure-hk']);
  // The PodMonitor selects this pod; the checksum annotation follows the config.
  const pm = one<{ spec: { selector: { matchLabels: Record<string, string> } } }>(r, 'PodMonitor');
  const podLabels = (deploy.spec as { template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> } } }).template.metadata;
  for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) t.is(podLabels.labels[k], v);
  const cm = one<{ data: Record<string, string> }>(r, 'ConfigMap');
  t.is(podLabels.annotations['checksum/countersign-config'], createHash('sha256').update(cm.data['config.yaml']!.replace(/\n$/, '')).digest('hex'));
  // Secrets come from the team's Secret, mounted where the config names them.
  const secretFiles = [...mountedFiles(pod, sidecar).entries()].filter(([, s]) => s.kind === 'secret');
  t.deepEqual(secretFiles.map(([path, s]) => [path, s.name, s.key]), [
    ['/etc/countersign/secrets/admin.token', 'my-service-countersign', 'admin.token'],
    ['/etc/countersign/secrets/store.url', 'my-service-countersign', 'store.url'],
    ['/etc/countersign/secrets/upstreams.keeta.appSecret', 'my-service-countersign', 'upstreams.keeta.appSecret'],
    ['/etc/countersign/secrets/upstreams.keysecure-hk.apiKey', 'my-service-countersign', 'upstreams.keysecure-hk.apiKey'],
  ]);
  t.is(config.admin.tokenFile, '/etc/countersign/secrets/admin.token');
});

test('examples/my-service/rendered.yaml is what the application chart renders', async (t) => {
  const text = asHelmOutput(await renderApp());
  if (process.env.UPDATE_CHART_EXAMPLES === '1') writeFileSync(RENDERED_EXAMPLE, text);
  t.is(readFileSync(RENDERED_EXAMPLE, 'utf8'), text, 'stale: regenerate with UPDATE_CHART_EXAMPLES=1 npx ava test/helm/sidecar.test.ts');
});

test('sidecar with examples/sidecar.yaml: the pod mounts this release\'s ConfigMap and Secret, and the config passes `countersign check-config`', async (t) => {
  // null removes my-service's existingSecret, as in Helm: this chart then makes the Secret.
  const values = { ...sidecarValues(), secrets: { ...(sidecarValues().secrets as object), existingSecret: null } };
  const r = await renderApp(values);
  t.deepEqual(r.objects.flatMap(k8sProblems), []);
  const { pod, sidecar } = appPod(r);
  const sources = [...mountedFiles(pod, sidecar).values()];
  const names = new Set(r.objects.filter((o) => o.kind === 'ConfigMap' || o.kind === 'Secret').map((o) => `${o.kind}/${o.metadata.name}`));
  for (const s of sources) t.true(names.has(`${s.kind === 'configMap' ? 'ConfigMap' : 'Secret'}/${s.name}`), `${s.kind} ${s.name} is not rendered`);
  // The app's pod may set no fsGroup: files stay readable to the gateway's user.
  t.is(pod.volumes!.find((v) => v.name === 'countersign-config')?.projected?.defaultMode, 0o444);
  // File store on an emptyDir at the only writable path.
  t.deepEqual(pod.volumes!.find((v) => v.name === 'countersign-store'), { name: 'countersign-store', emptyDir: {} });
  t.true(sidecar.volumeMounts!.some((m) => m.name === 'countersign-store' && m.mountPath === '/var/lib/countersign'));
  const config = configAt(r, pod, sidecar, CONFIG_PATH);
  const secret = one<{ data: Record<string, string> }>(r, 'Secret');
  const file = materialize(config, pod, sidecar, (key) => Buffer.from(secret.data[key]!, 'base64').toString('utf8'));
  const { code, stdout, stderr } = await runCli(['check-config', '--config', file]);
  t.is(code, 0, stderr);
  t.regex(stdout, /store: file at .*\/var\/lib\/countersign\/tokens\.json/);
  t.regex(stdout, /listen: proxy 127\.0\.0\.1:18080, admin 0\.0\.0\.0:19090 \(admin token set\)/);
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('sidecar with the admin listener on loopback: no port, no admin token, and exec probes that really ask the running gateway', async (t) => {
  const values = { ...sidecarValues(), sidecar: { adminAddress: '127.0.0.1' }, metrics: { podMonitor: { enabled: false } }, secrets: { existingSecret: null, values: { 'upstreams.keysecure-hk.apiKey': 'FAKE-ks-key' } } };
  const r = await renderApp(values);
  t.deepEqual(r.objects.flatMap(k8sProblems), []);
  const { pod, sidecar } = appPod(r);
  t.is(sidecar.ports, undefined);
  const config = configAt(r, pod, sidecar, CONFIG_PATH) as { listen: { admin: string }; admin?: unknown };
  t.is(config.listen.admin, '127.0.0.1:19090');
  t.is(config.admin, undefined);
  for (const probe of [sidecar.startupProbe!, sidecar.livenessProbe!, sidecar.readinessProbe!]) {
    t.is(probe.httpGet, undefined);
    t.deepEqual(probe.exec!.command.slice(0, 2), ['node', '-e']);
  }
  t.regex(sidecar.livenessProbe!.exec!.command[2]!, /http:\/\/127\.0\.0\.1:19090\/healthz/);
  t.regex(sidecar.readinessProbe!.exec!.command[2]!, /http:\/\/127\.0\.0\.1:19090\/readyz/);
  t.true(sidecar.readinessProbe!.exec!.command[2]!.includes('AbortSignal.timeout(2000)'), 'the probe gives up after the probe\'s timeoutSeconds');

  // Run the probe commands as kubelet would, against the gateway started from this config.
  const [proxyPort, adminPort] = [await freePort(), await freePort()];
  const local = JSON.parse(JSON.stringify(config).replace('127.0.0.1:18080', `127.0.0.1:${proxyPort}`).replace('127.0.0.1:19090', `127.0.0.1:${adminPort}`)) as Record<string, unknown>;
  const file = materialize(local, pod, sidecar, () => 'FAKE-ks-key');
  const probe = async (p: typeof sidecar.livenessProbe) => {
    // The port this test could bind; and a generous answer time, since this machine may be loaded
    // (kubelet's own timeoutSeconds is what the chart sets: AbortSignal.timeout(2000), checked above).
    const script = p!.exec!.command[2]!.replace('127.0.0.1:19090', `127.0.0.1:${adminPort}`).replace('AbortSignal.timeout(2000)', 'AbortSignal.timeout(30000)');
    try {
      await run(process.execPath, ['-e', script]);
      return 0;
    } catch (err) {
      return (err as { code: number }).code;
    }
  };
  t.is(await probe(sidecar.livenessProbe), 1, 'nothing listens yet: the probe fails');
  t.timeout(240_000); // starting the gateway from source takes long on a loaded machine
  const child = spawnCli(['serve', '--config', file]);
  let output = '';
  try {
    // Wait for the gateway to say it listens (or to exit), however long a loaded machine takes.
    const started = await new Promise<boolean>((resolve) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('countersign listening')) resolve(true);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', () => resolve(false));
    });
    t.true(started, output);
    // Then as kubelet does: probe until it passes, failureThreshold-like.
    let ready = 1;
    for (let attempt = 0; attempt < 20 && ready !== 0; attempt++) {
      ready = await probe(sidecar.readinessProbe);
      if (ready !== 0) await new Promise((res) => setTimeout(res, 500));
    }
    t.is(ready, 0, 'the readiness probe passes once the gateway is ready');
    t.is(await probe(sidecar.livenessProbe), 0, 'the liveness probe passes while the gateway runs');
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => child.once('exit', res));
  }
});

test('sidecar refusals: a PodMonitor with the admin listener on loopback; a cluster older than 1.29; central-only features', async (t) => {
  const base = parse(readFileSync(join(CHART, 'examples/sidecar.yaml'), 'utf8')) as Record<string, unknown>;
  const refusal = async (opts: Parameters<typeof render>[0]) => {
    const err = await t.throwsAsync(render(opts), { instanceOf: RenderError });
    return err!.message;
  };
  t.true((await refusal({ values: { ...base, sidecar: { adminAddress: '127.0.0.1' } } })).includes('metrics.podMonitor needs the admin listener off loopback'));
  t.true((await refusal({ values: base, kubeVersion: 'v1.28.9' })).includes('sidecar mode runs the gateway as a native sidecar'));
  t.true((await refusal({ values: { ...base, networkPolicy: { enabled: true } } })).includes('networkPolicy is for central mode'));
  // Included from another chart, the image tag cannot default to this chart's appVersion.
  const err = await t.throwsAsync(renderApp({ image: { tag: null } }), { instanceOf: RenderError });
  t.true(err!.message.includes('countersign.image.tag is required when the countersign templates are included from another chart'));
});
