{{/*
Sidecar mode: what a service team adds to its own pod. Include these from your chart with a
context whose .Values are this chart's values (see README.md, "Sidecar mode"):

  {{- $cs := dict "Values" .Values.countersign "Release" .Release "Chart" .Chart "Capabilities" .Capabilities }}
  metadata:
    labels:      {{- include "countersign.sidecar.podLabels" $cs | nindent 8 }}
    annotations: {{- include "countersign.sidecar.podAnnotations" $cs | nindent 8 }}
  spec:
    initContainers: {{- include "countersign.sidecar.container" $cs | nindent 8 }}
    volumes:        {{- include "countersign.sidecar.volumes" $cs | nindent 8 }}
*/}}

{{/*
The gateway as a native sidecar: an init container with restartPolicy Always starts before the
app containers (they start once its startup probe passes, i.e. the proxy is ready) and stops
after them. A list with one item, to go under initContainers.
*/}}
{{- define "countersign.sidecar.container" -}}
- name: countersign
  image: {{ include "countersign.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  restartPolicy: Always
  args:
    {{- include "countersign.args" . | nindent 4 }}
  env:
    {{- include "countersign.env" . | nindent 4 }}
  {{- if not (include "countersign.adminOnLoopback" .) }}
  ports:
    - name: cs-admin
      containerPort: {{ int .Values.listen.adminPort }}
      protocol: TCP
  {{- end }}
  {{- include "countersign.probes" . | nindent 2 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    {{- include "countersign.volumeMounts" . | nindent 4 }}
{{- end -}}

{{/* The volumes the sidecar mounts, to go under the pod's volumes. */}}
{{- define "countersign.sidecar.volumes" -}}
{{- include "countersign.volumes" . -}}
{{- end -}}

{{/* Pod labels: the PodMonitor finds sidecar pods by them. */}}
{{- define "countersign.sidecar.podLabels" -}}
countersign-sidecar: {{ include "countersign.fullname" . }}
{{- end -}}

{{/* Pod annotations: roll the pods when the gateway's config or chart-made Secret changes. */}}
{{- define "countersign.sidecar.podAnnotations" -}}
{{- include "countersign.checksumAnnotations" . -}}
{{- end -}}

{{/* The ConfigMap holding config.yaml (this chart renders it in both modes). */}}
{{- define "countersign.sidecar.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "countersign.configMapName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "countersign.labels" . | nindent 4 }}
data:
  config.yaml: |
    {{- include "countersign.config" . | nindent 4 }}
{{- end -}}
