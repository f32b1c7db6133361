mock_provider "aws" {
  source = "../../mocks"
}

variables {
  dash_image           = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud-dash:1"
  dash_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/0000"
  dash_oidc = {
    issuer                 = "https://login.example.com"
    authorization_endpoint = "https://login.example.com/authorize"
    token_endpoint         = "https://login.example.com/token"
    user_info_endpoint     = "https://login.example.com/userinfo"
    client_id              = "fraud-dash"
    client_secret_arn      = "arn:aws:secretsmanager:us-east-1:123456789012:secret:oidc"
  }
}

run "the_environment_plans_with_its_defaults_and_points_the_jobs_at_its_buckets" {
  command = plan

  assert {
    condition = (output.job_environment.FRAUD_LAKE_ROOT == "s3://fraud-dev-lake-123456789012/lake"
      && output.job_environment.FRAUD_CHECKPOINT_ROOT == "s3://fraud-dev-checkpoints-123456789012/checkpoints"
    && output.job_environment.FRAUD_MODELS_ROOT == "s3://fraud-dev-models-123456789012/models")
    error_message = "conf/aws.yaml's roots point at this environment's buckets"
  }
  assert {
    condition     = length(output.schedule_arns) == 0
    error_message = "no schedule until `python -m emr schedule` writes one"
  }
}

run "an_environment_name_aws_would_refuse_is_refused" {
  command = plan
  variables {
    environment = "Dev_Environment_Name"
  }
  expect_failures = [var.environment]
}
