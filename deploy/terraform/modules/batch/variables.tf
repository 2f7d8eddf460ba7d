variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the job."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (egress to endpoints and Aurora)."
  type        = string
}

variable "gateway_prefix_list_ids" {
  description = "Prefix lists of the S3 and DynamoDB gateway endpoints."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Private subnets of the job."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer-managed key (logs, secret, bucket)."
  type        = string
}

variable "image" {
  description = "finbank container image (built from the repository's Dockerfile)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ECR repository of the image."
  type        = string
}

variable "container_command" {
  description = "Arguments after the image's ENTRYPOINT (finbank): yesterday's reconciliation, dry run."
  type        = list(string)
  default     = ["reconcile"]
}

variable "app_secret_arn" {
  description = "Application secret (FINBANK_SECRETS_ID)."
  type        = string
}

variable "table_arn" {
  description = "PIX table."
  type        = string
}

variable "table_name" {
  description = "PIX table name (FINBANK_PIX_TABLE_NAME)."
  type        = string
}

variable "files_bucket_name" {
  description = "Bucket of settlement files and reports (FINBANK_FILES_S3_BUCKET)."
  type        = string
}

variable "files_bucket_arn" {
  description = "Bucket of settlement files and reports."
  type        = string
}

variable "environment" {
  description = "dev or prod: the Environment dimension of the discrepancy metric."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the discrepancy metric (finbank_adapters.metrics.NAMESPACE)."
  type        = string
  default     = "Finbank"
}

variable "schedule_expression" {
  description = "When the daily job is submitted (UTC); 09:00 UTC is 06:00 in Brasília."
  type        = string
  default     = "cron(0 9 * * ? *)"
}

variable "vcpu" {
  description = "vCPUs of one job (Fargate values)."
  type        = string
  default     = "1"
}

variable "memory_mib" {
  description = "Memory of one job in MiB (Fargate values)."
  type        = string
  default     = "2048"
}

variable "max_vcpus" {
  description = "Cap of the compute environment."
  type        = number
  default     = 4
}

variable "timeout_seconds" {
  description = "A run longer than this is killed and retried once."
  type        = number
  default     = 7200
}

variable "log_retention_days" {
  description = "Retention of the job logs."
  type        = number
  default     = 365
}
