output "cluster_name" {
  description = "ECS cluster of the finbank services."
  value       = aws_ecs_cluster.this.name
}

output "service_names" {
  description = "ECS services: serve, relay, the settlement worker and the Pix Automático scheduler."
  value = {
    serve     = aws_ecs_service.serve.name
    relay     = aws_ecs_service.relay.name
    worker    = aws_ecs_service.worker.name
    automatic = aws_ecs_service.automatic.name
  }
}

output "load_balancer_arn_suffix" {
  description = "ARN suffix of the API's load balancer (dimension of its CloudWatch metrics)."
  value       = aws_lb.this.arn_suffix
}

output "load_balancer_dns_name" {
  description = "Point the API's host name (an alias record) here."
  value       = aws_lb.this.dns_name
}

output "task_role_arns" {
  description = "Task role of each service."
  value       = { for name, role in aws_iam_role.task : name => role.arn }
}

output "task_security_group_id" {
  description = "Security group of the tasks (Aurora, Redis and MSK may admit it)."
  value       = aws_security_group.tasks.id
}

output "auth_secrets_kms_key_arn" {
  description = "KMS key of the auth secrets at rest (FINBANK_AUTH_SECRETS_KMS_KEY_ID of serve)."
  value       = aws_kms_key.auth_secrets.arn
}
