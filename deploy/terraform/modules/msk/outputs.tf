output "cluster_arn" {
  description = "ARN of the cluster."
  value       = aws_msk_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the cluster (CloudWatch dimension)."
  value       = aws_msk_cluster.this.cluster_name
}

output "bootstrap_brokers_sasl_scram" {
  description = "Bootstrap servers of the SASL_SSL/SCRAM listener."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "scram_username" {
  description = "SCRAM user of the application."
  value       = var.scram_username
}

output "scram_password" {
  description = "SCRAM password (generated; also in the AmazonMSK_* secret)."
  value       = random_password.scram.result
  sensitive   = true
}
