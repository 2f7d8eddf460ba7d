# The finbank image's repository: immutable tags (a tag names one build
# forever), scan on push, encrypted with the stack's key, old untagged images expire.

resource "aws_ecr_repository" "this" {
  name                 = "finbank"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Expire untagged images after 14 days"
      selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = 14 }
      action       = { type = "expire" }
    }]
  })
}

# Images from ECR Public the stack runs beside finbank (the OpenTelemetry collector of
# modules/compute): the tasks have no internet egress, so they pull them from this
# account's registry, which fetches and caches them from ECR Public on the first pull.
resource "aws_ecr_pull_through_cache_rule" "ecr_public" {
  ecr_repository_prefix = "ecr-public"
  upstream_registry_url = "public.ecr.aws"
}
