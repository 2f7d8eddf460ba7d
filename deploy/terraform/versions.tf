terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Partial configuration: `terraform init -backend-config=envs/<env>.backend.hcl`.
  # The state holds generated secrets: the bucket is SSE-KMS, versioned, private.
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "finbank"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
