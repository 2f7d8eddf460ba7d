variable "table_name" {
  description = "Name of the PIX single table."
  type        = string
  default     = "finbank-pix"
}

variable "kms_key_arn" {
  description = "Customer-managed key for server-side encryption."
  type        = string
}
