output "address" {
  description = "Host name of the instance."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "database" {
  description = "Database name."
  value       = aws_db_instance.this.db_name
}

output "username" {
  description = "User the job and the app connect as."
  value       = aws_db_instance.this.username
}

output "dsn" {
  description = "libpq DSN without a password (FRAUD_POSTGRES_DSN)."
  value       = "postgresql://${aws_db_instance.this.username}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}?sslmode=require"
}

output "password_secret_arn" {
  description = "ARN of the RDS-managed secret holding the password (FRAUD_POSTGRES_SECRET_ARN)."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.db.id
}
