output "credentials_secret_arn" {
  description = "ARN of the generated-credentials secret (holds redis_auth)."
  value       = aws_secretsmanager_secret.credentials.arn
}

output "credentials_secret_version_id" {
  description = "Version of the credentials secret, for readers that must wait for it."
  value       = aws_secretsmanager_secret_version.credentials.version_id
}

output "app_secret_arn" {
  description = "ARN of the application secret (FINBANK_SECRETS_ID)."
  value       = aws_secretsmanager_secret.app.arn
}
