variable "name_prefix" {
  description = "Prefix of every resource name, e.g. finbank-prod."
  type        = string
}

variable "sms_external_id" {
  description = "External id Cognito presents when assuming the SMS role (not a secret)."
  type        = string
}

variable "sms_region" {
  description = "Region whose SNS sends the SMS codes."
  type        = string
  default     = "sa-east-1"
}
