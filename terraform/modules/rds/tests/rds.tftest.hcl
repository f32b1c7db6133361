mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name                      = "fraud-dev"
  vpc_id                    = "vpc-0123"
  subnet_ids                = ["subnet-a", "subnet-b"]
  client_security_group_ids = ["sg-job", "sg-dash"]
  kms_key_arn               = "arn:aws:kms:us-east-1:123456789012:key/0000"
}

run "the_database_is_private_encrypted_tls_only_and_takes_iam_logins" {
  command = plan

  assert {
    condition     = aws_db_instance.this.storage_encrypted && aws_db_instance.this.kms_key_id == var.kms_key_arn
    error_message = "storage encrypted with the project's key"
  }
  assert {
    condition     = !aws_db_instance.this.publicly_accessible
    error_message = "not reachable from the internet"
  }
  assert {
    condition     = aws_db_instance.this.iam_database_authentication_enabled
    error_message = "the components log in with IAM tokens"
  }
  assert {
    condition     = anytrue([for p in aws_db_parameter_group.this.parameter : p.name == "rds.force_ssl" && p.value == "1"])
    error_message = "TLS only"
  }
  assert {
    condition     = aws_db_instance.this.deletion_protection
    error_message = "deletion protection on by default"
  }
  assert {
    condition     = alltrue([for r in aws_vpc_security_group_ingress_rule.clients : r.from_port == 5432 && r.to_port == 5432])
    error_message = "clients reach PostgreSQL's port only"
  }
}
