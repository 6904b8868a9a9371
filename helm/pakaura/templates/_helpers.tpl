{{/*
Names, labels and the derived settings every template shares.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "pakaura.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name: fullnameOverride, else "<release>-<chart>" (just the release name
when it already contains the chart name). Truncated to 63 characters (DNS label).
*/}}
{{- define "pakaura.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<chart>-<version>", as the helm.sh/chart label. */}}
{{- define "pakaura.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "pakaura.labels" -}}
helm.sh/chart: {{ include "pakaura.chart" . }}
{{ include "pakaura.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pakaura
{{- end }}

{{/*
The chart's labels merged with extra ones (a given key wins), for objects whose labels another
controller selects on: (list $ <map of extra labels>).
*/}}
{{- define "pakaura.labelsWith" -}}
{{- $root := index . 0 }}
{{- $labels := include "pakaura.labels" $root | fromYaml }}
{{- range $key, $value := index . 1 }}
{{- $_ := set $labels $key (toString $value) }}
{{- end }}
{{- toYaml $labels }}
{{- end }}

{{/* Labels that select the pods (immutable in a Deployment: never add to them). */}}
{{- define "pakaura.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pakaura.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "pakaura.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pakaura.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The container image reference. */}}
{{- define "pakaura.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Dapr app id. */}}
{{- define "pakaura.daprAppId" -}}
{{- default (include "pakaura.fullname" .) .Values.dapr.appId }}
{{- end }}

{{/* The folder of the writable data volume (the SQLite file in sqlite mode). */}}
{{- define "pakaura.dataDir" -}}
/var/lib/pakaura
{{- end }}

{{/* Where the mapper settings file is mounted (MAPPER_SETTINGS_FILE). */}}
{{- define "pakaura.mapperSettingsDir" -}}
/etc/pakaura/settings
{{- end }}

{{/* Where the identity provider's CA certificates are mounted (JWT_JWKS_CA_FILE). */}}
{{- define "pakaura.jwksCaDir" -}}
/etc/pakaura/jwks-ca
{{- end }}

{{/* True (non-empty) when DATABASE_URL is a SQLite file in the data volume. */}}
{{- define "pakaura.sqlite" -}}
{{- if eq .Values.database.mode "sqlite" }}true{{ end }}
{{- end }}

{{/*
The Secret holding DATABASE_URL, JWT_SECRET and ADMIN_TOKEN: the operator's existing one, the
chart's own when inline values are given, or none.
*/}}
{{- define "pakaura.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if include "pakaura.createSecret" . }}
{{- include "pakaura.fullname" . }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the chart creates the Secret from inline values. */}}
{{- define "pakaura.createSecret" -}}
{{- $s := .Values.secrets }}
{{- if and (not $s.existingSecret) (or (and $s.databaseUrl (not (include "pakaura.sqlite" .))) $s.jwtSecret $s.adminToken $s.adminTokens) }}true{{ end }}
{{- end }}

{{/* The Secret (key `token`) with the Dapr API token, or nothing. */}}
{{- define "pakaura.daprTokenSecretName" -}}
{{- if .Values.dapr.enabled }}
{{- if .Values.dapr.apiToken.existingSecret }}
{{- .Values.dapr.apiToken.existingSecret }}
{{- else if .Values.dapr.apiToken.value }}
{{- printf "%s-dapr-api-token" (include "pakaura.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of the ConfigMap the chart creates from mappers.files. */}}
{{- define "pakaura.mappersConfigMapName" -}}
{{- printf "%s-mappers" (include "pakaura.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of the ConfigMap holding the mapper settings file. */}}
{{- define "pakaura.mapperSettingsConfigMapName" -}}
{{- printf "%s-mapper-settings" (include "pakaura.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The volume that provides mappers.dir, as a pod volume source, or nothing (the image's own empty
folder). See mappers.* in values.yaml for the order.
*/}}
{{- define "pakaura.mappersVolumeSource" -}}
{{- $m := .Values.mappers }}
{{- if $m.existingConfigMap }}
configMap:
  name: {{ $m.existingConfigMap }}
{{- else if $m.existingClaim }}
persistentVolumeClaim:
  claimName: {{ $m.existingClaim }}
  readOnly: true
{{- else if $m.image.reference }}
image:
  reference: {{ $m.image.reference }}
  pullPolicy: {{ $m.image.pullPolicy }}
{{- else if $m.files }}
configMap:
  name: {{ include "pakaura.mappersConfigMapName" . }}
{{- end }}
{{- end }}

{{/*
Refuses values that would deploy a broken release, with one line naming the value to fix.
*/}}
{{- define "pakaura.validate" -}}
{{- $v := .Values }}
{{- if not (has $v.database.mode (list "external" "sqlite")) }}
{{- fail (printf "database.mode must be external or sqlite, not %q" $v.database.mode) }}
{{- end }}
{{- if and (include "pakaura.sqlite" .) (gt (int $v.replicaCount) 1) }}
{{- fail "database.mode=sqlite allows one replica only: set replicaCount=1 or use PostgreSQL (database.mode=external)" }}
{{- end }}
{{- if and (not (include "pakaura.sqlite" .)) (not $v.secrets.existingSecret) (not $v.secrets.databaseUrl) }}
{{- fail "database.mode=external needs DATABASE_URL: set secrets.existingSecret (with the key secrets.keys.databaseUrl) or secrets.databaseUrl" }}
{{- end }}
{{- if and $v.secrets.databaseUrl (not $v.secrets.existingSecret) (not (include "pakaura.sqlite" .)) (not (regexMatch "^postgres(ql)?://" $v.secrets.databaseUrl)) }}
{{- fail "secrets.databaseUrl must be a postgres:// URL (database.mode=sqlite uses the data volume)" }}
{{- end }}
{{- if and (gt (int $v.replicaCount) 1) (not $v.secrets.existingSecret) (not $v.secrets.jwtSecret) (not $v.auth.jwksUrl) }}
{{- fail "more than one replica needs keys every replica shares: set auth.jwksUrl (an identity provider), or a JWT_SECRET with secrets.existingSecret or secrets.jwtSecret" }}
{{- end }}
{{- if and $v.auth.jwksUrl (not (regexMatch "^(https://[^/@]+|http://(localhost|127\\.[0-9.]+|\\[::1\\])(:[0-9]+)?)(/|$)" $v.auth.jwksUrl)) }}
{{- fail (printf "auth.jwksUrl must be an https:// URL (plain http:// only to localhost), not %q" $v.auth.jwksUrl) }}
{{- end }}
{{- if and $v.auth.jwks.caConfigMap.name (not $v.auth.jwksUrl) }}
{{- fail "auth.jwks.caConfigMap is set but auth.jwksUrl is not" }}
{{- end }}
{{- if and $v.secrets.jwtSecret (lt (len $v.secrets.jwtSecret) 32) }}
{{- fail "secrets.jwtSecret must be at least 32 bytes" }}
{{- end }}
{{- if and $v.secrets.adminToken (lt (len $v.secrets.adminToken) 16) }}
{{- fail "secrets.adminToken must be at least 16 characters" }}
{{- end }}
{{- $managed := list "BIND_ADDR" "DATABASE_URL" "JWT_SECRET" "ADMIN_TOKEN" "ADMIN_TOKENS" "PUBLISHER" "DAPR_ENABLED" "DAPR_HTTP_PORT" "DAPR_PUBSUB_NAME" "DAPR_API_TOKEN" "MAPPERS_DIR" "MAPPERS_SHADOW_DIR" "MAPPER_BUILTIN" "MAPPER_SETTINGS_FILE" "MAPPER_CACHE_DIR" }}
{{- $managed = concat $managed (list "JWT_JWKS_URL" "JWT_ISSUER" "JWT_AUDIENCE" "JWT_USER_CLAIM" "JWT_LEEWAY" "JWT_JWKS_CA_FILE" "JWT_JWKS_REFRESH_MIN" "JWT_JWKS_REFRESH_MAX" "JWT_JWKS_COOLDOWN" "JWT_JWKS_TIMEOUT") }}
{{- if $v.tracing.enabled }}
{{- $managed = concat $managed (include "pakaura.tracingEnvNames" . | fromYamlArray) }}
{{- end }}
{{- range $key, $_ := $v.env }}
{{- if has $key $managed }}
{{- fail (printf "env.%s is set by the chart from other values; see the comment above env in values.yaml" $key) }}
{{- end }}
{{- end }}
{{- range $v.extraEnv }}
{{- if and .name (has .name $managed) }}
{{- fail (printf "extraEnv %s is set by the chart from other values; see the comment above env in values.yaml" .name) }}
{{- end }}
{{- end }}
{{- if $v.tracing.enabled }}
{{- if not (regexMatch "^http://[^/]+" $v.tracing.endpoint) }}
{{- fail "tracing.enabled needs tracing.endpoint, the collector's OTLP/HTTP URL with its scheme (http://otel-collector.observability:4318; https is not supported)" }}
{{- end }}
{{- range $key, $value := $v.tracing.resourceAttributes }}
{{- if or (regexMatch "[,=\\s]" $key) (contains "," (toString $value)) }}
{{- fail (printf "tracing.resourceAttributes.%s: keys may not hold ',', '=' or spaces, values may not hold ',' (percent-encode them)" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- if $v.mapperCache.enabled }}
{{- if not $v.mapperCache.sizeLimit }}
{{- fail "mapperCache.enabled needs mapperCache.sizeLimit (e.g. 512Mi)" }}
{{- end }}
{{- end }}
{{- if and $v.dapr.enabled $v.dapr.pubsub.create (not $v.dapr.pubsub.brokers) }}
{{- fail "dapr.pubsub.create needs dapr.pubsub.brokers" }}
{{- end }}
{{- end }}

{{/*
The container's env entries (a YAML list, unindented): the Secret-backed settings, the Dapr API
token and extraEnv. Empty when there are none.
*/}}
{{- define "pakaura.env" -}}
{{- $secretName := include "pakaura.secretName" . }}
{{- $daprTokenSecret := include "pakaura.daprTokenSecretName" . }}
{{- if $secretName }}
{{- if not (include "pakaura.sqlite" .) }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ .Values.secrets.keys.databaseUrl }}
{{- end }}
{{- if or .Values.secrets.existingSecret .Values.secrets.jwtSecret }}
- name: JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ .Values.secrets.keys.jwtSecret }}
      {{- if .Values.auth.jwksUrl }}
      # Optional beside an identity provider: without it, only the provider's tokens.
      optional: true
      {{- end }}
{{- end }}
{{- if or .Values.secrets.existingSecret .Values.secrets.adminToken }}
- name: ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ .Values.secrets.keys.adminToken }}
      # No admin API when the key is absent.
      optional: true
{{- end }}
{{- if or .Values.secrets.existingSecret .Values.secrets.adminTokens }}
- name: ADMIN_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ .Values.secrets.keys.adminTokens }}
      optional: true
{{- end }}
{{- end }}
{{- if $daprTokenSecret }}
# The same Secret key the sidecar enforces (dapr.io/api-token-secret), so every
# publish carries a matching `dapr-api-token` header.
- name: DAPR_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $daprTokenSecret }}
      key: token
{{- end }}
{{- if .Values.mapperCache.enabled }}
# Compiled mapper components, kept between reloads (the root filesystem is read-only).
- name: MAPPER_CACHE_DIR
  value: {{ include "pakaura.mapperCacheDir" . | quote }}
{{- end }}
{{- if .Values.tracing.enabled }}
{{- include "pakaura.tracingEnv" . }}
{{- end }}
{{- with .Values.extraEnv }}
{{- toYaml . | nindent 0 }}
{{- end }}
{{- end }}

{{/* Where the compiled-mapper cache volume is mounted (MAPPER_CACHE_DIR). */}}
{{- define "pakaura.mapperCacheDir" -}}
/var/cache/pakaura
{{- end }}

{{/* The OTEL_* variables the chart sets when tracing.enabled (a YAML list of names). */}}
{{- define "pakaura.tracingEnvNames" -}}
- PAKAURA_POD_NAME
- OTEL_EXPORTER_OTLP_ENDPOINT
- OTEL_EXPORTER_OTLP_PROTOCOL
- OTEL_SERVICE_NAME
- OTEL_RESOURCE_ATTRIBUTES
{{- if .Values.tracing.sampler }}
- OTEL_TRACES_SAMPLER
{{- end }}
{{- if .Values.tracing.samplerArg }}
- OTEL_TRACES_SAMPLER_ARG
{{- end }}
{{- end }}

{{/*
OpenTelemetry trace export (the standard OTEL_* variables), as env entries. The pod name comes
from the downward API and is expanded into OTEL_RESOURCE_ATTRIBUTES by the kubelet ($(VAR) refers
to an entry defined before it).
*/}}
{{- define "pakaura.tracingEnv" -}}
{{- $t := .Values.tracing }}
{{- $attributes := dict
  "service.version" (.Values.image.tag | default .Chart.AppVersion)
  "k8s.namespace.name" .Release.Namespace
  "k8s.deployment.name" (include "pakaura.fullname" .)
  "k8s.pod.name" "$(PAKAURA_POD_NAME)" }}
{{- range $key, $value := $t.resourceAttributes }}
{{- $_ := set $attributes $key (toString $value) }}
{{- end }}
{{- $pairs := list }}
{{- range $key := keys $attributes | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $key (get $attributes $key)) }}
{{- end }}
- name: PAKAURA_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $t.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $t.protocol | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ $t.serviceName | default (include "pakaura.fullname" .) | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $pairs | quote }}
{{- with $t.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with $t.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | toString | quote }}
{{- end }}
{{- end }}

{{/*
One alerting rule of the PrometheusRule: (dict "root" $ "alert" NAME "config" <alerts.X>
"expr" PROMQL "summary" TEXT "description" TEXT). The summary and description are Prometheus
templates ({{ $value }}, {{ $labels.pod }}); runbook_url points at the alert's section of
helm/README.md (its heading is the alert name).
*/}}
{{- define "pakaura.alert" -}}
{{- $pr := .root.Values.prometheusRule }}
{{- $labels := dict }}
{{- range $key, $value := $pr.additionalLabels }}
{{- $_ := set $labels $key (toString $value) }}
{{- end }}
{{- $_ := set $labels "severity" .config.severity -}}
- alert: {{ .alert }}
  expr: |-
    {{- .expr | nindent 4 }}
  for: {{ .config.for }}
  labels:
    {{- toYaml $labels | nindent 4 }}
  annotations:
    summary: {{ .summary | quote }}
    description: {{ .description | quote }}
    runbook_url: {{ printf "%s#%s" $pr.runbookBaseUrl (lower .alert) | quote }}
{{- end }}
