variable "name" {
  description = "Name prefix of the environment, e.g. fraud-dev; buckets are <name>-<purpose>-<account id>."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for default bucket encryption."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Buckets to create (lake, checkpoints, models, artifacts) and how many days old object versions are kept."
  type        = map(number)
  default = {
    lake        = 30
    checkpoints = 7
    models      = 365
    artifacts   = 30
  }

  validation {
    condition     = alltrue([for purpose in ["lake", "checkpoints", "models", "artifacts"] : contains(keys(var.noncurrent_version_days), purpose)])
    error_message = "noncurrent_version_days needs the lake, checkpoints, models and artifacts buckets."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (dev only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Days S3 server access logs and load balancer access logs are kept."
  type        = number
  default     = 365
}
