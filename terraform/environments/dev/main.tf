# The dev environment: everything the streaming job, training and the Dash app need,
# from an empty account. `terraform output -json > outputs.json` feeds `python -m emr`.
locals {
  name   = "fraud-${var.environment}"
  topics = ["gaming-events", "fintech-transactions", "ecommerce-orders"]
}

module "kms" {
  source = "../../modules/kms"
  name   = local.name
}

module "network" {
  source              = "../../modules/network"
  name                = local.name
  cidr_block          = var.vpc_cidr
  availability_zones  = var.availability_zones
  interface_endpoints = var.interface_endpoints
  kms_key_arn         = module.kms.key_arn
}

module "storage" {
  source        = "../../modules/storage"
  name          = local.name
  kms_key_arn   = module.kms.key_arn
  force_destroy = var.force_destroy_buckets
}

module "emr" {
  source            = "../../modules/emr_serverless"
  name              = local.name
  architecture      = var.emr_architecture
  max_vcpu          = var.emr_max_vcpu
  max_memory_gb     = var.emr_max_memory_gb
  vpc_id            = module.network.vpc_id
  vpc_cidr          = module.network.vpc_cidr
  subnet_ids        = module.network.private_subnet_ids
  s3_prefix_list_id = module.network.s3_prefix_list_id
}

module "msk" {
  source                    = "../../modules/msk"
  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = concat([module.emr.security_group_id, module.dash.security_group_id], var.producer_security_group_ids)
  instance_type             = var.msk_instance_type
  broker_count              = var.msk_broker_count
  kms_key_arn               = module.kms.key_arn
}

module "rds" {
  source                    = "../../modules/rds"
  name                      = local.name
  vpc_id                    = module.network.vpc_id
  subnet_ids                = module.network.private_subnet_ids
  client_security_group_ids = concat([module.emr.security_group_id, module.dash.security_group_id], var.producer_security_group_ids)
  instance_class            = var.rds_instance_class
  multi_az                  = var.rds_multi_az
  deletion_protection       = var.deletion_protection
  kms_key_arn               = module.kms.key_arn
}

module "job_iam" {
  source             = "../../modules/job_iam"
  name               = local.name
  application_arn    = module.emr.application_arn
  bucket_arns        = module.storage.bucket_arns
  kms_key_arn        = module.kms.key_arn
  db_secret_arn      = module.rds.password_secret_arn
  db_user_arn_prefix = module.rds.db_user_arn_prefix
  cluster_arn        = module.msk.cluster_arn
  topic_arn_prefix   = module.msk.topic_arn_prefix
  group_arn_prefix   = module.msk.group_arn_prefix
  topics             = local.topics
}

module "schedules" {
  source          = "../../modules/schedules"
  name            = local.name
  application_id  = module.emr.application_id
  application_arn = module.emr.application_arn
  job_role_arn    = module.job_iam.batch_role_arn # every scheduled job is a batch job
  kms_key_arn     = module.kms.key_arn
  jobs            = var.scheduled_jobs
}

module "dash" {
  source                  = "../../modules/dash_app"
  name                    = local.name
  image                   = var.dash_image
  certificate_arn         = var.dash_certificate_arn
  oidc                    = var.dash_oidc
  allowed_cidrs           = var.dash_allowed_cidrs
  host_names              = var.dash_host_names
  db_dsn                  = module.rds.dsn
  db_user_arn_prefix      = module.rds.db_user_arn_prefix
  kafka_bootstrap_servers = module.msk.bootstrap_brokers_sasl_iam
  producer_policy_arn     = module.job_iam.producer_policy_arn
  kms_key_arn             = module.kms.key_arn
  vpc_id                  = module.network.vpc_id
  vpc_cidr                = module.network.vpc_cidr
  public_subnet_ids       = module.network.public_subnet_ids
  private_subnet_ids      = module.network.private_subnet_ids
  s3_prefix_list_id       = module.network.s3_prefix_list_id
  deletion_protection     = var.deletion_protection
  models_bucket           = module.storage.bucket_names["models"]
  access_logs_bucket      = module.storage.logs_bucket
}
