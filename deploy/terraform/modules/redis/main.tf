# ElastiCache Redis for MFA challenges, lockout counters, the token denylist
# and refresh tokens: TLS in transit, AUTH token, encrypted at rest with the
# stack's key, multi-AZ with automatic failover. The AUTH token is read from
# the Secrets Manager secret that holds it (modules/secrets generates it).

data "aws_secretsmanager_secret_version" "auth" {
  secret_id  = var.auth_token_secret_arn
  version_id = var.auth_token_secret_version_id # waits for the generated version
}

resource "aws_security_group" "this" {
  name        = "${var.name_prefix}-redis"
  description = "Redis over TLS from the application subnets only"
  vpc_id      = var.vpc_id

  ingress {
    description = "Redis TLS from the VPC"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = var.client_cidr_blocks
  }
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name_prefix}-redis"
  subnet_ids = var.subnet_ids
}

resource "aws_cloudwatch_log_group" "slow_log" {
  name              = "/finbank/${var.name_prefix}/redis-slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id       = "${var.name_prefix}-redis"
  description                = "finbank MFA challenges, lockout, denylist, refresh tokens"
  engine                     = "redis"
  engine_version             = var.engine_version
  node_type                  = var.node_type
  num_cache_clusters         = var.node_count
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.this.id]
  automatic_failover_enabled = true
  multi_az_enabled           = true
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = jsondecode(data.aws_secretsmanager_secret_version.auth.secret_string)["redis_auth"]
  auth_token_update_strategy = "ROTATE"
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}
