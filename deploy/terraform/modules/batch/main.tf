# The daily reconciliation as an AWS Batch job on Fargate: the finbank image
# (ENTRYPOINT finbank) runs `finbank reconcile`, which reconciles yesterday (in
# São Paulo) as a dry run; a schedule submits it every morning. An operator
# reruns any day, or applies the voids, by overriding the command at submit
# time (`finbank reconcile --date YYYY-MM-DD --apply`; docs/operations.md,
# runbook "reconciliation discrepancies").

data "aws_region" "current" {}

locals {
  job_name = "${var.name_prefix}-reconcile"
}

resource "aws_security_group" "this" {
  name        = local.job_name
  description = "Reconciliation job: HTTPS to AWS endpoints, PostgreSQL inside the VPC"
  vpc_id      = var.vpc_id

  egress {
    description = "AWS APIs through the VPC interface endpoints"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description     = "S3 and DynamoDB through the gateway endpoints"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = var.gateway_prefix_list_ids
  }

  egress {
    description = "PostgreSQL (Aurora) inside the VPC"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/finbank/${var.name_prefix}/reconcile"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# -- roles ---------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Execution role: pull the image, write the job's log group. Nothing else.
resource "aws_iam_role" "execution" {
  name               = "${local.job_name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [var.ecr_repository_arn]
  }
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Job role: what `finbank reconcile` itself touches.
resource "aws_iam_role" "job" {
  name               = "${local.job_name}-job"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "job" {
  statement {
    sid       = "AppSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.app_secret_arn]
  }
  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid = "ReadPixRecordsOfTheDay"
    # the day's index (gsi2) is queried, then its records fetched by key in batches
    actions   = ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"]
    resources = [var.table_arn, "${var.table_arn}/index/gsi2"]
  }
  statement {
    sid       = "ReadStatements"
    actions   = ["s3:GetObject"]
    resources = ["${var.files_bucket_arn}/statements/*"] # FINBANK_STATEMENT_PATH's default
  }
  statement {
    sid = "WriteReports"
    # a large report is a multipart upload, aborted when it fails half-way
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.files_bucket_arn}/reports/*"] # FINBANK_REPORT_PREFIX's default
  }
  statement {
    sid       = "ListSettlementFiles"
    actions   = ["s3:ListBucket"]
    resources = [var.files_bucket_arn]
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "reconcile"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

# -- Batch ------------------------------------------------------------------------------

resource "aws_batch_compute_environment" "this" {
  compute_environment_name_prefix = "${local.job_name}-"
  type                            = "MANAGED"

  compute_resources {
    type               = "FARGATE"
    max_vcpus          = var.max_vcpus
    subnets            = var.subnet_ids
    security_group_ids = [aws_security_group.this.id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_batch_job_queue" "this" {
  name     = local.job_name
  state    = "ENABLED"
  priority = 1

  compute_environment_order {
    order               = 1
    compute_environment = aws_batch_compute_environment.this.arn
  }
}

resource "aws_batch_job_definition" "this" {
  name                  = local.job_name
  type                  = "container"
  platform_capabilities = ["FARGATE"]
  propagate_tags        = true

  retry_strategy {
    attempts = 2
  }

  timeout {
    attempt_duration_seconds = var.timeout_seconds
  }

  container_properties = jsonencode({
    image                  = var.image
    command                = var.container_command
    executionRoleArn       = aws_iam_role.execution.arn
    jobRoleArn             = aws_iam_role.job.arn
    readonlyRootFilesystem = true
    privileged             = false
    user                   = "10001"
    resourceRequirements = [
      { type = "VCPU", value = var.vcpu },
      { type = "MEMORY", value = var.memory_mib },
    ]
    # FINBANK_METRICS_*: ReconciliationDiscrepancies as an EMF line in the job's log group
    # (CloudWatch extracts it; no PutMetricData call, no permission)
    environment = [
      { name = "FINBANK_PROFILE", value = "aws" },
      { name = "FINBANK_SECRETS_ID", value = var.app_secret_arn },
      { name = "FINBANK_LOG_FORMAT", value = "json" },
      { name = "FINBANK_PIX_TABLE_NAME", value = var.table_name },
      { name = "FINBANK_FILES_BACKEND", value = "s3" },
      { name = "FINBANK_FILES_S3_BUCKET", value = var.files_bucket_name },
      { name = "FINBANK_METRICS_FORMAT", value = "emf" },
      { name = "FINBANK_METRICS_NAMESPACE", value = var.metrics_namespace },
      { name = "FINBANK_METRICS_ENVIRONMENT", value = var.environment },
    ]
    networkConfiguration         = { assignPublicIp = "DISABLED" }
    fargatePlatformConfiguration = { platformVersion = "LATEST" }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        "awslogs-group"         = aws_cloudwatch_log_group.this.name
        "awslogs-region"        = data.aws_region.current.name
        "awslogs-stream-prefix" = "reconcile"
      }
    }
  })
}

# -- daily schedule ---------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "daily" {
  name                = "${local.job_name}-daily"
  description         = "Submit the reconciliation of the previous day"
  schedule_expression = var.schedule_expression
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${local.job_name}-schedule"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
}

data "aws_iam_policy_document" "events" {
  statement {
    sid       = "SubmitTheReconciliationJob"
    actions   = ["batch:SubmitJob"]
    resources = [aws_batch_job_queue.this.arn, "arn:aws:batch:${data.aws_region.current.name}:*:job-definition/${local.job_name}*"]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "submit-job"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}

resource "aws_cloudwatch_event_target" "daily" {
  rule     = aws_cloudwatch_event_rule.daily.name
  arn      = aws_batch_job_queue.this.arn
  role_arn = aws_iam_role.events.arn

  batch_target {
    job_definition = aws_batch_job_definition.this.arn
    job_name       = local.job_name
  }
}
