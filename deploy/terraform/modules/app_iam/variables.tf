variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "app_secret_arn" {
  description = "Application secret (FINBANK_SECRETS_ID)."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed key."
  type        = string
}

variable "table_arn" {
  description = "PIX table."
  type        = string
}

variable "files_bucket_arn" {
  description = "Bucket of settlement files and reports."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the application's metrics."
  type        = string
  default     = "Finbank"
}
