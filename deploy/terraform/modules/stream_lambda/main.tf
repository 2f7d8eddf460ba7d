# The DynamoDB Streams consumer: finbank.lambdas.pix_stream_handler.
# It reports partial batch failures (ReportBatchItemFailures), so one poisoned
# record is retried alone (bisect) and, once retries are spent, its batch
# metadata goes to the on-failure SQS queue (the DLQ whose depth is alarmed).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  function_name = "${var.name_prefix}-pix-stream"
}

resource "aws_sqs_queue" "dlq" {
  name                      = "${local.function_name}-dlq"
  kms_master_key_id         = var.kms_key_arn
  message_retention_seconds = 1209600
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "this" {
  name        = local.function_name
  description = "Stream Lambda: HTTPS to the VPC endpoints, PostgreSQL (outbox) inside the VPC"
  vpc_id      = var.vpc_id

  egress {
    description = "AWS APIs through the VPC interface endpoints"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description     = "AWS APIs through the S3 and DynamoDB gateway endpoints"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = var.gateway_prefix_list_ids
  }

  egress {
    description = "PostgreSQL (Aurora): events go through the outbox"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }
}

# -- code signing: only packages signed by our profile deploy --------------------

resource "aws_signer_signing_profile" "this" {
  platform_id = "AWSLambda-SHA384-ECDSA"
  name_prefix = "finbank_pix_stream_"
}

resource "aws_lambda_code_signing_config" "this" {
  description = "Only packages signed by the finbank signing profile"
  allowed_publishers {
    signing_profile_version_arns = [aws_signer_signing_profile.this.version_arn]
  }
  policies {
    untrusted_artifact_on_deployment = "Enforce"
  }
}

# -- execution role: read this stream, write this DLQ and log group, nothing else ----

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = local.function_name
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "ReadTheStream"
    actions   = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
    resources = [var.stream_arn]
  }
  statement {
    sid       = "EffectMarkers"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [var.table_arn]
  }
  statement {
    sid       = "FailedBatchesToTheDlq"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.dlq.arn]
  }
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
  statement {
    sid       = "StackKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid       = "AppSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.app_secret_arn]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "pix-stream"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# ENIs in the VPC and X-Ray segments: AWS managed, scoped by AWS.
resource "aws_iam_role_policy_attachment" "vpc_access" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy_attachment" "xray" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_lambda_function" "this" {
  function_name                  = local.function_name
  role                           = aws_iam_role.this.arn
  runtime                        = "python3.12"
  architectures                  = ["arm64"]
  handler                        = "finbank.lambdas.pix_stream_handler"
  s3_bucket                      = var.package_bucket
  s3_key                         = var.package_key
  memory_size                    = var.memory_mb
  timeout                        = 60
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn
  code_signing_config_arn        = aws_lambda_code_signing_config.this.arn

  environment {
    variables = {
      FINBANK_PROFILE                 = "aws"
      FINBANK_SECRETS_ID              = var.app_secret_arn
      FINBANK_PIX_TABLE_NAME          = var.table_name
      FINBANK_KAFKA_SECURITY_PROTOCOL = "SASL_SSL"
      POWERTOOLS_SERVICE_NAME         = "finbank-pix-stream"
    }
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.this.id]
  }

  tracing_config {
    mode = "Active"
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_lambda_event_source_mapping" "stream" {
  event_source_arn                   = var.stream_arn
  function_name                      = aws_lambda_function.this.arn
  starting_position                  = "LATEST"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  maximum_retry_attempts             = 5
  maximum_record_age_in_seconds      = 3600
  bisect_batch_on_function_error     = true
  parallelization_factor             = 1 # records of one key stay in order
  function_response_types            = ["ReportBatchItemFailures"]

  # Only payment records (sk = "PAY"): index, idempotency and marker items are not events.
  filter_criteria {
    filter {
      pattern = jsonencode({ dynamodb = { Keys = { sk = { S = ["PAY"] } } } })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.dlq.arn
    }
  }
}
