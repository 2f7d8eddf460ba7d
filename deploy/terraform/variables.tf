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

variable "api_certificate_arn" {
  description = "ACM certificate (in the stack's region) of the API's host name; the load balancer ends TLS with it."
  type        = string
}

variable "api_ingress_cidr_blocks" {
  description = "Clients allowed to reach the API over HTTPS (the internet by default; the WAF filters)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "serve_min_tasks" {
  description = "Fewest finbank serve tasks."
  type        = number
  default     = 3
}

variable "serve_max_tasks" {
  description = "Most finbank serve tasks."
  type        = number
  default     = 12
}

variable "relay_tasks" {
  description = "Outbox relays (at least two)."
  type        = number
  default     = 2
}

variable "worker_min_tasks" {
  description = "Fewest settlement workers."
  type        = number
  default     = 2
}

variable "worker_max_tasks" {
  description = "Most settlement workers (the PIX topic's partitions)."
  type        = number
  default     = 12
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
