output "application_id" {
  description = "ID of the EMR Serverless application (python -m emr reads it)."
  value       = aws_emrserverless_application.this.id
}

output "application_arn" {
  description = "ARN of the application."
  value       = aws_emrserverless_application.this.arn
}

output "security_group_id" {
  description = "Security group of the workers (a client of MSK and RDS)."
  value       = aws_security_group.emr.id
}
