output "cluster_arn" {
  description = "ARN of the cluster (arn:...:cluster/<name>/<uuid>)."
  value       = aws_msk_cluster.this.arn
}

output "bootstrap_brokers_sasl_iam" {
  description = "Bootstrap brokers for IAM auth (port 9098): FRAUD_KAFKA_BOOTSTRAP_SERVERS."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "topic_arn_prefix" {
  description = "Prefix of this cluster's topic ARNs; append a topic name."
  value       = "${replace(aws_msk_cluster.this.arn, ":cluster/", ":topic/")}/"
}

output "group_arn_prefix" {
  description = "Prefix of this cluster's consumer group ARNs; append a group name or pattern."
  value       = "${replace(aws_msk_cluster.this.arn, ":cluster/", ":group/")}/"
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.msk.id
}
