import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { K8sObject, Rendered } from './renderer.js';

/** What the gateway container sees: its config file and the files its `<key>File`s name. */

export type Container = {
  name: string;
  args?: string[];
  restartPolicy?: string;
  ports?: Array<{ name: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
  securityContext?: Record<string, unknown>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
};
export type Probe = { httpGet?: { path: string; port: string | number }; exec?: { command: string[] } };
type ProjectedSource = {
  configMap?: { name: string; items: Array<{ key: string; path: string }> };
  secret?: { name: string; items: Array<{ key: string; path: string }> };
};
export type Volume = { name: string; projected?: { defaultMode?: number; sources: ProjectedSource[] }; emptyDir?: object; persistentVolumeClaim?: { claimName: string } };
export type PodSpec = { containers: Container[]; initContainers?: Container[]; volumes?: Volume[]; securityContext?: Record<string, unknown>; terminationGracePeriodSeconds?: number };

export function podSpec(obj: K8sObject): PodSpec {
  return (obj.spec as { template: { spec: PodSpec } }).template.spec;
}

/** The gateway container: the central Deployment's, or the native sidecar of an app's pod. */
export function gatewayContainer(pod: PodSpec): Container {
  const c = [...pod.containers, ...(pod.initContainers ?? [])].find((x) => x.name === 'countersign');
  if (!c) throw new Error('no countersign container');
  return c;
}

/** Where each file the container can read comes from: absolute path -> source. */
export function mountedFiles(pod: PodSpec, container: Container): Map<string, { kind: 'configMap' | 'secret'; name: string; key: string }> {
  const files = new Map<string, { kind: 'configMap' | 'secret'; name: string; key: string }>();
  for (const m of container.volumeMounts ?? []) {
    const vol = pod.volumes?.find((v) => v.name === m.name);
    for (const src of vol?.projected?.sources ?? []) {
      for (const kind of ['configMap', 'secret'] as const) {
        const s = src[kind];
        for (const item of s?.items ?? []) files.set(`${m.mountPath}/${item.path}`, { kind, name: s!.name, key: item.key });
      }
    }
  }
  return files;
}

/** The config.yaml a container reads at `path`, parsed, from the ConfigMap mounted there. */
export function configAt(r: Rendered, pod: PodSpec, container: Container, path: string): Record<string, unknown> {
  const src = mountedFiles(pod, container).get(path);
  if (src?.kind !== 'configMap') throw new Error(`no ConfigMap file mounted at ${path}`);
  const cm = r.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === src.name) as (K8sObject & { data: Record<string, string> }) | undefined;
  if (!cm) throw new Error(`ConfigMap ${src.name} is not rendered`);
  return parse(cm.data[src.key]!) as Record<string, unknown>;
}

/** Every `<key>File` in the config: config path -> file path. */
export function secretFileRefs(value: unknown, at: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(value)) value.forEach((v, i) => secretFileRefs(v, [...at, String(i)]).forEach((p, k) => out.set(k, p)));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('File') && typeof v === 'string') out.set([...at, k].join('.'), v);
      else secretFileRefs(v, [...at, k]).forEach((p, key) => out.set(key, p));
    }
  }
  return out;
}

/**
 * Lay the pod's view out in a temp dir: the config with every container path rewritten under
 * the dir, and each referenced secret file written with `secretValue(key)`.
 */
export function materialize(config: Record<string, unknown>, pod: PodSpec, container: Container, secretValue: (key: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'countersign-pod-'));
  const files = mountedFiles(pod, container);
  let text = JSON.stringify(config);
  for (const [configKey, path] of secretFileRefs(config)) {
    const src = files.get(path);
    // A CA certificate is public: it may come from a ConfigMap (the cluster's kube-root-ca.crt).
    const publicCa = src?.kind === 'configMap' && /caFile$/.test(configKey);
    if (src?.kind !== 'secret' && !publicCa) throw new Error(`${path} is referenced by the config but no Secret key is mounted there`);
    const local = join(dir, path);
    mkdirSync(join(local, '..'), { recursive: true });
    writeFileSync(local, `${publicCa ? 'ca certificate' : secretValue(src!.key)}\n`);
  }
  text = text.replaceAll('"/etc/countersign/', `"${dir}/etc/countersign/`).replaceAll('"/var/lib/countersign/', `"${dir}/var/lib/countersign/`);
  const file = join(dir, 'etc/countersign/config.yaml');
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text); // JSON is YAML
  return file;
}
