{{/*
Names and labels, in the shape ingress-nginx and bitnami charts use. The name does not come
from .Chart.Name on purpose: the sidecar templates are included from other charts, whose
.Chart is their own, and must still name this release's ConfigMap and Secret.
*/}}
{{- define "countersign.name" -}}
{{- default "countersign" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "countersign.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "countersign.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A child resource name: fullname plus a suffix, kept within 63 characters. */}}
{{- define "countersign.childName" -}}
{{- $full := include "countersign.fullname" .root -}}
{{- printf "%s-%s" ($full | trunc (int (sub 62 (len .suffix)))) .suffix | trimSuffix "-" -}}
{{- end -}}

{{- define "countersign.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "countersign.selectorLabels" -}}
app.kubernetes.io/name: {{ include "countersign.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "countersign.labels" -}}
helm.sh/chart: {{ include "countersign.chart" . }}
{{ include "countersign.selectorLabels" . }}
app.kubernetes.io/version: {{ include "countersign.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: countersign
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "countersign.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "countersign.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image tag: image.tag, else this chart's appVersion (only when .Chart is this chart). */}}
{{- define "countersign.imageTag" -}}
{{- if .Values.image.tag -}}
{{- .Values.image.tag -}}
{{- else if eq .Chart.Name "countersign" -}}
{{- .Chart.AppVersion -}}
{{- else -}}
{{- fail "countersign.image.tag is required when the countersign templates are included from another chart" -}}
{{- end -}}
{{- end -}}

{{- define "countersign.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "countersign.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* Paths inside the container. The image's CMD reads /etc/countersign/config.yaml. */}}
{{- define "countersign.configDir" -}}/etc/countersign{{- end -}}
{{- define "countersign.configPath" -}}/etc/countersign/config.yaml{{- end -}}
{{- define "countersign.secretsDir" -}}/etc/countersign/secrets{{- end -}}
{{- define "countersign.storeDir" -}}/var/lib/countersign{{- end -}}

{{- define "countersign.configMapName" -}}
{{- include "countersign.childName" (dict "root" . "suffix" "config") -}}
{{- end -}}

{{- define "countersign.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "countersign.childName" (dict "root" . "suffix" "secrets") -}}
{{- end -}}
{{- end -}}

{{- define "countersign.storeClaimName" -}}
{{- default (include "countersign.childName" (dict "root" . "suffix" "store")) .Values.persistence.existingClaim -}}
{{- end -}}

{{/* Listener addresses by mode. */}}
{{- define "countersign.proxyHost" -}}
{{- if eq .Values.mode "sidecar" -}}{{ .Values.sidecar.proxyAddress }}{{- else -}}0.0.0.0{{- end -}}
{{- end -}}

{{- define "countersign.adminHost" -}}
{{- if eq .Values.mode "sidecar" -}}{{ .Values.sidecar.adminAddress }}{{- else -}}0.0.0.0{{- end -}}
{{- end -}}

{{/* "true" when the admin listener is on loopback (as the gateway decides it). */}}
{{- define "countersign.adminOnLoopback" -}}
{{- $h := include "countersign.adminHost" . | trimPrefix "[" | trimSuffix "]" -}}
{{- if or (eq $h "localhost") (eq $h "::1") (regexMatch "^127\\.[0-9]+\\.[0-9]+\\.[0-9]+$" $h) -}}true{{- end -}}
{{- end -}}

{{- define "countersign.hostPort" -}}
{{- if contains ":" .host -}}[{{ .host }}]:{{ .port }}{{- else -}}{{ .host }}:{{ .port }}{{- end -}}
{{- end -}}

{{- define "countersign.storeIsShared" -}}
{{- if eq .Values.config.store.type "redis" -}}true{{- end -}}
{{- end -}}

{{- define "countersign.usesStoreVolume" -}}
{{- if eq .Values.config.store.type "file" -}}true{{- end -}}
{{- end -}}

{{/* The TLS Secret of the listeners: tls.secretName, else the one tls.certificate writes. */}}
{{- define "countersign.tlsSecretName" -}}
{{- .Values.tls.secretName | default (printf "%s-tls" (include "countersign.fullname" .)) -}}
{{- end -}}
