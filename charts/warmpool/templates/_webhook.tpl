{{/* The validating admission webhook (templates/webhook.yaml): names and the operator's side. */}}
{{- define "warmpool.webhook.enabled" -}}
{{- if .Values.admissionWebhook.enabled }}true{{ end }}
{{- end }}

{{- define "warmpool.webhook.service" -}}
{{- printf "%s-webhook" (include "warmpool.operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warmpool.webhook.secret" -}}
{{- if eq .Values.admissionWebhook.certificate.source "existingSecret" }}
{{- required "admissionWebhook.certificate.existingSecret is required with source existingSecret" .Values.admissionWebhook.certificate.existingSecret }}
{{- else }}
{{- printf "%s-webhook-tls" (include "warmpool.operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "warmpool.webhook.mountPath" -}}
/etc/warmpool/webhook
{{- end }}

{{/* Environment of the operator container (WARMPOOL_WEBHOOK_*). */}}
{{- define "warmpool.webhook.env" -}}
{{- if include "warmpool.webhook.enabled" . }}
- name: WARMPOOL_WEBHOOK_PORT
  value: {{ .Values.admissionWebhook.port | quote }}
- name: WARMPOOL_WEBHOOK_CERT_DIR
  value: {{ include "warmpool.webhook.mountPath" . | quote }}
{{- end }}
{{- end }}

{{- define "warmpool.webhook.ports" -}}
{{- if include "warmpool.webhook.enabled" . }}
- name: webhook
  containerPort: {{ .Values.admissionWebhook.port }}
  protocol: TCP
{{- end }}
{{- end }}

{{- define "warmpool.webhook.volumes" -}}
{{- if include "warmpool.webhook.enabled" . }}
- name: webhook-tls
  secret:
    secretName: {{ include "warmpool.webhook.secret" . | quote }}
{{- end }}
{{- end }}

{{- define "warmpool.webhook.volumeMounts" -}}
{{- if include "warmpool.webhook.enabled" . }}
- name: webhook-tls
  mountPath: {{ include "warmpool.webhook.mountPath" . | quote }}
  readOnly: true
{{- end }}
{{- end }}
