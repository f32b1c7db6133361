# `make aws-sim`: the dev environment against moto on loopback. Copied beside the environment's own
# files as aws_sim_override.tf: Terraform merges it over them; no module is edited. PORT is
# replaced by the runner (scripts/aws_sim/run.py).

terraform {
  backend "local" {}
}

provider "aws" {
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true

  endpoints {
    acm            = "https://127.0.0.1:PORT"
    cloudtrail     = "https://127.0.0.1:PORT"
    cloudwatchlogs = "https://127.0.0.1:PORT"
    ec2            = "https://127.0.0.1:PORT"
    ecs            = "https://127.0.0.1:PORT"
    elbv2          = "https://127.0.0.1:PORT"
    emrserverless  = "https://127.0.0.1:PORT"
    iam            = "https://127.0.0.1:PORT"
    kafka          = "https://127.0.0.1:PORT"
    kms            = "https://127.0.0.1:PORT"
    rds            = "https://127.0.0.1:PORT"
    s3             = "https://127.0.0.1:PORT"
    scheduler      = "https://127.0.0.1:PORT"
    secretsmanager = "https://127.0.0.1:PORT"
    sts            = "https://127.0.0.1:PORT"
    wafv2          = "https://127.0.0.1:PORT"
  }
}

# MSK is not emulated (moto has no CreateConfiguration): the modules that read its outputs get the
# values a cluster would give, so the rest applies without it.
module "job_iam" {
  cluster_arn      = "arn:aws:kafka:us-east-1:123456789012:cluster/fraud-dev/00000000-0000-0000-0000-000000000000-1"
  topic_arn_prefix = "arn:aws:kafka:us-east-1:123456789012:topic/fraud-dev/00000000-0000-0000-0000-000000000000-1"
  group_arn_prefix = "arn:aws:kafka:us-east-1:123456789012:group/fraud-dev/00000000-0000-0000-0000-000000000000-1"
}

module "dash" {
  kafka_bootstrap_servers = "b-1.fraud-dev.sim.kafka.us-east-1.amazonaws.com:9098"
}

output "job_environment" {
  description = "As the environment's, with the broker address a cluster would give."
  value = {
    FRAUD_KAFKA_BOOTSTRAP_SERVERS   = "b-1.fraud-dev.sim.kafka.us-east-1.amazonaws.com:9098"
    FRAUD_POSTGRES_DSN              = module.rds.dsn
    FRAUD_POSTGRES_ADMIN_SECRET_ARN = module.rds.password_secret_arn
    FRAUD_LAKE_ROOT                 = "s3://${module.storage.bucket_names["lake"]}/lake"
    FRAUD_CHECKPOINT_ROOT           = "s3://${module.storage.bucket_names["checkpoints"]}/checkpoints"
    FRAUD_MODELS_ROOT               = "s3://${module.storage.bucket_names["models"]}/models"
  }
}
