output "repository_arn" {
  description = "ARN of the repository."
  value       = aws_ecr_repository.this.arn
}

output "repository_url" {
  description = "URL to push and pull the image."
  value       = aws_ecr_repository.this.repository_url
}

output "ecr_public_cache_prefix" {
  description = "Repository prefix under which ECR Public images are pulled through this registry."
  value       = aws_ecr_pull_through_cache_rule.ecr_public.ecr_repository_prefix
}
