variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the function."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (egress to endpoints and Kafka)."
  type        = string
}

variable "gateway_prefix_list_ids" {
  description = "Prefix lists of the S3 and DynamoDB gateway endpoints."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Private subnets of the function."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer-managed key (environment, DLQ, logs)."
  type        = string
}

variable "stream_arn" {
  description = "DynamoDB stream of the PIX table."
  type        = string
}

variable "table_arn" {
  description = "PIX table (the handler's effect markers live there)."
  type        = string
}

variable "table_name" {
  description = "PIX table name."
  type        = string
}

variable "app_secret_arn" {
  description = "Application secret (Kafka credentials)."
  type        = string
}

variable "package_bucket" {
  description = "Bucket holding the signed deployment package."
  type        = string
}

variable "package_key" {
  description = "Key of the signed deployment package (built by CI)."
  type        = string
  default     = "lambda/finbank-pix-stream.zip"
}

variable "memory_mb" {
  description = "Function memory."
  type        = number
  default     = 512
}

variable "reserved_concurrency" {
  description = "Concurrency cap (shards x parallelization factor is the useful maximum)."
  type        = number
  default     = 20
}

variable "log_retention_days" {
  description = "Retention of the function's logs."
  type        = number
  default     = 365
}
