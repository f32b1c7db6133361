mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name            = "fraud-dev"
  application_arn = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00app"
  bucket_arns = {
    lake        = "arn:aws:s3:::fraud-dev-lake-123456789012"
    checkpoints = "arn:aws:s3:::fraud-dev-checkpoints-123456789012"
    models      = "arn:aws:s3:::fraud-dev-models-123456789012"
    artifacts   = "arn:aws:s3:::fraud-dev-artifacts-123456789012"
  }
  kms_key_arn        = "arn:aws:kms:us-east-1:123456789012:key/0000"
  db_secret_arn      = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"
  db_user_arn_prefix = "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-0000"
  cluster_arn        = "arn:aws:kafka:us-east-1:123456789012:cluster/fraud-dev/0000"
  topic_arn_prefix   = "arn:aws:kafka:us-east-1:123456789012:topic/fraud-dev/0000"
  group_arn_prefix   = "arn:aws:kafka:us-east-1:123456789012:group/fraud-dev/0000"
}

run "no_role_has_a_wildcard_action_and_only_migrate_reads_the_master_secret" {
  command = plan

  assert {
    condition = alltrue(flatten([for d in [data.aws_iam_policy_document.common, data.aws_iam_policy_document.stream,
      data.aws_iam_policy_document.batch, data.aws_iam_policy_document.migrate, data.aws_iam_policy_document.producer] :
    [for s in d.statement : [for a in s.actions : !strcontains(a, "*")]]]))
    error_message = "every action is named: no service:* and no Get* patterns"
  }
  assert {
    condition = alltrue(flatten([for d in [data.aws_iam_policy_document.common, data.aws_iam_policy_document.stream,
      data.aws_iam_policy_document.batch, data.aws_iam_policy_document.migrate, data.aws_iam_policy_document.producer] :
    [for s in d.statement : [for r in coalesce(s.resources, []) : r != "*"]]]))
    error_message = "every statement names its resources"
  }
  assert {
    condition = (anytrue([for s in data.aws_iam_policy_document.migrate.statement : contains(s.actions, "secretsmanager:GetSecretValue")])
      && !anytrue(flatten([for d in [data.aws_iam_policy_document.common, data.aws_iam_policy_document.stream,
        data.aws_iam_policy_document.batch, data.aws_iam_policy_document.producer] :
    [for s in d.statement : contains(s.actions, "secretsmanager:GetSecretValue")]])))
    error_message = "the master secret is migrate's alone"
  }
}
