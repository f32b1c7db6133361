output "schedule_arns" {
  description = "Job kind => ARN of its schedule."
  value       = { for kind, schedule in aws_scheduler_schedule.job : kind => schedule.arn }
}

output "scheduler_role_arn" {
  description = "The role the schedules start job runs with."
  value       = aws_iam_role.scheduler.arn
}
