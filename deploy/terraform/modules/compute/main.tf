# The finbank processes on ECS Fargate (README.md says why Fargate):
#
# - serve:   `finbank serve` behind an internet-facing ALB (TLS 1.2+ with the ACM
#            certificate, WAF), health checks on /ready (the ALB: out of rotation
#            when a dependency is down) and /health (the container: restart when the
#            process hangs), autoscaling on CPU and on requests per target;
# - relay:   `finbank relay`, at least two tasks (a claim leases an aggregate to one
#            relay at a time: tests/integration/test_kafka_relay.py);
# - worker:  `finbank worker pix-settlement`, autoscaling on the consumer lag per task
#            (the ConsumerGroupLag metric the worker itself emits, finbank_adapters.metrics);
# - automatic: `finbank worker pix-automatic`, the Pix Automático scheduler (the day's
#            debits and their retries), a fixed number of tasks, at least two: two
#            schedulers at once still make one debit per due charge
#            (tests/e2e/test_pix_automatic_postgres_http.py).
#
# Each service has its own task role with only what its process touches. Every task
# reads its configuration from the application secret (FINBANK_SECRETS_ID, read by
# the process at start and re-read every five minutes, so a rotated value is picked
# up without a redeploy) and writes metrics as EMF lines into its log group.
#
# Traces: every task runs the AWS Distro for OpenTelemetry collector beside the process
# (the `otel-collector` container, its X-Ray configuration): the process has
# FINBANK_TRACING=otel and exports its spans over OTLP/HTTP to 127.0.0.1:4318, the
# collector sends them to X-Ray (through the VPC's xray endpoint). The tasks have no
# internet egress, so the collector's image comes through an ECR pull-through cache of
# ECR Public (modules/ecr), pulled like the finbank image through the ECR endpoints.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  services = {
    serve = {
      command = ["serve", "--host", "0.0.0.0", "--port", tostring(var.serve_port)]
      cpu     = var.serve_cpu
      memory  = var.serve_memory_mib
    }
    relay = {
      command = ["relay"]
      cpu     = var.relay_cpu
      memory  = var.relay_memory_mib
    }
    worker = {
      command = ["worker", "pix-settlement"]
      cpu     = var.worker_cpu
      memory  = var.worker_memory_mib
    }
    automatic = {
      command = ["worker", "pix-automatic"]
      cpu     = var.automatic_cpu
      memory  = var.automatic_memory_mib
    }
  }
  # what every process of the aws profile gets; the rest comes from the secret
  common_environment = [
    { name = "FINBANK_PROFILE", value = "aws" },
    { name = "FINBANK_SECRETS_ID", value = var.app_secret_arn },
    { name = "FINBANK_LOG_FORMAT", value = "json" },
    { name = "FINBANK_PIX_TABLE_NAME", value = var.table_name },
    { name = "FINBANK_METRICS_FORMAT", value = "emf" },
    { name = "FINBANK_METRICS_NAMESPACE", value = var.metrics_namespace },
    { name = "FINBANK_METRICS_ENVIRONMENT", value = var.environment },
    # spans to the collector beside the process (docs/operations.md, "Exporting (OTLP)")
    { name = "FINBANK_TRACING", value = "otel" },
    { name = "OTEL_EXPORTER_OTLP_ENDPOINT", value = "http://127.0.0.1:4318" },
  ]
  # the AWS Distro for OpenTelemetry collector, from the pull-through cache of ECR Public
  collector_image          = "${data.aws_caller_identity.current.account_id}.dkr.ecr.${data.aws_region.current.name}.amazonaws.com/${var.ecr_public_cache_prefix}/aws-observability/aws-otel-collector:${var.otel_collector_version}"
  collector_repository_arn = "arn:${data.aws_partition.current.partition}:ecr:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:repository/${var.ecr_public_cache_prefix}/aws-observability/aws-otel-collector"
  environment = {
    # uvicorn trusts X-Forwarded-For/-Proto only from the load balancer's subnets; TOTP
    # secrets and MFA sessions are sealed with the auth secrets' key (serve alone opens them)
    serve = concat(local.common_environment, [
      { name = "FINBANK_FORWARDED_ALLOW_IPS", value = join(",", var.load_balancer_cidr_blocks) },
      { name = "FINBANK_AUTH_SECRETS_KMS_KEY_ID", value = aws_kms_key.auth_secrets.arn },
    ])
    relay     = local.common_environment
    worker    = local.common_environment
    automatic = local.common_environment
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled" # RunningTaskCount per service: the worker's lag per task
  }
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

resource "aws_cloudwatch_log_group" "service" {
  for_each          = local.services
  name              = "/finbank/${var.name_prefix}/${each.key}"
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

# Execution role (the ECS agent): pull the image, write the services' log groups.
resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-ecs-execution"
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
    sid       = "ServiceLogGroups"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for group in aws_cloudwatch_log_group.service : "${group.arn}:*"]
  }
  statement {
    # the collector's image through the pull-through cache: the first pull of a tag
    # creates the cached repository and imports the image from ECR Public
    sid = "PullTheCollectorImage"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
      "ecr:BatchImportUpstreamImage", "ecr:CreateRepository",
    ]
    resources = [local.collector_repository_arn]
  }
  statement {
    sid       = "ImageLayersKey"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task roles: one per service, exactly what its process touches.
resource "aws_iam_role" "task" {
  for_each           = local.services
  name               = "${var.name_prefix}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "task" {
  for_each = local.services

  statement {
    sid       = "AppSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.app_secret_arn]
  }
  statement {
    # the collector beside the process sends its spans to X-Ray
    sid       = "XRaySegments"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # these X-Ray actions have no resource-level permissions
  }
  statement {
    sid       = "DecryptTheSecret"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
  }

  # serve, the worker and the Pix Automático scheduler (its debits are PIX payments: the
  # payment records, the charges, the limits): the PIX records (payments, keys, charges,
  # limits, claims); the relay only reads PostgreSQL and writes Kafka, so it gets no
  # statement here
  dynamic "statement" {
    for_each = contains(["serve", "worker", "automatic"], each.key) ? [1] : []
    content {
      sid = "PixRecords"
      actions = [
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
        "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:TransactWriteItems",
        "dynamodb:BatchGetItem", # a page of payments: the index, then the records by key
      ]
      resources = [var.table_arn, "${var.table_arn}/index/*"]
    }
  }
  dynamic "statement" {
    for_each = contains(["serve", "worker", "automatic"], each.key) ? [1] : []
    content {
      sid       = "PixRecordsKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["dynamodb.${data.aws_region.current.name}.amazonaws.com"]
      }
    }
  }
  # serve: the data keys of TOTP secrets and MFA sessions (finbank_adapters.crypto.kms asks
  # KMS directly, always with this encryption context)
  dynamic "statement" {
    for_each = each.key == "serve" ? [1] : []
    content {
      sid       = "AuthSecretsKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [aws_kms_key.auth_secrets.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:EncryptionContext:finbank-purpose"
        values   = [var.auth_secrets_encryption_context]
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.services
  name     = "finbank-${each.key}"
  role     = aws_iam_role.task[each.key].id
  policy   = data.aws_iam_policy_document.task[each.key].json
}

# -- the key of the auth secrets at rest ---------------------------------------------------
#
# TOTP secrets and MFA challenge records are envelope-encrypted (docs/auth.md, "Secrets at
# rest"): each value gets a data key from KMS (GenerateDataKey) and is opened with Decrypt.
# A key of their own, not the stack's key: its policy names the only principal that may
# use it. The account (through IAM) may administer the key but not use it, nor grant its
# use; the serve task role may generate and decrypt data keys, with the encryption context
# the code always sends. The relay, the worker, Batch and the Lambda never touch these
# secrets and get nothing. `finbank secrets rewrap` and `status` run as one-off tasks of
# serve's task definition (docs/operations.md, "Rotate the JWT and KMS keys").

resource "aws_kms_key" "auth_secrets" {
  description             = "${var.name_prefix} auth secrets at rest (TOTP secrets, MFA sessions)"
  enable_key_rotation     = true
  rotation_period_in_days = var.auth_secrets_key_rotation_days
  deletion_window_in_days = 30
  is_enabled              = true

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # no Encrypt/Decrypt/GenerateDataKey/ReEncrypt and no CreateGrant: administration only
        Sid       = "AdministerNotUse"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action = [
          "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:ListKeyPolicies",
          "kms:GetKeyRotationStatus", "kms:EnableKeyRotation", "kms:ListKeyRotations",
          "kms:RotateKeyOnDemand", "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource",
          "kms:UpdateKeyDescription", "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias",
          "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
          "kms:ListGrants", "kms:RevokeGrant",
        ]
        Resource = "*" # in a key policy, "*" is this key
      },
      {
        Sid       = "ServeSealsAndOpensAuthSecrets"
        Effect    = "Allow"
        Principal = { AWS = aws_iam_role.task["serve"].arn }
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = "*"
        Condition = {
          StringEquals = { "kms:EncryptionContext:finbank-purpose" = var.auth_secrets_encryption_context }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "auth_secrets" {
  name          = "alias/${var.name_prefix}-auth-secrets"
  target_key_id = aws_kms_key.auth_secrets.key_id
}

# -- security groups -------------------------------------------------------------------

resource "aws_security_group" "alb" {
  name        = "${var.name_prefix}-alb"
  description = "HTTPS from the clients to the load balancer; to finbank serve only"
  vpc_id      = var.vpc_id

  ingress {
    description = "HTTPS from the allowed clients"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.ingress_cidr_blocks
  }

  egress {
    description = "finbank serve in the private subnets"
    from_port   = var.serve_port
    to_port     = var.serve_port
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }
}

resource "aws_security_group" "tasks" {
  name        = "${var.name_prefix}-tasks"
  description = "finbank tasks: the ALB in, AWS endpoints, Aurora, Redis and MSK out"
  vpc_id      = var.vpc_id

  ingress {
    description     = "finbank serve from the load balancer"
    from_port       = var.serve_port
    to_port         = var.serve_port
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }

  egress {
    description = "AWS APIs through the VPC interface endpoints"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description     = "S3 (image layers) and DynamoDB through the gateway endpoints"
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

  egress {
    description = "Redis (ElastiCache, TLS) inside the VPC"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }

  egress {
    description = "Kafka (MSK, SASL/SCRAM over TLS) inside the VPC"
    from_port   = 9096
    to_port     = 9096
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr_block]
  }
}

# -- the load balancer -----------------------------------------------------------------

resource "aws_lb" "this" {
  name                       = "${var.name_prefix}-api"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  idle_timeout               = 60

  access_logs {
    bucket  = var.access_log_bucket
    prefix  = "alb"
    enabled = true
  }
}

resource "aws_lb_target_group" "serve" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays inside the VPC on its private subnets, and the tasks' security group admits only the load balancer
  name                 = "${var.name_prefix}-serve"
  port                 = var.serve_port
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    path                = "/ready" # the ledger and stores answer: take a task out while they do not
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.serve.arn
  }
}

# -- WAF in front of the API -------------------------------------------------------------

resource "aws_wafv2_web_acl" "api" {
  name  = "${var.name_prefix}-api"
  scope = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    # known bad addresses (botnets, scanners)
    name     = "AWSManagedRulesAmazonIpReputationList"
    priority = 0
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAmazonIpReputationList"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesAmazonIpReputationList"
      sampled_requests_enabled   = true
    }
  }

  rule {
    # the OWASP top ten basics
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 1
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesCommonRuleSet"
      sampled_requests_enabled   = true
    }
  }

  rule {
    # request patterns of known exploits, Log4Shell (CVE-2021-44228) among them
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }

  rule {
    # Tor exits, anonymising proxies and hosting providers: the API's clients are the
    # bank's apps on customers' devices, not servers or anonymisers
    name     = "AWSManagedRulesAnonymousIpList"
    priority = 3
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "AWSManagedRulesAnonymousIpList"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "rate-limit-per-address"
    priority = 10
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5_minutes
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "rate-limit-per-address"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name_prefix}-api"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.api.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name_prefix}-api" # WAF requires the prefix
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_wafv2_web_acl_logging_configuration" "api" {
  resource_arn            = aws_wafv2_web_acl.api.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  redacted_fields {
    single_header {
      name = "authorization" # bearer tokens never reach the WAF log
    }
  }
}

# -- task definitions and services -------------------------------------------------------

resource "aws_ecs_task_definition" "this" {
  for_each                 = local.services
  family                   = "${var.name_prefix}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    merge(
      {
        name                   = each.key
        image                  = var.image
        command                = each.value.command
        essential              = true
        readonlyRootFilesystem = true
        privileged             = false
        user                   = "10001:10001"
        environment            = concat(local.environment[each.key], [{ name = "OTEL_SERVICE_NAME", value = "finbank-${each.key}" }])
        dependsOn              = [{ containerName = "otel-collector", condition = "START" }]
        stopTimeout            = 60 # SIGTERM: finish the batch or payment in hand, commit, exit
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            "awslogs-group"         = aws_cloudwatch_log_group.service[each.key].name
            "awslogs-region"        = data.aws_region.current.name
            "awslogs-stream-prefix" = each.key
          }
        }
        mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
        linuxParameters = {
          initProcessEnabled = true
          capabilities       = { drop = ["ALL"] }
        }
      },
      each.key == "serve" ? {
        portMappings = [{ containerPort = var.serve_port, protocol = "tcp" }]
        healthCheck = {
          # liveness: the process answers /health (readiness, /ready, is the ALB's check)
          command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.serve_port}/health', timeout=2)"]
          interval    = 30
          timeout     = 5
          retries     = 3
          startPeriod = 20
        }
      } : {}
    ),
    {
      # traces: OTLP in on 127.0.0.1:4317/4318 (the task's own network namespace), X-Ray out.
      # Not essential: a collector that dies costs spans, never a payment in hand.
      name                   = "otel-collector"
      image                  = local.collector_image
      command                = ["--config=/etc/ecs/ecs-xray.yaml"]
      essential              = false
      readonlyRootFilesystem = true
      privileged             = false
      user                   = "10001:10001"
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          "awslogs-group"         = aws_cloudwatch_log_group.service[each.key].name
          "awslogs-region"        = data.aws_region.current.name
          "awslogs-stream-prefix" = "otel-collector"
        }
      }
      linuxParameters = { initProcessEnabled = true, capabilities = { drop = ["ALL"] } }
    }
  ])

  volume {
    name = "tmp" # the only writable path (the image's WORKDIR)
  }
}

resource "aws_ecs_service" "serve" {
  name                              = "serve"
  cluster                           = aws_ecs_cluster.this.id
  task_definition                   = aws_ecs_task_definition.this["serve"].arn
  desired_count                     = var.serve_min_tasks
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 30
  propagate_tags                    = "SERVICE"
  enable_execute_command            = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.serve.arn
    container_name   = "serve"
    container_port   = var.serve_port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "relay" {
  name                               = "relay"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this["relay"].arn
  desired_count                      = var.relay_tasks
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  deployment_minimum_healthy_percent = 100 # never fewer relays than asked during a deploy
  deployment_maximum_percent         = 200

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

# The Pix Automático scheduler: not scaled on a metric (its work is a day's due charges,
# run in windows); two tasks so a failing or replaced one never skips a window.
resource "aws_ecs_service" "automatic" {
  name                               = "worker-pix-automatic"
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this["automatic"].arn
  desired_count                      = var.automatic_tasks
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_execute_command             = false
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

resource "aws_ecs_service" "worker" {
  name                   = "worker-pix-settlement"
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.this["worker"].arn
  desired_count          = var.worker_min_tasks
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it
  }
}

# -- autoscaling -----------------------------------------------------------------------------

resource "aws_appautoscaling_target" "serve" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.serve.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.serve_min_tasks
  max_capacity       = var.serve_max_tasks
}

resource "aws_appautoscaling_policy" "serve_cpu" {
  name               = "${var.name_prefix}-serve-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.serve.service_namespace
  resource_id        = aws_appautoscaling_target.serve.resource_id
  scalable_dimension = aws_appautoscaling_target.serve.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.serve_cpu_target_percent
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "serve_requests" {
  name               = "${var.name_prefix}-serve-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.serve.service_namespace
  resource_id        = aws_appautoscaling_target.serve.resource_id
  scalable_dimension = aws_appautoscaling_target.serve.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.serve_requests_per_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.this.arn_suffix}/${aws_lb_target_group.serve.arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker_min_tasks
  max_capacity       = var.worker_max_tasks # more consumers than partitions would sit idle
}

# Target tracking on the lag *per task*: ConsumerGroupLag (what the worker emits, namespace
# var.metrics_namespace) divided by the service's running tasks (Container Insights).
# Lag alone does not fall as tasks are added until they catch up; per task it does,
# which is what target tracking needs.
resource "aws_appautoscaling_policy" "worker_lag" {
  name               = "${var.name_prefix}-worker-consumer-lag"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.worker_lag_per_task_target
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      metrics {
        id          = "lag"
        label       = "consumer lag of ${var.consumer_group} on ${var.consumer_topic}"
        return_data = false
        metric_stat {
          metric {
            namespace   = var.metrics_namespace
            metric_name = "ConsumerGroupLag"
            dimensions {
              name  = "Environment"
              value = var.environment
            }
            dimensions {
              name  = "ConsumerGroup"
              value = var.consumer_group
            }
            dimensions {
              name  = "Topic"
              value = var.consumer_topic
            }
          }
          stat = "Maximum"
        }
      }
      metrics {
        id          = "tasks"
        label       = "running settlement workers"
        return_data = false
        metric_stat {
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.this.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.worker.name
            }
          }
          stat = "Average"
        }
      }
      metrics {
        id          = "lag_per_task"
        label       = "consumer lag per worker"
        expression  = "lag / MAX([tasks, 1])"
        return_data = true
      }
    }
  }
}
