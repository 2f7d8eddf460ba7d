variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer-managed key of the data buckets."
  type        = string
}

variable "data_bucket_suffixes" {
  description = "Data buckets to create: files (settlement files, reports), artifacts (signed packages)."
  type        = list(string)
  default     = ["files", "artifacts"]
}

variable "access_log_retention_days" {
  description = "How long access logs are kept."
  type        = number
  default     = 400
}

variable "noncurrent_version_days" {
  description = "How long overwritten or deleted object versions are kept."
  type        = number
  default     = 90
}
