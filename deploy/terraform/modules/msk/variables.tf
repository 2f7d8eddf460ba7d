variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one broker per subnet (broker_count a multiple of their number)."
  type        = list(string)
}

variable "client_cidr_blocks" {
  description = "Networks allowed to reach the SASL_SSL listener (the VPC)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer-managed key for data at rest, logs and the SCRAM secret."
  type        = string
}

variable "kafka_version" {
  description = "Apache Kafka version of the cluster."
  type        = string
  default     = "3.6.0"
}

variable "broker_count" {
  description = "Number of brokers."
  type        = number
  default     = 3
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.m7g.large"
}

variable "broker_volume_gib" {
  description = "EBS volume per broker."
  type        = number
  default     = 100
}

variable "scram_username" {
  description = "SCRAM user of the application."
  type        = string
  default     = "finbank-app"
}

variable "log_retention_days" {
  description = "Retention of the broker logs."
  type        = number
  default     = 365
}
