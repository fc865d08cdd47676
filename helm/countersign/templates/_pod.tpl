{{/*
Pod parts shared by the central Deployment and the sidecar: volumes, mounts, probes, the
container's command line and environment.
*/}}

{{/*
One projected volume at /etc/countersign: config.yaml from the ConfigMap and every referenced
Secret key under secrets/. One volume and no subPath: Kubernetes updates both in place when
the ConfigMap or Secret changes, and nothing is mounted inside a read-only ConfigMap volume.
*/}}
{{- define "countersign.volumes" -}}
{{- $keys := (include "countersign.secretPlan" . | fromJson).keys -}}
- name: countersign-config
  projected:
    {{- /* Sidecar pods belong to other charts, which may set no fsGroup: keep files readable. */}}
    defaultMode: {{ if eq .Values.mode "sidecar" }}0444{{ else }}0440{{ end }}
    sources:
      - configMap:
          name: {{ include "countersign.configMapName" . }}
          items:
            - key: config.yaml
              path: config.yaml
      {{- if $keys }}
      - secret:
          name: {{ include "countersign.secretName" . }}
          items:
            {{- range $keys }}
            - key: {{ . }}
              path: secrets/{{ . }}
            {{- end }}
      {{- end }}
      {{- if .Values.tls.enabled }}
      - secret:
          name: {{ include "countersign.tlsSecretName" . }}
          items:
            - key: tls.crt
              path: tls/tls.crt
            - key: tls.key
              path: tls/tls.key
            {{- if .Values.tls.clientCa }}
            - key: ca.crt
              path: tls/ca.crt
            {{- end }}
      {{- end }}
      {{- if .Values.serviceAccountAuth.enabled }}
      {{- /* The gateway's own token (audience: the API server) and the cluster CA, to read the JWKS. */}}
      - serviceAccountToken:
          path: serviceaccount/token
          expirationSeconds: 3600
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: serviceaccount/ca.crt
      {{- end }}
      {{- if ne .Values.config.store.type "memory" }}
      {{- /* Store keys: one Secret key each, updated in place, so a reload takes a rotated ring. */}}
      {{- range (.Values.config.store.encryption | default dict).keys }}
      - secret:
          name: {{ .secretName }}
          items:
            - key: {{ .secretKey }}
              path: store-keys/{{ .id }}
      {{- end }}
      {{- end }}
{{- if include "countersign.usesStoreVolume" . }}
- name: countersign-store
  {{- if .Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "countersign.storeClaimName" . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "countersign.volumeMounts" -}}
- name: countersign-config
  mountPath: {{ include "countersign.configDir" . }}
  readOnly: true
{{- if include "countersign.usesStoreVolume" . }}
- name: countersign-store
  mountPath: {{ include "countersign.storeDir" . }}
{{- end }}
{{- end -}}

{{- define "countersign.args" -}}
- serve
- --config
- {{ include "countersign.configPath" . }}
{{- end -}}

{{- define "countersign.env" -}}
- name: NODE_ENV
  value: production
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
A probe of an admin route. Off loopback kubelet calls it over HTTP; on loopback (a sidecar
keeping /admin/* inside the pod) kubelet cannot reach it, so node in the container asks.
Arguments: root, path, settings (the probes.* values).
*/}}
{{- define "countersign.probe" -}}
{{- $root := .root -}}
{{- if include "countersign.adminOnLoopback" $root -}}
exec:
  command:
    - node
    - -e
    - {{ printf "fetch('http://%s%s',{signal:AbortSignal.timeout(%d)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" (include "countersign.hostPort" (dict "host" $root.Values.sidecar.adminAddress "port" (int $root.Values.listen.adminPort))) .path (mul 1000 (int .settings.timeoutSeconds)) | quote }}
{{- else -}}
httpGet:
  path: {{ .path }}
  {{- if and $root.Values.tls.enabled (has "admin" $root.Values.tls.listeners) }}
  scheme: HTTPS
  {{- end }}
  port: {{ if eq $root.Values.mode "sidecar" }}cs-admin{{ else }}admin{{ end }}
{{- end }}
{{ toYaml .settings }}
{{- end -}}

{{- define "countersign.probes" -}}
startupProbe:
  {{- include "countersign.probe" (dict "root" . "path" "/readyz" "settings" .Values.probes.startup) | nindent 2 }}
livenessProbe:
  {{- include "countersign.probe" (dict "root" . "path" "/healthz" "settings" .Values.probes.liveness) | nindent 2 }}
readinessProbe:
  {{- include "countersign.probe" (dict "root" . "path" "/readyz" "settings" .Values.probes.readiness) | nindent 2 }}
{{- end -}}

{{/* Annotations that roll the pods when the config or the chart-made Secret changes. */}}
{{- define "countersign.checksumAnnotations" -}}
checksum/countersign-config: {{ include "countersign.config" . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/countersign-secrets: {{ toJson .Values.secrets.values | sha256sum }}
{{- end }}
{{- end -}}

{{/*
For a calling app's pod (its own chart includes these): a projected ServiceAccount token with
the audience the gateway checks, at /var/run/secrets/countersign/token. The app sends it as
`Authorization: Bearer <file content>`, re-reading the file (the kubelet renews it). Argument:
a dict, optionally with "audience" (default countersign, the chart's serviceAccountAuth.audience).
*/}}
{{- define "countersign.callerToken.volume" -}}
- name: countersign-caller-token
  projected:
    sources:
      - serviceAccountToken:
          audience: {{ .audience | default "countersign" }}
          expirationSeconds: 3600
          path: token
{{- end -}}

{{- define "countersign.callerToken.volumeMount" -}}
- name: countersign-caller-token
  mountPath: /var/run/secrets/countersign
  readOnly: true
{{- end -}}
