variable "kms_key_arn" {
  description = "Customer-managed key of the repository."
  type        = string
}
