{{- define "nvbind.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "nvbind.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nvbind.labels" -}}
app.kubernetes.io/name: {{ include "nvbind.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "nvbind.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nvbind.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "nvbind.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The config.toml written on the host: the user's, plus the policy preset. */}}
{{- define "nvbind.configToml" -}}
{{- .Values.config -}}
{{- if .Values.policy.preset }}
[policy]
preset = {{ .Values.policy.preset | quote }}
{{- end -}}
{{- end -}}

{{/* The installer's environment, shared by install (init) and uninstall (preStop). */}}
{{- define "nvbind.installEnv" -}}
- name: HOST_ROOT
  value: /host
- name: SRC_DIR
  value: /opt/nvbind/bin
- name: NVBIND_VERSION
  value: {{ default .Chart.AppVersion .Values.image.tag | quote }}
- name: HOST_DIR
  value: {{ .Values.install.hostDir | quote }}
- name: DRIVER_ROOT
  value: {{ .Values.install.driverRoot | quote }}
- name: CDI_SPEC
  value: {{ .Values.install.cdiSpec | quote }}
- name: RUNTIMES
  value: {{ join " " .Values.install.runtimes | quote }}
- name: CONTAINERD_CONFIG
  value: {{ .Values.install.containerdConfig | quote }}
- name: CRIO_CONFIG
  value: {{ .Values.install.crioConfig | quote }}
- name: RESTART_RUNTIME
  value: {{ .Values.install.restartRuntime | quote }}
- name: CONFIG_TOML
  value: {{ include "nvbind.configToml" . | quote }}
{{- end -}}
