# Two secrets, no value in code:
# - credentials: generated here (random_password) — the application database
#   role's password, the Redis AUTH token, the JWT signing secret;
# - app: what finbank_adapters.aws.secrets loads at startup (a JSON object
#   whose keys are Settings field names plus redis_auth), composed from the
#   credentials and the endpoints.
# Values live in the Terraform state too: the state backend must be an
# encrypted, access-controlled bucket (envs/*.backend.hcl, docs/operations.md).

resource "random_password" "db_app" {
  length  = 40
  special = false
}

resource "random_password" "redis_auth" {
  length  = 64
  special = false # ElastiCache AUTH tokens accept a restricted set of symbols only
}

resource "random_password" "jwt" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "credentials" {
  #checkov:skip=CKV2_AWS_57:the Redis AUTH token and the DB role password rotate by a planned change (ElastiCache ROTATE strategy, ALTER ROLE), see docs/operations.md
  name                    = "finbank/${var.environment}/credentials"
  description             = "Generated credentials of the finbank stack"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "credentials" {
  secret_id = aws_secretsmanager_secret.credentials.id
  secret_string = jsonencode({
    db_app_password = random_password.db_app.result
    redis_auth      = random_password.redis_auth.result
    jwt_secret      = random_password.jwt.result
  })
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:derived from the credentials and endpoints; rotated by re-applying after the credentials rotate
  name                    = "finbank/${var.environment}/app"
  description             = "Runtime settings of the finbank application (FINBANK_SECRETS_ID)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "app" {
  secret_id = aws_secretsmanager_secret.app.id
  secret_string = jsonencode({
    postgres_dsn            = "postgresql://${var.db_app_username}:${random_password.db_app.result}@${var.postgres_host}:${var.postgres_port}/${var.postgres_database}?sslmode=verify-full"
    redis_url               = "rediss://${var.redis_host}:${var.redis_port}/0"
    redis_auth              = random_password.redis_auth.result
    kafka_bootstrap         = var.kafka_bootstrap
    kafka_security_protocol = "SASL_SSL"
    kafka_sasl_username     = var.kafka_username
    kafka_sasl_password     = var.kafka_password
    jwt_secret              = random_password.jwt.result
    cognito_client_secret   = var.cognito_client_secret
  })
}
