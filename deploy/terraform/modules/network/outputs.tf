output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets, one per availability zone."
  value       = aws_subnet.private[*].id
}

output "gateway_prefix_list_ids" {
  description = "Prefix lists of the S3 and DynamoDB gateway endpoints (for egress rules)."
  value       = [for endpoint in aws_vpc_endpoint.gateway : endpoint.prefix_list_id]
}

output "public_subnet_ids" {
  description = "Public subnets (the load balancer of finbank serve only), one per availability zone."
  value       = aws_subnet.public[*].id
}

output "public_subnet_cidr_blocks" {
  description = "CIDRs of the public subnets: where the load balancer's addresses come from."
  value       = aws_subnet.public[*].cidr_block
}
