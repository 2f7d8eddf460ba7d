variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "cidr_block" {
  description = "CIDR of the VPC; private subnets are /20 slices of it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "One private subnet per zone (at least two for Aurora, MSK and ElastiCache)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer-managed key for the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the VPC flow logs."
  type        = number
  default     = 365
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints (no internet egress)."
  type        = list(string)
  default     = ["secretsmanager", "logs", "monitoring", "sqs", "sts", "kms", "ecr.api", "ecr.dkr", "cognito-idp", "xray"]
}

variable "public_subnet_offset" {
  description = "Index of the first public /24 (cidrsubnet(cidr_block, 8, offset + zone)); clear of the private /20s."
  type        = number
  default     = 200
}
