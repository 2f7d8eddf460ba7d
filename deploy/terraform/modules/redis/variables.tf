variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two zones at least)."
  type        = list(string)
}

variable "client_cidr_blocks" {
  description = "Networks allowed to connect (the VPC)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer-managed key for data at rest and the slow log."
  type        = string
}

variable "auth_token_secret_arn" {
  description = "Secret whose JSON holds redis_auth (the AUTH token)."
  type        = string
}

variable "auth_token_secret_version_id" {
  description = "Version of that secret holding the current token."
  type        = string
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.t4g.medium"
}

variable "node_count" {
  description = "Primary plus replicas (two or more for failover)."
  type        = number
  default     = 2
}

variable "log_retention_days" {
  description = "Retention of the slow log."
  type        = number
  default     = 365
}
