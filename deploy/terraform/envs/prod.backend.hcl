# terraform init -backend-config=envs/prod.backend.hcl
bucket       = "finbank-prod-terraform-state"
key          = "finbank/prod.tfstate"
region       = "sa-east-1"
encrypt      = true
kms_key_id   = "alias/finbank-terraform-state"
use_lockfile = true
