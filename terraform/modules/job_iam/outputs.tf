output "job_role_arn" {
  description = "Runtime role ARN for StartJobRun (python -m emr reads it)."
  value       = aws_iam_role.job.arn
}

output "producer_policy_arn" {
  description = "Policy for the role that runs the simulator: produce to the topics, read the database password."
  value       = aws_iam_policy.producer.arn
}
