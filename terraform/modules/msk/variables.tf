variable "name" {
  description = "Cluster name, e.g. fraud-dev."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per availability zone; broker_count must be a multiple of their number."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to reach the brokers on 9098 (the EMR job, the simulator)."
  type        = list(string)
}

variable "kafka_version" {
  description = "Apache Kafka version of the cluster."
  type        = string
  default     = "3.8.x"
}

variable "instance_type" {
  description = "Broker instance type; kafka.t3.small carries the normal load (10K events/min) of the dev example."
  type        = string
  default     = "kafka.t3.small"
}

variable "broker_count" {
  description = "Number of brokers (a multiple of the number of subnets; at least 3, for replication 3 with min.insync.replicas 2)."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 3
    error_message = "broker_count: at least 3 (with 2, an acknowledged write could rest on one broker)."
  }
}

variable "volume_size_gb" {
  description = "EBS storage per broker, GB."
  type        = number
  default     = 100
}

variable "partitions" {
  description = "Partitions of auto-created topics (the job config's kafka.partitions)."
  type        = number
  default     = 3
}

variable "max_message_bytes" {
  description = "Largest record batch a broker takes: the job config's stream.max_record_bytes plus 2 KiB of framing (fraud.kafka.topic_config)."
  type        = number
  default     = 18432

  validation {
    condition     = var.max_message_bytes >= 4096
    error_message = "max_message_bytes: at least 4096 (stream.max_record_bytes plus 2 KiB of framing)."
  }
}

variable "retention_hours" {
  description = "How long records are kept; a stopped stream can catch up within this."
  type        = number
  default     = 168
}

variable "kms_key_arn" {
  description = "KMS key for storage at rest and the broker log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days broker logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
