output "stream_role_arn" {
  description = "Runtime role ARN of the streaming job's StartJobRun (python -m emr reads it)."
  value       = aws_iam_role.stream.arn
}

output "batch_role_arn" {
  description = "Runtime role ARN of the batch jobs' StartJobRun: training, retraining, drift, maintenance."
  value       = aws_iam_role.batch.arn
}

output "migrate_role_arn" {
  description = "Runtime role ARN of the migrations' StartJobRun (jobs/migrate.py): the master secret, nothing else."
  value       = aws_iam_role.migrate.arn
}

output "producer_policy_arn" {
  description = "Policy for the role that runs the simulator: produce to the topics, connect as fraud_simulator."
  value       = aws_iam_policy.producer.arn
}
