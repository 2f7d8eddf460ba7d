output "bucket_names" {
  description = "Data bucket names by suffix."
  value       = { for suffix, bucket in aws_s3_bucket.data : suffix => bucket.bucket }
}

output "bucket_arns" {
  description = "Data bucket ARNs by suffix."
  value       = { for suffix, bucket in aws_s3_bucket.data : suffix => bucket.arn }
}

output "access_log_bucket" {
  description = "Access-log bucket name."
  value       = aws_s3_bucket.logs.bucket
}
