import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1';
import { PodMonitor, PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import type { K8sObject } from './renderer.js';

/**
 * Validation of rendered objects against the Kubernetes API's OpenAPI schemas
 * (kubernetes-models) and the Prometheus Operator's CRD schemas
 * (@kubernetes-models/prometheus-operator), cert-manager's (@kubernetes-models/cert-manager). An object of a kind not listed here fails: the
 * chart must not emit anything these tests cannot check.
 */
type Model = new (data: never) => { validate(): void };

const MODELS: Record<string, Model> = {
  'v1/ConfigMap': ConfigMap as unknown as Model,
  'v1/Secret': Secret as unknown as Model,
  'v1/Service': Service as unknown as Model,
  'v1/ServiceAccount': ServiceAccount as unknown as Model,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim as unknown as Model,
  'apps/v1/Deployment': Deployment as unknown as Model,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as unknown as Model,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler as unknown as Model,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy as unknown as Model,
  'networking.k8s.io/v1/Ingress': Ingress as unknown as Model,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor as unknown as Model,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor as unknown as Model,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule as unknown as Model,
  'cert-manager.io/v1/Certificate': Certificate as unknown as Model,
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Every problem of one object: schema violations plus the API server's name and label rules. */
export function k8sProblems(obj: K8sObject): string[] {
  const id = `${obj.apiVersion}/${obj.kind}`;
  const model = MODELS[id];
  if (!model) return [`${id}: no schema to validate this kind against`];
  const problems: string[] = [];
  try {
    new model(obj as never).validate();
  } catch (err) {
    problems.push(`${id} ${obj.metadata?.name}: ${(err as Error).message}`);
  }
  const name = obj.metadata?.name ?? '';
  // Services are DNS labels (63); most other objects DNS subdomains (253).
  const nameOk = obj.kind === 'Service' ? DNS_LABEL.test(name) && name.length <= 63 : DNS_SUBDOMAIN.test(name) && name.length <= 253;
  if (!nameOk) problems.push(`${id}: invalid name "${name}"`);
  for (const labels of labelMaps(obj)) {
    for (const [k, v] of Object.entries(labels)) {
      if (!LABEL_NAME.test(k) || k.split('/').pop()!.length > 63) problems.push(`${id} ${name}: invalid label key "${k}"`);
      if (typeof v !== 'string' || !LABEL_VALUE.test(v) || v.length > 63) problems.push(`${id} ${name}: invalid label value ${JSON.stringify(v)} for ${k}`);
    }
  }
  return problems;
}

function labelMaps(obj: K8sObject): Array<Record<string, unknown>> {
  const maps: Array<Record<string, unknown>> = [];
  if (obj.metadata.labels) maps.push(obj.metadata.labels);
  const tpl = (obj.spec as { template?: { metadata?: { labels?: Record<string, unknown> } } } | undefined)?.template;
  if (tpl?.metadata?.labels) maps.push(tpl.metadata.labels);
  return maps;
}
