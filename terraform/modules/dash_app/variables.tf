variable "name" {
  description = "Name prefix of the environment, e.g. fraud-dev."
  type        = string
}

variable "image" {
  description = "Container image of the Dash app (an ECR repository URI with a tag or digest)."
  type        = string
}

variable "container_port" {
  description = "Port the app listens on."
  type        = number
  default     = 8050
}

variable "health_check_path" {
  description = "Path the load balancer checks on each task: the app answers it without a login and without reading data."
  type        = string
  default     = "/healthz"
}

variable "task_cpu" {
  description = "Fargate task CPU units (512 = 0.5 vCPU)."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate task memory, MiB."
  type        = number
  default     = 1024
}

variable "desired_count" {
  description = "Running tasks."
  type        = number
  default     = 1
}

variable "certificate_arn" {
  description = "ACM certificate of the app's host name, for the HTTPS listener."
  type        = string
}

variable "oidc" {
  description = "OpenID Connect identity provider of the login: issuer and endpoints, the client id, and the ARN of a Secrets Manager secret whose string is the client secret."
  type = object({
    issuer                 = string
    authorization_endpoint = string
    token_endpoint         = string
    user_info_endpoint     = string
    client_id              = string
    client_secret_arn      = string
  })
}

variable "allowed_cidrs" {
  description = "Networks allowed to reach the load balancer (everyone must still log in)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "db_dsn" {
  description = "PostgreSQL DSN without a password (rds module output)."
  type        = string
}

variable "kafka_bootstrap_servers" {
  description = "MSK bootstrap brokers (IAM): where the load tests' simulator produces."
  type        = string
}

variable "producer_policy_arn" {
  description = "job_iam's producer policy: the load tests' simulator writes the topics and connects as fraud_simulator."
  type        = string
}

variable "db_user_arn_prefix" {
  description = "Prefix of the database users' rds-db:connect ARNs (rds module output)."
  type        = string
}

variable "kms_key_arn" {
  description = "Key encrypting the model registry and the log group."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the app."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (task egress stays inside it)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Subnets of the load balancer."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Subnets of the tasks."
  type        = list(string)
}

variable "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (ECR image layers)."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days app logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "models_bucket" {
  description = "Bucket of the model registry: the model page reads versions and moves the current and challenger pointers."
  type        = string
}

variable "models_prefix" {
  description = "Prefix of the registry in that bucket (no slashes around it)."
  type        = string
  default     = "models"
}

variable "requests_per_5_min_per_ip" {
  description = "WAF rate limit: requests one client IP may make in 5 minutes before it is blocked (100-2000000000)."
  type        = number
  default     = 2000

  validation {
    condition     = var.requests_per_5_min_per_ip >= 100
    error_message = "requests_per_5_min_per_ip: at least 100 (the WAF minimum)."
  }
}

variable "access_logs_bucket" {
  description = "Bucket the load balancer writes its access logs to (SSE-S3: ALB log delivery cannot use a KMS key)."
  type        = string
}

variable "host_names" {
  description = "Names users reach the app by (those of the certificate): with the load balancer's DNS name, the only Host headers the app answers."
  type        = list(string)
  default     = []
}
