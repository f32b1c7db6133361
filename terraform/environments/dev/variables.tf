variable "region" {
  description = "AWS region of the environment (emr/prices.yaml holds the list prices of us-east-1)."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "Environment name; resources are called fraud-<environment>."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment: lower-case letters, digits and dashes, at most 16 characters."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones of the region (2 or 3); MSK brokers are a multiple of their number."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b", "us-east-1c"]
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints instead of a NAT gateway."
  type        = list(string)
  default     = ["secretsmanager", "logs", "sts", "ecr.api", "ecr.dkr"]
}

variable "emr_architecture" {
  description = "X86_64 or ARM64 (ARM64 is about 20 % cheaper; build the archive for it)."
  type        = string
  default     = "X86_64"
}

variable "emr_max_vcpu" {
  description = "EMR Serverless application ceiling, vCPU across all running jobs."
  type        = number
  default     = 32
}

variable "emr_max_memory_gb" {
  description = "EMR Serverless application ceiling, GB of memory across all running jobs."
  type        = number
  default     = 128
}

variable "msk_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.t3.small"
}

variable "msk_broker_count" {
  description = "MSK brokers (a multiple of the number of availability zones, at least 3)."
  type        = number
  default     = 3
}

variable "producer_security_group_ids" {
  description = "Security groups of simulator hosts allowed to reach MSK and PostgreSQL (attach the producer policy to their role)."
  type        = list(string)
  default     = []
}

variable "rds_instance_class" {
  description = "RDS PostgreSQL instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "rds_multi_az" {
  description = "RDS standby in a second availability zone."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the database and the load balancer from deletion (set false to tear down dev)."
  type        = bool
  default     = true
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` empty and delete the buckets (dev only)."
  type        = bool
  default     = false
}

variable "dash_image" {
  description = "Container image of the Dash app in ECR, e.g. <account>.dkr.ecr.us-east-1.amazonaws.com/fraud-dash:<tag>."
  type        = string
}

variable "dash_certificate_arn" {
  description = "ACM certificate for the Dash app's host name."
  type        = string
}

variable "dash_oidc" {
  description = "OIDC identity provider for the Dash login; client_secret_arn names a Secrets Manager secret holding the client secret."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
    client_secret_arn      = string
  })
}

variable "dash_host_names" {
  description = "Names users reach the Dash app by (its certificate's); the app answers these and the load balancer's DNS name only."
  type        = list(string)
  default     = []
}

variable "dash_allowed_cidrs" {
  description = "Networks allowed to reach the Dash load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "scheduled_jobs" {
  description = "Batch jobs on a schedule, as `python -m emr schedule KIND` writes them to schedules.auto.tfvars.json: kind => schedule expression and StartJobRun request (JSON)."
  type = map(object({
    schedule_expression = string
    request             = string
  }))
  default = {}
}
