output "user_pool_id" {
  description = "User pool id (FINBANK_COGNITO_USER_POOL_ID)."
  value       = aws_cognito_user_pool.this.id
}

output "user_pool_arn" {
  description = "User pool ARN."
  value       = aws_cognito_user_pool.this.arn
}

output "client_id" {
  description = "App client id (FINBANK_COGNITO_CLIENT_ID)."
  value       = aws_cognito_user_pool_client.app.id
}

output "client_secret" {
  description = "App client secret; goes into the app secret only."
  value       = aws_cognito_user_pool_client.app.client_secret
  sensitive   = true
}

output "sign_in_attribute" {
  description = "What users log in with (FINBANK_COGNITO_SIGN_IN_ATTRIBUTE): the pool's username attribute."
  value       = length(aws_cognito_user_pool.this.username_attributes) == 0 ? "username" : one(aws_cognito_user_pool.this.username_attributes)
}
