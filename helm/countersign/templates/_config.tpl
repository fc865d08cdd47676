{{/*
The gateway's config.yaml, from .Values.config plus what the chart owns: listen addresses
(from the ports and the mode) and every secret, as `<key>File` paths under
/etc/countersign/secrets/. No secret value is ever written here.
*/}}
{{- define "countersign.config" -}}
{{- $plan := include "countersign.secretPlan" . | fromJson -}}
{{- $keys := $plan.keys -}}
{{- $root := . -}}
{{- $v := .Values -}}
{{- $listen := dict
  "proxy" (include "countersign.hostPort" (dict "host" (include "countersign.proxyHost" .) "port" (int $v.listen.proxyPort)))
  "admin" (include "countersign.hostPort" (dict "host" (include "countersign.adminHost" .) "port" (int $v.listen.adminPort))) -}}
{{- if and (eq $v.mode "central") $v.ingressListener.enabled -}}
{{- $_ := set $listen "ingress" (printf "0.0.0.0:%d" (int $v.ingressListener.port)) -}}
{{- end -}}
{{- if $v.tls.enabled -}}
{{- $tlsDir := printf "%s/tls" (include "countersign.configDir" .) -}}
{{- $tls := dict -}}
{{- range $l := $v.tls.listeners -}}
{{- $one := dict "certFile" (printf "%s/tls.crt" $tlsDir) "keyFile" (printf "%s/tls.key" $tlsDir) -}}
{{- if and $v.tls.clientCa (eq $l "proxy") -}}{{- $_ := set $one "clientCaFile" (printf "%s/ca.crt" $tlsDir) -}}{{- end -}}
{{- $_ := set $tls $l $one -}}
{{- end -}}
{{- $_ := set $listen "tls" $tls -}}
{{- end -}}
{{- $cfg := dict "listen" $listen -}}
{{- if $v.serviceAccountAuth.enabled -}}
{{- $saDir := printf "%s/serviceaccount" (include "countersign.configDir" .) -}}
{{- $_ := set $cfg "auth" (dict "kubernetes" (dict "issuer" $v.serviceAccountAuth.issuer "audience" $v.serviceAccountAuth.audience "jwksUrl" $v.serviceAccountAuth.jwksUrl "caFile" (printf "%s/ca.crt" $saDir) "tokenPath" (printf "%s/token" $saDir))) -}}
{{- end -}}
{{- if has "admin.token" $keys -}}
{{- $_ := set $cfg "admin" (dict "tokenFile" (include "countersign.secretFile" (dict "root" $root "key" "admin.token"))) -}}
{{- end -}}
{{- $st := $v.config.store -}}
{{- $store := dict "type" $st.type -}}
{{- if eq $st.type "redis" -}}
{{- $_ := set $store "keyPrefix" $st.keyPrefix -}}
{{- range $k := list "sentinels" "name" "nodes" -}}
{{- if hasKey $st $k -}}{{- $_ := set $store $k (get $st $k) -}}{{- end -}}
{{- end -}}
{{- if has "store.url" $keys -}}
{{- $_ := set $store "urlFile" (include "countersign.secretFile" (dict "root" $root "key" "store.url")) -}}
{{- end -}}
{{- if has "store.password" $keys -}}
{{- $_ := set $store "passwordFile" (include "countersign.secretFile" (dict "root" $root "key" "store.password")) -}}
{{- end -}}
{{- else if eq $st.type "file" -}}
{{- $_ := set $store "path" $st.path -}}
{{- else if and (eq $st.type "memory") (hasKey $st "maxEntries") -}}
{{- $_ := set $store "maxEntries" $st.maxEntries -}}
{{- end -}}
{{- $enc := $st.encryption | default dict -}}
{{- if and (ne $st.type "memory") $enc.keys -}}
{{- $ring := list -}}
{{- range $enc.keys -}}
{{- $ring = append $ring (dict "id" .id "keyFile" (printf "%s/store-keys/%s" (include "countersign.configDir" $root) .id)) -}}
{{- end -}}
{{- $_ := set $store "encryption" (dict "keys" $ring "plaintext" ($enc.plaintext | default "migrate")) -}}
{{- end -}}
{{- $_ := set $cfg "store" $store -}}
{{- $_ := set $cfg "limits" (deepCopy $v.config.limits) -}}
{{- with $v.config.callers -}}
{{- $callers := list -}}
{{- range . -}}
{{- $c := dict "name" .name "allow" .allow -}}
{{- if .certificate -}}{{- $_ := set $c "certificate" .certificate -}}
{{- else if .serviceAccount -}}{{- $_ := set $c "serviceAccount" .serviceAccount -}}
{{- else -}}{{- $_ := set $c "tokenFile" (include "countersign.secretFile" (dict "root" $root "key" (printf "callers.%s.token" .name))) -}}
{{- end -}}
{{- if .merchants -}}{{- $_ := set $c "merchants" .merchants -}}{{- end -}}
{{- $callers = append $callers $c -}}
{{- end -}}
{{- $_ := set $cfg "callers" $callers -}}
{{- end -}}
{{- $upstreams := dict -}}
{{- range $name, $u := $v.config.upstreams -}}
{{- $out := deepCopy $u -}}
{{- range $secret := list "appSecret" "apiKey" "apiSecret" -}}
{{- $key := printf "upstreams.%s.%s" $name $secret -}}
{{- if has $key $keys -}}
{{- $_ := set $out (printf "%sFile" $secret) (include "countersign.secretFile" (dict "root" $root "key" $key)) -}}
{{- end -}}
{{- end -}}
{{- range $secret := list "appId" "secret" -}}
{{- $key := printf "upstreams.%s.callbacks.%s" $name $secret -}}
{{- if has $key $keys -}}
{{- $_ := set $out.callbacks (printf "%sFile" $secret) (include "countersign.secretFile" (dict "root" $root "key" $key)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $upstreams $name $out -}}
{{- end -}}
{{- $_ := set $cfg "upstreams" $upstreams -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
Everything the chart refuses, collected so that one `helm template` names every problem.
*/}}
{{- define "countersign.validate" -}}
{{- $v := .Values -}}
{{- $problems := (include "countersign.secretPlan" . | fromJson).problems -}}
{{- if not $v.config.upstreams -}}
{{- $problems = append $problems "config.upstreams: configure at least one upstream, e.g. keeta: {type: keeta, baseUrl: https://open.mykeeta.com/api/open, appId: <your app id>} (see the chart's examples/ folder: helm/countersign/examples/minimal.yaml)" -}}
{{- end -}}
{{- $store := $v.config.store.type -}}
{{- if and (eq $store "memory") ($v.config.store.encryption | default dict).keys -}}
{{- $problems = append $problems "config.store.encryption.keys: a memory store holds nothing at rest; remove the keys or use a file or redis store" -}}
{{- end -}}
{{- if eq $v.mode "central" -}}
{{- $most := int $v.replicaCount -}}
{{- if $v.autoscaling.enabled -}}{{- $most = int $v.autoscaling.maxReplicas -}}{{- end -}}
{{- if and (ne $store "redis") (gt $most 1) -}}
{{- $problems = append $problems (printf "config.store.type %s holds tokens in one process, but up to %d replicas would run: use config.store.type redis (shared by every replica), or replicaCount 1 without autoscaling" $store $most) -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (lt (int $v.autoscaling.maxReplicas) (int $v.autoscaling.minReplicas)) -}}
{{- $problems = append $problems "autoscaling.maxReplicas must be at least autoscaling.minReplicas" -}}
{{- end -}}
{{- if and $v.autoscaling.enabled (not (or (gt (int $v.autoscaling.targetCPUUtilizationPercentage) 0) (gt (int $v.autoscaling.targetMemoryUtilizationPercentage) 0))) -}}
{{- $problems = append $problems "autoscaling: set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage above 0" -}}
{{- end -}}
{{- if $v.metrics.podMonitor.enabled -}}
{{- $problems = append $problems "metrics.podMonitor is for sidecar mode; in central mode use metrics.serviceMonitor" -}}
{{- end -}}
{{- else -}}
{{- if not (semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version) -}}
{{- $problems = append $problems (printf "sidecar mode runs the gateway as a native sidecar (an init container with restartPolicy: Always), which needs Kubernetes 1.29 or later; this cluster is %s" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- if and $v.metrics.podMonitor.enabled (include "countersign.adminOnLoopback" .) -}}
{{- $problems = append $problems (printf "metrics.podMonitor needs the admin listener off loopback so that Prometheus can reach /metrics: set sidecar.adminAddress to 0.0.0.0 (an admin.token secret is then required); it is %s" $v.sidecar.adminAddress) -}}
{{- end -}}
{{- range $k := list "serviceMonitor" -}}
{{- if (get $v.metrics $k).enabled -}}
{{- $problems = append $problems "metrics.serviceMonitor is for central mode; in sidecar mode use metrics.podMonitor" -}}
{{- end -}}
{{- end -}}
{{- range $k := list "ingressListener" "ingress" "autoscaling" "networkPolicy" -}}
{{- if (get $v $k).enabled -}}
{{- $problems = append $problems (printf "%s is for central mode; in sidecar mode the app's own chart owns the pod and its network" $k) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and (eq $store "file") (not (hasPrefix "/var/lib/countersign/" $v.config.store.path)) -}}
{{- $problems = append $problems (printf "config.store.path must be under /var/lib/countersign/ (the only writable volume with a read-only root filesystem); it is %s" $v.config.store.path) -}}
{{- end -}}
{{- if le (int $v.terminationGracePeriodSeconds) (add 25 (int $v.preStopSleepSeconds)) -}}
{{- $problems = append $problems (printf "terminationGracePeriodSeconds (%d) must be more than preStopSleepSeconds + 25 s, the gateway's drain (%d)" (int $v.terminationGracePeriodSeconds) (add 25 (int $v.preStopSleepSeconds))) -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingressListener.enabled) -}}
{{- $problems = append $problems "ingress.enabled routes to the ingress listener: set ingressListener.enabled too" -}}
{{- end -}}
{{- if and $v.ingress.enabled (not $v.ingress.hosts) -}}
{{- $problems = append $problems "ingress.hosts: list at least one host name" -}}
{{- end -}}
{{- if and $v.networkPolicy.enabled (eq $store "redis") (not $v.networkPolicy.redis.to) -}}
{{- $problems = append $problems "networkPolicy.redis.to: list the Redis peers (podSelector/namespaceSelector/ipBlock), or the gateway cannot reach its store" -}}
{{- end -}}
{{- range $v.config.callers -}}
{{- if and .certificate .serviceAccount -}}
{{- $problems = append $problems (printf "config.callers %s: give one of certificate or serviceAccount, not both" .name) -}}
{{- end -}}
{{- if and .certificate (not (and $v.tls.enabled $v.tls.clientCa (has "proxy" $v.tls.listeners))) -}}
{{- $problems = append $problems (printf "config.callers %s is known by its client certificate: set tls.enabled, tls.clientCa and proxy in tls.listeners" .name) -}}
{{- end -}}
{{- if and .serviceAccount (not $v.serviceAccountAuth.enabled) -}}
{{- $problems = append $problems (printf "config.callers %s is known by its ServiceAccount token: set serviceAccountAuth.enabled" .name) -}}
{{- end -}}
{{- end -}}
{{- if and $v.tls.certificate.create (not $v.tls.certificate.issuerRef.name) -}}
{{- $problems = append $problems "tls.certificate.issuerRef.name: name the cert-manager issuer that signs the listener certificate" -}}
{{- end -}}
{{- if $problems -}}
{{- fail (printf "\n  - %s" (join "\n  - " $problems)) -}}
{{- end -}}
{{- end -}}
