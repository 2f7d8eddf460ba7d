variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two zones at least)."
  type        = list(string)
}

variable "client_cidr_blocks" {
  description = "Networks allowed to open PostgreSQL connections (the VPC)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer-managed key for storage, Performance Insights and the master secret."
  type        = string
}

variable "engine_version" {
  description = "Aurora PostgreSQL version."
  type        = string
  default     = "16.4"
}

variable "database_name" {
  description = "Initial database."
  type        = string
  default     = "finbank"
}

variable "instance_class" {
  description = "Instance class of the writer and readers."
  type        = string
  default     = "db.r6g.large"
}

variable "instance_count" {
  description = "Writer plus readers; two or more for a multi-AZ failover target."
  type        = number
  default     = 2
}

variable "backup_retention_days" {
  description = "Automated backup retention of the cluster."
  type        = number
  default     = 14
}

variable "backup_vault_retention_days" {
  description = "Retention of the AWS Backup recovery points."
  type        = number
  default     = 35
}
