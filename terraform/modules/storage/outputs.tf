output "bucket_names" {
  description = "Bucket name per purpose: lake, checkpoints, models, artifacts."
  value       = { for purpose, bucket in aws_s3_bucket.this : purpose => bucket.id }
}

output "bucket_arns" {
  description = "Bucket ARN per purpose."
  value       = { for purpose, bucket in aws_s3_bucket.this : purpose => bucket.arn }
}
