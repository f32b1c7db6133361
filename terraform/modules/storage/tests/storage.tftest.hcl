mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name        = "fraud-dev"
  kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/0000"
}

run "buckets_are_private_encrypted_versioned_and_tls_only" {
  command = plan

  assert {
    condition     = length(aws_s3_bucket.this) == 4
    error_message = "the lake, checkpoints, models and artifacts buckets"
  }
  assert {
    condition = alltrue([for b in aws_s3_bucket_public_access_block.this : b.block_public_acls && b.block_public_policy
    && b.ignore_public_acls && b.restrict_public_buckets])
    error_message = "every data bucket blocks public access"
  }
  assert {
    condition = alltrue([for c in aws_s3_bucket_server_side_encryption_configuration.this :
      one(c.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms"
    && one(c.rule).apply_server_side_encryption_by_default[0].kms_master_key_id == var.kms_key_arn])
    error_message = "every data bucket is encrypted with the project's key"
  }
  assert {
    condition     = alltrue([for v in aws_s3_bucket_versioning.this : v.versioning_configuration[0].status == "Enabled"])
    error_message = "every data bucket is versioned"
  }
  assert {
    condition = alltrue([for d in data.aws_iam_policy_document.tls_only : anytrue([for s in d.statement :
    s.effect == "Deny" && anytrue([for c in s.condition : c.variable == "aws:SecureTransport" && contains(c.values, "false")])])])
    error_message = "every data bucket refuses requests without TLS"
  }
  assert {
    condition     = aws_s3_bucket_public_access_block.logs.block_public_policy && aws_s3_bucket_public_access_block.logs.restrict_public_buckets
    error_message = "the access-log bucket is private too"
  }
}

run "a_bucket_without_its_retention_is_refused" {
  command = plan
  variables {
    noncurrent_version_days = { lake = 30, checkpoints = 7 }
  }
  expect_failures = [var.noncurrent_version_days]
}
