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
  description = "The master user: the admin, for migrations only (jobs/migrate.py)."
  value       = aws_db_instance.this.username
}

output "dsn" {
  description = "libpq DSN without a user or password (FRAUD_POSTGRES_DSN): each component connects as its own role (fraud.roles), verifying the server's certificate."
  value       = "postgresql://${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}?sslmode=verify-full"
}

output "password_secret_arn" {
  description = "ARN of the RDS-managed master secret (FRAUD_POSTGRES_ADMIN_SECRET_ARN): only the migrate role reads it."
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}

output "db_user_arn_prefix" {
  description = "Prefix of the rds-db:connect resource of a database user: append the user name (IAM database authentication)."
  value       = "arn:aws:rds-db:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:dbuser:${aws_db_instance.this.resource_id}/"
}

output "security_group_id" {
  description = "Security group of the instance."
  value       = aws_security_group.db.id
}
