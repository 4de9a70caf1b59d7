{{/*
Names. The objects are named after the release, like every chart: with the
release name hcp-ingress-webhook the Deployment, Service, ServiceAccount and
webhook configurations are all hcp-ingress-webhook.
*/}}
{{- define "hcp-ingress-webhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hcp-ingress-webhook.fullname" -}}
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

{{- define "hcp-ingress-webhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The policy ConfigMap; the Secret with the serving certificate: cert-manager's
<fullname>-tls, or the self-managed <fullname>-certs (which also holds the CA
and its key, so a switch of mode never reads the other's Secret).
*/}}
{{- define "hcp-ingress-webhook.policyName" -}}
{{- printf "%s-policy" (include "hcp-ingress-webhook.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hcp-ingress-webhook.tlsSecretName" -}}
{{- $suffix := ternary "tls" "certs" (eq .Values.certificates.mode "cert-manager") }}
{{- printf "%s-%s" (include "hcp-ingress-webhook.fullname" .) $suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The leader-election Lease: the binary's fixed name (one install per
namespace); leader election is on by default (serve --leader-elect).
*/}}
{{- define "hcp-ingress-webhook.leaseName" -}}
hcp-ingress-webhook
{{- end }}

{{/* DNS name of the Service, as the API servers dial it. */}}
{{- define "hcp-ingress-webhook.serviceHost" -}}
{{- printf "%s.%s.svc" (include "hcp-ingress-webhook.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
Labels. app.kubernetes.io/name and part-of are on every object, like the
kustomize install (manifests/base); component only on the Deployment, its
pods and the Service; the rest are Helm's.
*/}}
{{- define "hcp-ingress-webhook.labels" -}}
helm.sh/chart: {{ include "hcp-ingress-webhook.chart" . }}
app.kubernetes.io/name: {{ include "hcp-ingress-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: hcp-ingress-webhook
{{- end }}

{{- define "hcp-ingress-webhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hcp-ingress-webhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "hcp-ingress-webhook.image" -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Ports. In the child topology the pod is on the host network, so its ports are
the node's: moved off the crowded 8080, 8081 and 9443.
*/}}
{{- define "hcp-ingress-webhook.webhookPort" -}}
{{- if eq .Values.topology "child" }}10270{{ else }}9443{{ end }}
{{- end }}

{{- define "hcp-ingress-webhook.probePort" -}}
{{- if eq .Values.topology "child" }}10271{{ else }}8081{{ end }}
{{- end }}

{{- define "hcp-ingress-webhook.metricsPort" -}}
{{- if eq .Values.topology "child" }}10272{{ else }}{{ .Values.metrics.port }}{{ end }}
{{- end }}

{{/*
The policy document: the user's values with apiVersion and kind added when
absent.
*/}}
{{- define "hcp-ingress-webhook.policy" -}}
{{- $policy := merge (deepCopy .Values.policy) (dict "apiVersion" "hcp-ingress.io/v1alpha1" "kind" "Policy") }}
{{- toYaml $policy }}
{{- end }}

{{/*
The API server the child topology reaches through the ingress:
policy.ccm.apiServer, required there.
*/}}
{{- define "hcp-ingress-webhook.childAPIServer" -}}
{{- $ccm := .Values.policy.ccm | default dict }}
{{- $api := $ccm.apiServer | default dict }}
{{- $host := required "topology: child needs policy.ccm.apiServer.host: the child's API server through the ingress (spec.ingress.apiHost of its control plane); the CCM and the webhook itself use it" $api.host }}
{{- dict "host" $host "port" ($api.port | default 443) | toJson }}
{{- end }}

{{/* Fleet wiring runs where the control planes are: management only. */}}
{{- define "hcp-ingress-webhook.fleet" -}}
{{- if and .Values.fleet.enabled (eq .Values.topology "management") }}true{{ end }}
{{- end }}

{{- define "hcp-ingress-webhook.fleetRepair" -}}
{{- if and (include "hcp-ingress-webhook.fleet" .) .Values.fleet.repair }}true{{ end }}
{{- end }}

{{/* Passthrough routes are kept next to the control planes: management only. */}}
{{- define "hcp-ingress-webhook.routes" -}}
{{- if and .Values.routes.enabled (eq .Values.topology "management") }}true{{ end }}
{{- end }}

{{/* Checks of values that the schema cannot express. */}}
{{- define "hcp-ingress-webhook.validate" -}}
{{- if and .Values.fleet.repair (not .Values.fleet.enabled) }}
{{- fail "fleet.repair needs fleet.enabled: repair wires children through the fleet ConfigMaps" }}
{{- end }}
{{- if and (eq .Values.topology "child") (eq .Values.certificates.mode "cert-manager") }}
{{- fail "topology: child needs certificates.mode: self-managed (cert-manager cannot run in a child before its CCM has initialized the nodes)" }}
{{- end }}
{{- if eq .Values.topology "child" }}
{{- $_ := include "hcp-ingress-webhook.childAPIServer" . }}
{{- end }}
{{- end }}
