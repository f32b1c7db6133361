variable "name" {
  description = "Prefix of the schedules and their role."
  type        = string
}

variable "application_id" {
  description = "EMR Serverless application the schedules start job runs of."
  type        = string
}

variable "application_arn" {
  description = "ARN of that application (the role may start its job runs only)."
  type        = string
}

variable "job_role_arn" {
  description = "The runtime role the job runs get (the only role the scheduler may pass)."
  type        = string
}

variable "jobs" {
  description = "Job kind => its schedule (`rate(...)` or `cron(...)`, UTC) and its StartJobRun request as JSON, as `python -m emr schedule KIND` writes them."
  type = map(object({
    schedule_expression = string
    request             = string
  }))
  default = {}
}

variable "kms_key_arn" {
  description = "The environment's key: Scheduler encrypts each schedule's target input (the request) with it."
  type        = string
}
