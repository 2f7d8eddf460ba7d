output "role_arn" {
  description = "Task role of the finbank service."
  value       = aws_iam_role.app.arn
}
