variable "environment" {
  description = "Environment name: dev or prod (one AWS account each)."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "AWS region of the stack."
  type        = string
  default     = "sa-east-1"
}

variable "availability_zones" {
  description = "Zones of the private subnets."
  type        = list(string)
  default     = ["sa-east-1a", "sa-east-1b", "sa-east-1c"]
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "aurora_instance_class" {
  description = "Aurora instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "aurora_instance_count" {
  description = "Aurora writer plus readers."
  type        = number
  default     = 2
}

variable "msk_broker_count" {
  description = "MSK brokers (a multiple of the number of zones)."
  type        = number
  default     = 3
}

variable "msk_broker_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.medium"
}

variable "image_tag" {
  description = "Tag of the finbank image in ECR (CI pushes one per commit)."
  type        = string
}

variable "lambda_package_key" {
  description = "Key of the signed stream-Lambda package in the artifacts bucket."
  type        = string
  default     = "lambda/finbank-pix-stream.zip"
}

variable "load_balancer_arn_suffix" {
  description = "ARN suffix of the load balancer in front of finbank serve (from the compute platform)."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses notified by the alarms."
  type        = list(string)
  default     = []
}

variable "http_5xx_rate_percent" {
  description = "5xx rate alarm threshold (%)."
  type        = number
  default     = 1
}

variable "http_p99_latency_seconds" {
  description = "p99 latency alarm threshold (s)."
  type        = number
  default     = 1
}
