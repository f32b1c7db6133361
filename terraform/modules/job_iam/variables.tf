variable "name" {
  description = "Name prefix of the environment, e.g. fraud-dev."
  type        = string
}

variable "application_arn" {
  description = "ARN of the EMR Serverless application allowed to assume the role."
  type        = string
}

variable "bucket_arns" {
  description = "Bucket ARN per purpose (lake, checkpoints, models, artifacts), from the storage module."
  type        = map(string)
}

variable "kms_key_arn" {
  description = "Key encrypting the buckets and the database secret."
  type        = string
}

variable "db_secret_arn" {
  description = "ARN of the RDS-managed master secret; only the migrate role reads it."
  type        = string
}

variable "db_user_arn_prefix" {
  description = "Prefix of the database users' rds-db:connect ARNs (rds module output)."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the MSK cluster."
  type        = string
}

variable "topic_arn_prefix" {
  description = "Prefix of the cluster's topic ARNs (msk module output)."
  type        = string
}

variable "group_arn_prefix" {
  description = "Prefix of the cluster's consumer group ARNs (msk module output)."
  type        = string
}

variable "topics" {
  description = "Topics the job reads and producers write (conf/aws.yaml kafka.topics)."
  type        = list(string)
  default     = ["gaming-events", "fintech-transactions", "ecommerce-orders"]
}

variable "consumer_group_prefix" {
  description = "Consumer groups the Spark Kafka source may use: its default groupIdPrefix."
  type        = string
  default     = "spark-kafka-source-"
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
