output "region" {
  description = "Region of the environment."
  value       = var.region
}

output "emr_application_id" {
  description = "EMR Serverless application the jobs run on."
  value       = module.emr.application_id
}

output "emr_stream_role_arn" {
  description = "Runtime role of the streaming job."
  value       = module.job_iam.stream_role_arn
}

output "emr_batch_role_arn" {
  description = "Runtime role of the batch jobs (training, retraining, drift, maintenance)."
  value       = module.job_iam.batch_role_arn
}

output "emr_migrate_role_arn" {
  description = "Runtime role of the database migrations (the only reader of the master secret)."
  value       = module.job_iam.migrate_role_arn
}

output "kms_key_arn" {
  description = "The environment's data key: EMR encrypts the job runs' logs with it."
  value       = module.kms.key_arn
}

output "artifacts_bucket" {
  description = "Bucket for job code, archive, jars (emr/) and EMR logs (logs/)."
  value       = module.storage.bucket_names["artifacts"]
}

output "job_environment" {
  description = "FRAUD_* variables that point conf/aws.yaml at this deployment; no secret values, only the secret's ARN."
  value = {
    FRAUD_KAFKA_BOOTSTRAP_SERVERS   = module.msk.bootstrap_brokers_sasl_iam
    FRAUD_POSTGRES_DSN              = module.rds.dsn
    FRAUD_POSTGRES_ADMIN_SECRET_ARN = module.rds.password_secret_arn
    FRAUD_LAKE_ROOT                 = "s3://${module.storage.bucket_names["lake"]}/lake"
    FRAUD_CHECKPOINT_ROOT           = "s3://${module.storage.bucket_names["checkpoints"]}/checkpoints"
    FRAUD_MODELS_ROOT               = "s3://${module.storage.bucket_names["models"]}/models"
  }
}

output "producer_policy_arn" {
  description = "Attach to the role of whatever runs the simulator against MSK."
  value       = module.job_iam.producer_policy_arn
}

output "dash_url" {
  description = "Address of the Dash app (behind the OIDC login)."
  value       = module.dash.url
}

output "schedule_arns" {
  description = "Scheduled batch job kind => its EventBridge Scheduler schedule."
  value       = module.schedules.schedule_arns
}
