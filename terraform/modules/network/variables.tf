variable "name" {
  description = "Name prefix of the environment, e.g. fraud-dev."
  type        = string
}

variable "cidr_block" {
  description = "CIDR of the VPC; private subnets take the first /20s, public ones the ninth onwards."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones, one private and one public subnet each (MSK needs at least 2; brokers are a multiple of their number). Named, not discovered, so the set never changes under a plan."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "availability_zones: 2 or 3 zones."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints, not the NAT gateway: secrets, logs, STS, ECR for the Dash image."
  type        = list(string)
  default     = ["secretsmanager", "logs", "sts", "ecr.api", "ecr.dkr"]
}

variable "kms_key_arn" {
  description = "KMS key encrypting the flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days flow logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "nat_gateway" {
  description = "One NAT gateway for the private subnets: the Dash tasks fetch the load balancer's public keys through it (no VPC endpoint serves them). Security groups decide who may use it."
  type        = bool
  default     = true
}
