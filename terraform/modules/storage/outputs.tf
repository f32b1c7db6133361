output "bucket_names" {
  description = "Bucket name per purpose: lake, checkpoints, models, artifacts."
  value       = { for purpose, bucket in aws_s3_bucket.this : purpose => bucket.bucket } # known at plan, unlike id
}

output "bucket_arns" {
  description = "Bucket ARN per purpose."
  value       = { for purpose, bucket in aws_s3_bucket.this : purpose => bucket.arn }
}

output "logs_bucket" {
  description = "Bucket of the S3 server access logs (prefix s3/) and the load balancer's access logs (prefix alb/)."
  value       = aws_s3_bucket.logs.id
  # The load balancer checks it may write its access logs there when they are turned on.
  depends_on = [aws_s3_bucket_policy.logs]
}
