output "function_name" {
  description = "Name of the stream Lambda."
  value       = aws_lambda_function.this.function_name
}

output "dlq_name" {
  description = "Name of the on-failure queue (alarmed on depth)."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_arn" {
  description = "ARN of the on-failure queue."
  value       = aws_sqs_queue.dlq.arn
}

output "signing_profile_name" {
  description = "Signer profile CI signs the package with."
  value       = aws_signer_signing_profile.this.name
}
