{{/* Names and labels. */}}
{{- define "warmpool.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warmpool.fullname" -}}
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

{{- define "warmpool.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "warmpool.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: warmpool
{{- end }}

{{/* Selector labels of one component: pass (dict "ctx" $ "component" "operator"). */}}
{{- define "warmpool.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warmpool.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "warmpool.operator.fullname" -}}
{{- printf "%s-operator" (include "warmpool.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warmpool.studio.fullname" -}}
{{- printf "%s-studio" (include "warmpool.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warmpool.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "warmpool.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "warmpool.studio.serviceAccountName" -}}
{{- if .Values.studio.serviceAccount.create }}
{{- default (include "warmpool.studio.fullname" .) .Values.studio.serviceAccount.name }}
{{- else }}
{{- required "studio.serviceAccount.name is required when studio.serviceAccount.create is false" .Values.studio.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace where pools, jobs and muses live for the studio and the sample pool. */}}
{{- define "warmpool.workloadNamespace" -}}
{{- default .Release.Namespace .Values.workloadNamespace }}
{{- end }}

{{- define "warmpool.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The namespaces the operator serves (watchNamespace and watchNamespaces), comma-separated;
empty: every namespace. */}}
{{- define "warmpool.operator.namespaces" -}}
{{- $ns := list }}
{{- with .Values.operator.watchNamespace }}{{ $ns = append $ns . }}{{ end }}
{{- range .Values.operator.watchNamespaces }}{{ $ns = append $ns . }}{{ end }}
{{- $ns | uniq | join "," }}
{{- end }}

{{/* Peering is on when asked for, and always with more than one operator replica. */}}
{{- define "warmpool.peering.enabled" -}}
{{- if or .Values.operator.peering.enabled (gt (int .Values.operator.replicas) 1) }}true{{ end }}
{{- end }}

{{/* The artifact store is a local directory (file://) when the URL says so. */}}
{{- define "warmpool.artifacts.isFile" -}}
{{- if hasPrefix "file://" .Values.artifacts.url }}true{{ end }}
{{- end }}

{{- define "warmpool.artifacts.dir" -}}
{{- trimPrefix "file://" .Values.artifacts.url }}
{{- end }}

{{/* Hardened container security context shared by both containers. */}}
{{- define "warmpool.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "warmpool.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Environment of the artifact store, shared by the operator and the studio. */}}
{{- define "warmpool.artifacts.env" -}}
- name: WARMPOOL_ARTIFACTS_URL
  value: {{ .Values.artifacts.url | quote }}
{{- with .Values.artifacts.s3 }}
{{- if .endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ .endpoint | quote }}
{{- end }}
{{- if .region }}
- name: AWS_REGION
  value: {{ .region | quote }}
{{- end }}
{{- if .allowHttp }}
- name: AWS_ALLOW_HTTP
  value: "true"
{{- end }}
{{- if .credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret | quote }}
      key: {{ .accessKeyIdKey | quote }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .credentialsSecret | quote }}
      key: {{ .secretAccessKeyKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes: /tmp always, the artifact directory for file:// stores. */}}
{{- define "warmpool.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if include "warmpool.artifacts.isFile" . }}
- name: artifacts
  {{- if .Values.artifacts.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .Values.artifacts.existingClaim | quote }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- end }}

{{- define "warmpool.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "warmpool.artifacts.isFile" . }}
- name: artifacts
  mountPath: {{ include "warmpool.artifacts.dir" . | quote }}
{{- end }}
{{- end }}
