output "job_queue_arn" {
  description = "Job queue of the reconciliation."
  value       = aws_batch_job_queue.this.arn
}

output "job_definition_name" {
  description = "Job definition of the reconciliation."
  value       = aws_batch_job_definition.this.name
}

output "job_role_arn" {
  description = "Role of the running job."
  value       = aws_iam_role.job.arn
}
