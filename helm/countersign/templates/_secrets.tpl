{{/*
Which Secret keys the gateway needs, from the config: each becomes a file under
/etc/countersign/secrets/ named like the key, and the config refers to it as `<key>File`.
Returns JSON {"keys": [...], "problems": [...]}; keys are sorted.
  required: admin.token (admin listener off loopback), store.url (redis without sentinels or
            nodes), callers.<name>.token, upstreams.<name>.appSecret (keeta),
            upstreams.<name>.apiKey (keysecure)
  optional: admin.token (on loopback), store.password, upstreams.<name>.apiSecret (keysecure),
            upstreams.<name>.callbacks.appId / .secret (keysecure with callbacks):
            mounted when secrets.values has them, or secrets.existingSecretOptionalKeys lists them
*/}}
{{- define "countersign.secretPlan" -}}
{{- $s := .Values.secrets -}}
{{- $required := list -}}
{{- $optional := list -}}
{{- if include "countersign.adminOnLoopback" . -}}
{{- $optional = append $optional "admin.token" -}}
{{- else -}}
{{- $required = append $required "admin.token" -}}
{{- end -}}
{{- $store := .Values.config.store -}}
{{- if eq $store.type "redis" -}}
{{- if or $store.sentinels $store.nodes -}}
{{- $optional = append $optional "store.url" -}}
{{- else -}}
{{- $required = append $required "store.url" -}}
{{- end -}}
{{- $optional = append $optional "store.password" -}}
{{- end -}}
{{- range .Values.config.callers -}}
{{- if not (or .certificate .serviceAccount) -}}
{{- $required = append $required (printf "callers.%s.token" .name) -}}
{{- end -}}
{{- end -}}
{{- range $name, $u := .Values.config.upstreams -}}
{{- if eq $u.type "keeta" -}}
{{- $required = append $required (printf "upstreams.%s.appSecret" $name) -}}
{{- else if eq $u.type "keysecure" -}}
{{- $required = append $required (printf "upstreams.%s.apiKey" $name) -}}
{{- $optional = append $optional (printf "upstreams.%s.apiSecret" $name) -}}
{{- if $u.callbacks -}}
{{- $optional = append $optional (printf "upstreams.%s.callbacks.appId" $name) -}}
{{- $optional = append $optional (printf "upstreams.%s.callbacks.secret" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $keys := list -}}
{{- $problems := list -}}
{{- if $s.existingSecret -}}
{{- if $s.values -}}
{{- $problems = append $problems (printf "secrets.values must be empty when secrets.existingSecret is set (the chart creates no Secret; put the keys in %s)" $s.existingSecret) -}}
{{- end -}}
{{- $keys = $required -}}
{{- range $s.existingSecretOptionalKeys -}}
{{- if has . $optional -}}
{{- $keys = append $keys . -}}
{{- else -}}
{{- $problems = append $problems (printf "secrets.existingSecretOptionalKeys: %q is not an optional key of this config (optional keys: %s)" . (join ", " $optional)) -}}
{{- end -}}
{{- end -}}
{{- else -}}
{{- range $required -}}
{{- if get $s.values . -}}
{{- $keys = append $keys . -}}
{{- else -}}
{{- $problems = append $problems (printf "secrets.values.%q is required (or name an existing Secret in secrets.existingSecret)" .) -}}
{{- end -}}
{{- end -}}
{{- range $optional -}}
{{- if get $s.values . -}}
{{- $keys = append $keys . -}}
{{- end -}}
{{- end -}}
{{- range $key, $_ := $s.values -}}
{{- if not (or (has $key $required) (has $key $optional)) -}}
{{- $problems = append $problems (printf "secrets.values.%q is not used by this config (keys it uses: %s)" $key (join ", " (concat $required $optional))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "keys" ($keys | uniq | sortAlpha) "problems" $problems | toJson -}}
{{- end -}}

{{/* The file path of a Secret key inside the container. */}}
{{- define "countersign.secretFile" -}}
{{- printf "%s/%s" (include "countersign.secretsDir" .root) .key -}}
{{- end -}}
