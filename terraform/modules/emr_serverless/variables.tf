variable "name" {
  description = "Application name, e.g. fraud-dev."
  type        = string
}

variable "release_label" {
  description = "EMR release: emr-spark-8.1.0 runs Spark 4.1.1, Delta 4.2.0, Java 17 and Python 3.11, as the project pins."
  type        = string
  default     = "emr-spark-8.1.0"
}

variable "architecture" {
  description = "X86_64 or ARM64; the venv-pack archive must be built for the same (emr/Dockerfile --platform)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.architecture)
    error_message = "architecture must be X86_64 or ARM64."
  }
}

variable "idle_timeout_minutes" {
  description = "Minutes without jobs before the application stops (a running stream keeps it started)."
  type        = number
  default     = 15
}

variable "max_vcpu" {
  description = "Maximum vCPU across all workers of all running jobs (stream 6-18, training up to 20)."
  type        = number
  default     = 32
}

variable "max_memory_gb" {
  description = "Maximum memory across all workers, GB."
  type        = number
  default     = 128
}

variable "max_disk_gb" {
  description = "Maximum disk across all workers, GB (20 GB per worker is free)."
  type        = number
  default     = 400
}

variable "vpc_id" {
  description = "VPC of the workers."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC: the workers' egress is limited to it (MSK, RDS, endpoints) and S3."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the workers run in."
  type        = list(string)
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint."
  type        = string
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
