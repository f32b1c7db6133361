variable "name" {
  description = "Name prefix of the environment, e.g. fraud-dev."
  type        = string
}

variable "deletion_window_in_days" {
  description = "Days a deleted key can still be recovered (7-30)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
