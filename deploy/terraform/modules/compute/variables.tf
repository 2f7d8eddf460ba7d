variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "environment" {
  description = "dev or prod: FINBANK_METRICS_ENVIRONMENT, the Environment dimension of the metrics."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the services."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC (egress to endpoints, Aurora, Redis, MSK)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks (no public IP, no route to the internet)."
  type        = list(string)
}

variable "public_subnet_ids" {
  description = "Public subnets of the load balancer."
  type        = list(string)
}

variable "load_balancer_cidr_blocks" {
  description = "CIDRs the load balancer's addresses come from (its subnets): FINBANK_FORWARDED_ALLOW_IPS of finbank serve."
  type        = list(string)
}

variable "gateway_prefix_list_ids" {
  description = "Prefix lists of the S3 and DynamoDB gateway endpoints."
  type        = list(string)
}

variable "ingress_cidr_blocks" {
  description = "Clients allowed to reach the API over HTTPS (the internet by default; the WAF filters)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "kms_key_arn" {
  description = "Customer-managed key (logs, the secret, the PIX table)."
  type        = string
}

variable "image" {
  description = "finbank container image (the repository's Dockerfile; ENTRYPOINT finbank)."
  type        = string
}

variable "ecr_public_cache_prefix" {
  description = "Repository prefix of the ECR pull-through cache of ECR Public (modules/ecr), where the collector's image is pulled from."
  type        = string
}

variable "otel_collector_version" {
  description = "Tag of the AWS Distro for OpenTelemetry collector (public.ecr.aws/aws-observability/aws-otel-collector) run beside each task."
  type        = string
  default     = "v0.40.0"
}

variable "ecr_repository_arn" {
  description = "ECR repository of the image."
  type        = string
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

variable "access_log_bucket" {
  description = "Bucket of the load balancer's access logs (prefix alb/)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the API's host name (TLS ends at the load balancer)."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener: TLS 1.3 and 1.2 with forward secrecy only."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "waf_rate_limit_per_5_minutes" {
  # Brazilian mobile carriers put many customers behind one address (CGNAT): this is a
  # flood guard, not a per-customer limit (the service limits /v1/auth/* per address
  # itself, and logins are throttled per username).
  description = "Requests per client address in 5 minutes before the WAF blocks it."
  type        = number
  default     = 10000
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of finbank's metrics (finbank_adapters.metrics.NAMESPACE)."
  type        = string
  default     = "Finbank"
}

variable "log_retention_days" {
  description = "Retention of the services' and the WAF's logs."
  type        = number
  default     = 365
}

variable "serve_port" {
  description = "Port finbank serve listens on in the task."
  type        = number
  default     = 8000
}

variable "serve_cpu" {
  description = "CPU units of a serve task (Fargate values)."
  type        = number
  default     = 1024
}

variable "serve_memory_mib" {
  description = "Memory of a serve task in MiB."
  type        = number
  default     = 2048
}

variable "serve_min_tasks" {
  description = "Fewest serve tasks (one per zone at least, so a zone can fail)."
  type        = number
  default     = 3
}

variable "serve_max_tasks" {
  description = "Most serve tasks (bounded by Aurora's connections: tasks x FINBANK_POSTGRES_POOL_MAX)."
  type        = number
  default     = 12
}

variable "serve_cpu_target_percent" {
  description = "Average CPU the serve service is scaled to keep."
  type        = number
  default     = 60
}

variable "serve_requests_per_target" {
  description = "Requests per task per minute the serve service is scaled to keep (ALBRequestCountPerTarget)."
  type        = number
  default     = 3000
}

variable "relay_tasks" {
  description = "Outbox relays; at least two, so one failing (or being replaced) never stops publishing."
  type        = number
  default     = 2

  validation {
    condition     = var.relay_tasks >= 2
    error_message = "run at least two relays."
  }
}

variable "relay_cpu" {
  description = "CPU units of a relay task."
  type        = number
  default     = 512
}

variable "relay_memory_mib" {
  description = "Memory of a relay task in MiB."
  type        = number
  default     = 1024
}

variable "worker_min_tasks" {
  description = "Fewest settlement workers."
  type        = number
  default     = 2
}

variable "worker_max_tasks" {
  description = "Most settlement workers: the partitions of the PIX topic (a consumer more would idle)."
  type        = number
  default     = 12
}

variable "worker_cpu" {
  description = "CPU units of a worker task."
  type        = number
  default     = 512
}

variable "worker_memory_mib" {
  description = "Memory of a worker task in MiB."
  type        = number
  default     = 1024
}

variable "automatic_tasks" {
  description = "Pix Automático schedulers; at least two, so one failing never skips a day's window."
  type        = number
  default     = 2

  validation {
    condition     = var.automatic_tasks >= 2
    error_message = "Run at least two Pix Automático schedulers."
  }
}

variable "automatic_cpu" {
  description = "CPU units of a Pix Automático scheduler task."
  type        = number
  default     = 512
}

variable "automatic_memory_mib" {
  description = "Memory of a Pix Automático scheduler task in MiB."
  type        = number
  default     = 1024
}

variable "worker_lag_per_task_target" {
  description = "Consumer lag per worker the worker service is scaled to keep (records)."
  type        = number
  default     = 100
}

variable "consumer_group" {
  description = "Consumer group of the settlement worker (finbank_adapters.workers.pix_settlement.SETTLEMENT_GROUP)."
  type        = string
  default     = "finbank-pix-settlement"
}

variable "consumer_topic" {
  description = "Topic the settlement worker consumes (its logical name, the ConsumerGroupLag Topic dimension)."
  type        = string
  default     = "finbank.pix.v1"
}

variable "auth_secrets_key_rotation_days" {
  description = "KMS rotates the material of the auth secrets' key this often (the key id stays)."
  type        = number
  default     = 365
}

variable "auth_secrets_encryption_context" {
  description = "Value of finbank-purpose in the encryption context finbank_adapters.crypto.kms sends."
  type        = string
  default     = "secrets-at-rest"
}
