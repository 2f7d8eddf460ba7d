output "app_secret_arn" {
  description = "Set FINBANK_SECRETS_ID to this in every finbank process."
  value       = module.secrets.app_secret_arn
}

output "task_role_arns" {
  description = "Task role of each finbank service (serve, relay, worker)."
  value       = module.compute.task_role_arns
}

output "api_dns_name" {
  description = "The API's load balancer: point the API's host name here (alias record)."
  value       = module.compute.load_balancer_dns_name
}

output "ecs_cluster_name" {
  description = "ECS cluster of serve, the relay and the settlement worker."
  value       = module.compute.cluster_name
}

output "ecr_repository_url" {
  description = "Where CI pushes the image."
  value       = module.ecr.repository_url
}

output "cognito_user_pool_id" {
  description = "FINBANK_COGNITO_USER_POOL_ID."
  value       = module.cognito.user_pool_id
}

output "cognito_client_id" {
  description = "FINBANK_COGNITO_CLIENT_ID."
  value       = module.cognito.client_id
}

output "cognito_sign_in_attribute" {
  description = "FINBANK_COGNITO_SIGN_IN_ATTRIBUTE (users log in with their e-mail)."
  value       = module.cognito.sign_in_attribute
}

output "pix_table_name" {
  description = "The PIX single table."
  value       = module.dynamodb.table_name
}

output "files_bucket" {
  description = "Settlement files and reconciliation reports."
  value       = module.s3.bucket_names["files"]
}

output "reconcile_job_queue_arn" {
  description = "Submit `finbank reconcile` jobs here."
  value       = module.batch.job_queue_arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.monitoring.alarm_topic_arn
}

output "auth_secrets_kms_key_arn" {
  description = "FINBANK_AUTH_SECRETS_KMS_KEY_ID: the key of TOTP secrets and MFA sessions at rest."
  value       = module.compute.auth_secrets_kms_key_arn
}
