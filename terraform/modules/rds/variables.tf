variable "name" {
  description = "Instance identifier, e.g. fraud-dev."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the instance."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the DB subnet group (at least two availability zones)."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (the EMR job, the Dash app)."
  type        = list(string)
}

variable "engine_major_version" {
  description = "PostgreSQL major version (the local stack runs 16)."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "Instance class; db.t4g.micro suffices for alerts and metrics of the dev example."
  type        = string
  default     = "db.t4g.micro"
}

variable "database" {
  description = "Database created on the instance."
  type        = string
  default     = "fraud"
}

variable "username" {
  description = "Master user name (the password is managed by RDS in Secrets Manager)."
  type        = string
  default     = "fraud_app"
}

variable "allocated_storage_gb" {
  description = "Initial storage, GB."
  type        = number
  default     = 20
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling, GB."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "Standby in a second availability zone (doubles the instance cost)."
  type        = bool
  default     = false
}

variable "backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 7
}

variable "deletion_protection" {
  description = "Refuse to delete the instance; turn off only to tear down a dev environment."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key for storage, the managed secret and Performance Insights."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
