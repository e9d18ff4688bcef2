{{- define "aima.name" -}}{{ .Release.Name }}-aima{{- end -}}
{{- define "aima.labels" -}}
app.kubernetes.io/name: aima
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "aima.tokenSecret" -}}
{{- if .Values.token.existingSecret -}}{{ .Values.token.existingSecret }}{{- else -}}{{ include "aima.name" . }}-token{{- end -}}
{{- end -}}
{{- /* Cluster-wide objects: unique per release and namespace. */ -}}
{{- define "aima.clusterName" -}}{{ .Release.Namespace }}-{{ .Release.Name }}-aima{{- end -}}
