output "url" {
  description = "HTTPS address of the load balancer (point the certificate's host name at it)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "load_balancer_dns_name" {
  description = "DNS name of the load balancer, for an alias record."
  value       = aws_lb.this.dns_name
}

output "security_group_id" {
  description = "Security group of the tasks (a client of RDS)."
  value       = aws_security_group.tasks.id
}
