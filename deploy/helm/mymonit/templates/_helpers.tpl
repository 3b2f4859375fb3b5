{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "mymonit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release full name: <release>-mymonit unless the release name already holds the chart name. */}}
{{- define "mymonit.fullname" -}}
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

{{/* Name of a component's objects: <fullname>-<component>. Call with (dict "root" $ "component" "api"). */}}
{{- define "mymonit.componentName" -}}
{{- printf "%s-%s" (include "mymonit.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by every object. */}}
{{- define "mymonit.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "mymonit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mymonit
{{- end }}

{{/* Selector labels of a component. Call with (dict "root" $ "component" "api"). */}}
{{- define "mymonit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mymonit.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All labels of a component's objects. */}}
{{- define "mymonit.componentLabels" -}}
{{ include "mymonit.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Service account name. */}}
{{- define "mymonit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mymonit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference. Call with (dict "root" $ "image" .Values.api.image). */}}
{{- define "mymonit.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- if .root.Values.image.registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* Port of a host:port address. */}}
{{- define "mymonit.addrPort" -}}
{{- regexFind "[0-9]+$" . }}
{{- end }}

{{/* Environment of every component: logging. */}}
{{- define "mymonit.logEnv" -}}
- name: MYMONIT_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
{{- if .Values.config.logstashAddr }}
- name: MYMONIT_LOGSTASH_ADDR
  value: {{ .Values.config.logstashAddr | quote }}
{{- end }}
{{- end }}

{{/* Environment of the MySQL/MariaDB users: the DSN as a file. */}}
{{- define "mymonit.mysqlEnv" -}}
- name: MYMONIT_MYSQL_DSN_FILE
  value: /run/secrets/mymonit/mysql/{{ .Values.secrets.mysql.dsnKey }}
- name: MYMONIT_MYSQL_MIGRATE_ON_START
  value: "false"
{{- end }}

{{/* Environment of the RabbitMQ users: the URL as a file and the topology. */}}
{{- define "mymonit.amqpEnv" -}}
- name: MYMONIT_AMQP_URL_FILE
  value: /run/secrets/mymonit/amqp/{{ .Values.secrets.amqp.urlKey }}
- name: MYMONIT_AMQP_EXCHANGE
  value: {{ .Values.config.amqp.exchange | quote }}
- name: MYMONIT_AMQP_QUEUE
  value: {{ .Values.config.amqp.queue | quote }}
- name: MYMONIT_AMQP_DEAD_EXCHANGE
  value: {{ .Values.config.amqp.deadExchange | quote }}
- name: MYMONIT_AMQP_DEAD_QUEUE
  value: {{ .Values.config.amqp.deadQueue | quote }}
- name: MYMONIT_AMQP_QUEUE_TYPE
  value: {{ .Values.config.amqp.queueType | quote }}
- name: MYMONIT_AMQP_DELIVERY_LIMIT
  value: {{ .Values.config.amqp.deliveryLimit | quote }}
{{- end }}

{{/* Secret volumes. Call with (dict "root" $ "mysql" true "amqp" true "firebase" false). */}}
{{- define "mymonit.secretVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .mysql }}
- name: mysql
  secret:
    secretName: {{ .root.Values.secrets.mysql.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.secrets.mysql.dsnKey }}
        path: {{ .root.Values.secrets.mysql.dsnKey }}
{{- end }}
{{- if .amqp }}
- name: amqp
  secret:
    secretName: {{ .root.Values.secrets.amqp.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.secrets.amqp.urlKey }}
        path: {{ .root.Values.secrets.amqp.urlKey }}
{{- end }}
{{- if and .firebase .root.Values.secrets.firebase.existingSecret }}
- name: firebase
  secret:
    secretName: {{ .root.Values.secrets.firebase.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .root.Values.secrets.firebase.credentialsKey }}
        path: {{ .root.Values.secrets.firebase.credentialsKey }}
{{- end }}
{{- end }}

{{/* Mounts of the secret volumes; same arguments as mymonit.secretVolumes. */}}
{{- define "mymonit.secretMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .mysql }}
- name: mysql
  mountPath: /run/secrets/mymonit/mysql
  readOnly: true
{{- end }}
{{- if .amqp }}
- name: amqp
  mountPath: /run/secrets/mymonit/amqp
  readOnly: true
{{- end }}
{{- if and .firebase .root.Values.secrets.firebase.existingSecret }}
- name: firebase
  mountPath: /run/secrets/mymonit/firebase
  readOnly: true
{{- end }}
{{- end }}

{{/* Probes on a named port. */}}
{{- define "mymonit.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: {{ . }}
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ . }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ . }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}

{{/* Pod-level settings shared by every pod. */}}
{{- define "mymonit.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}
