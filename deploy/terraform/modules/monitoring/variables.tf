variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "environment" {
  description = "dev or prod (dimension of the custom metrics)."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed key of the alarm topic."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by email)."
  type        = list(string)
  default     = []
}

variable "load_balancer_arn_suffix" {
  description = "ARN suffix (app/name/id) of the load balancer in front of finbank serve."
  type        = string
}

variable "http_5xx_rate_percent" {
  description = "Alarm when this percentage of responses are 5xx for 3 minutes."
  type        = number
  default     = 1
}

variable "http_p99_latency_seconds" {
  description = "Alarm when p99 latency exceeds this for 4 of 5 minutes."
  type        = number
  default     = 1
}

variable "dlq_name" {
  description = "On-failure queue of the stream Lambda."
  type        = string
}

variable "stream_function_name" {
  description = "Name of the stream Lambda."
  type        = string
}

variable "consumer_group" {
  description = "Consumer group of the settlement worker."
  type        = string
  default     = "finbank-pix-settlement"
}

variable "consumer_topic" {
  description = "Topic the settlement worker consumes (the Topic dimension of ConsumerGroupLag)."
  type        = string
  default     = "finbank.pix.v1"
}

variable "consumer_lag_max_messages" {
  description = "Alarm above this many messages behind."
  type        = number
  default     = 1000
}

variable "metrics_namespace" {
  description = "Namespace of the application's custom metrics."
  type        = string
  default     = "Finbank"
}

variable "outbox_max_age_seconds" {
  description = "Alarm when the oldest unpublished outbox event is older than this for 3 minutes."
  type        = number
  default     = 120
}

variable "settlement_p99_seconds" {
  description = "Alarm when p99 PIX settlement latency exceeds this for 3 of 5 minutes."
  type        = number
  default     = 10
}

variable "mfa_failures_per_5_minutes" {
  description = "Alarm above this many wrong MFA codes in 5 minutes."
  type        = number
  default     = 50
}

variable "lockouts_per_5_minutes" {
  description = "Alarm above this many login lockouts in 5 minutes."
  type        = number
  default     = 20
}
