# terraform init -backend-config=envs/dev.backend.hcl
bucket       = "finbank-dev-terraform-state"
key          = "finbank/dev.tfstate"
region       = "sa-east-1"
encrypt      = true
kms_key_id   = "alias/finbank-terraform-state"
use_lockfile = true
