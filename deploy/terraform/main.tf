# The finbank stack for one environment (one AWS account per environment).
# `terraform plan -var-file=envs/<env>.tfvars`; see docs/operations.md.

locals {
  name_prefix = "finbank-${var.environment}"
}

module "kms" {
  source      = "./modules/kms"
  name_prefix = local.name_prefix
}

module "network" {
  source             = "./modules/network"
  name_prefix        = local.name_prefix
  cidr_block         = var.vpc_cidr_block
  availability_zones = var.availability_zones
  kms_key_arn        = module.kms.key_arn
}

module "s3" {
  source      = "./modules/s3"
  name_prefix = local.name_prefix
  kms_key_arn = module.kms.key_arn
}

module "ecr" {
  source      = "./modules/ecr"
  kms_key_arn = module.kms.key_arn
}

module "aurora" {
  source             = "./modules/aurora"
  name_prefix        = local.name_prefix
  vpc_id             = module.network.vpc_id
  subnet_ids         = module.network.private_subnet_ids
  client_cidr_blocks = [module.network.vpc_cidr_block]
  kms_key_arn        = module.kms.key_arn
  instance_class     = var.aurora_instance_class
  instance_count     = var.aurora_instance_count
}

module "msk" {
  source               = "./modules/msk"
  name_prefix          = local.name_prefix
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  client_cidr_blocks   = [module.network.vpc_cidr_block]
  kms_key_arn          = module.kms.key_arn
  broker_count         = var.msk_broker_count
  broker_instance_type = var.msk_broker_instance_type
}

module "cognito" {
  source          = "./modules/cognito"
  name_prefix     = local.name_prefix
  sms_external_id = "${local.name_prefix}-cognito-sms"
  sms_region      = var.region
}

module "redis" {
  source                       = "./modules/redis"
  name_prefix                  = local.name_prefix
  vpc_id                       = module.network.vpc_id
  subnet_ids                   = module.network.private_subnet_ids
  client_cidr_blocks           = [module.network.vpc_cidr_block]
  kms_key_arn                  = module.kms.key_arn
  auth_token_secret_arn        = module.secrets.credentials_secret_arn
  auth_token_secret_version_id = module.secrets.credentials_secret_version_id
  node_type                    = var.redis_node_type
}

module "secrets" {
  source                = "./modules/secrets"
  environment           = var.environment
  kms_key_arn           = module.kms.key_arn
  postgres_host         = module.aurora.endpoint
  postgres_port         = module.aurora.port
  postgres_database     = module.aurora.database_name
  redis_host            = module.redis.primary_endpoint
  redis_port            = module.redis.port
  kafka_bootstrap       = module.msk.bootstrap_brokers_sasl_scram
  kafka_username        = module.msk.scram_username
  kafka_password        = module.msk.scram_password
  cognito_client_secret = module.cognito.client_secret
}

module "dynamodb" {
  source      = "./modules/dynamodb"
  table_name  = "finbank-pix"
  kms_key_arn = module.kms.key_arn
}

module "stream_lambda" {
  source                  = "./modules/stream_lambda"
  name_prefix             = local.name_prefix
  vpc_id                  = module.network.vpc_id
  vpc_cidr_block          = module.network.vpc_cidr_block
  gateway_prefix_list_ids = module.network.gateway_prefix_list_ids
  subnet_ids              = module.network.private_subnet_ids
  kms_key_arn             = module.kms.key_arn
  stream_arn              = module.dynamodb.stream_arn
  table_name              = module.dynamodb.table_name
  table_arn               = module.dynamodb.table_arn
  app_secret_arn          = module.secrets.app_secret_arn
  package_bucket          = module.s3.bucket_names["artifacts"]
  package_key             = var.lambda_package_key
}

module "batch" {
  source                  = "./modules/batch"
  name_prefix             = local.name_prefix
  environment             = var.environment
  vpc_id                  = module.network.vpc_id
  vpc_cidr_block          = module.network.vpc_cidr_block
  gateway_prefix_list_ids = module.network.gateway_prefix_list_ids
  subnet_ids              = module.network.private_subnet_ids
  kms_key_arn             = module.kms.key_arn
  image                   = "${module.ecr.repository_url}:${var.image_tag}"
  ecr_repository_arn      = module.ecr.repository_arn
  app_secret_arn          = module.secrets.app_secret_arn
  table_arn               = module.dynamodb.table_arn
  table_name              = module.dynamodb.table_name
  files_bucket_name       = module.s3.bucket_names["files"]
  files_bucket_arn        = module.s3.bucket_arns["files"]
}

module "compute" {
  source                    = "./modules/compute"
  name_prefix               = local.name_prefix
  environment               = var.environment
  vpc_id                    = module.network.vpc_id
  vpc_cidr_block            = module.network.vpc_cidr_block
  private_subnet_ids        = module.network.private_subnet_ids
  public_subnet_ids         = module.network.public_subnet_ids
  load_balancer_cidr_blocks = module.network.public_subnet_cidr_blocks
  gateway_prefix_list_ids   = module.network.gateway_prefix_list_ids
  ingress_cidr_blocks       = var.api_ingress_cidr_blocks
  kms_key_arn               = module.kms.key_arn
  image                     = "${module.ecr.repository_url}:${var.image_tag}"
  ecr_repository_arn        = module.ecr.repository_arn
  ecr_public_cache_prefix   = module.ecr.ecr_public_cache_prefix
  app_secret_arn            = module.secrets.app_secret_arn
  table_arn                 = module.dynamodb.table_arn
  table_name                = module.dynamodb.table_name
  access_log_bucket         = module.s3.access_log_bucket
  certificate_arn           = var.api_certificate_arn
  serve_min_tasks           = var.serve_min_tasks
  serve_max_tasks           = var.serve_max_tasks
  relay_tasks               = var.relay_tasks
  worker_min_tasks          = var.worker_min_tasks
  worker_max_tasks          = var.worker_max_tasks
}

module "monitoring" {
  source                   = "./modules/monitoring"
  name_prefix              = local.name_prefix
  environment              = var.environment
  kms_key_arn              = module.kms.key_arn
  alarm_emails             = var.alarm_emails
  load_balancer_arn_suffix = module.compute.load_balancer_arn_suffix
  dlq_name                 = module.stream_lambda.dlq_name
  stream_function_name     = module.stream_lambda.function_name
  http_5xx_rate_percent    = var.http_5xx_rate_percent
  http_p99_latency_seconds = var.http_p99_latency_seconds
}
