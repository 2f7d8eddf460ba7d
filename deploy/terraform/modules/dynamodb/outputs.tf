output "table_name" {
  description = "Name of the PIX table."
  value       = aws_dynamodb_table.pix.name
}

output "table_arn" {
  description = "ARN of the PIX table."
  value       = aws_dynamodb_table.pix.arn
}

output "stream_arn" {
  description = "ARN of the table's stream (NEW_AND_OLD_IMAGES)."
  value       = aws_dynamodb_table.pix.stream_arn
}
