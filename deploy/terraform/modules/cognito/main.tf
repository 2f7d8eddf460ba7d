# Customer identities. MFA is mandatory (ON) with TOTP and SMS; the app client
# is a confidential, server-side client: it has a secret (SECRET_HASH on every
# call, settings.cognito_client_secret, carried by the app secret) and allows
# USER_PASSWORD_AUTH, the flow finbank_adapters.aws.cognito implements, plus
# refresh. Passwords therefore reach our service over TLS and are forwarded to
# Cognito; they are never stored or logged (masking in finbank_http.observability).

resource "aws_iam_role" "sms" {
  name = "${var.name_prefix}-cognito-sms"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "cognito-idp.amazonaws.com" }
      Condition = { StringEquals = { "sts:ExternalId" = var.sms_external_id } }
    }]
  })
}

data "aws_iam_policy_document" "sms" {
  statement {
    sid     = "SendMfaCodesBySms"
    actions = ["sns:Publish"]
    # SMS publishing has no topic to name: SNS checks the phone-number destination.
    not_resources = ["arn:aws:sns:*:*:*"]
  }
}

resource "aws_iam_role_policy" "sms" {
  name   = "send-sms"
  role   = aws_iam_role.sms.id
  policy = data.aws_iam_policy_document.sms.json
}

resource "aws_cognito_user_pool" "this" {
  name                     = var.name_prefix
  mfa_configuration        = "ON"
  deletion_protection      = "ACTIVE"
  auto_verified_attributes = ["email"]
  username_attributes      = ["email"]

  software_token_mfa_configuration {
    enabled = true
  }

  sms_configuration {
    external_id    = var.sms_external_id
    sns_caller_arn = aws_iam_role.sms.arn
    sns_region     = var.sms_region
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
  }

  user_pool_add_ons {
    advanced_security_mode = "ENFORCED"
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  admin_create_user_config {
    allow_admin_create_user_only = false
  }
}

resource "aws_cognito_user_pool_client" "app" {
  name                                 = "${var.name_prefix}-app"
  user_pool_id                         = aws_cognito_user_pool.this.id
  generate_secret                      = true
  explicit_auth_flows                  = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors        = "ENABLED"
  enable_token_revocation              = true
  auth_session_validity                = 3
  access_token_validity                = 15
  id_token_validity                    = 15
  refresh_token_validity               = 30
  allowed_oauth_flows_user_pool_client = false

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }
}
