mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name            = "fraud-dev"
  application_id  = "00app"
  application_arn = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/00app"
  job_role_arn    = "arn:aws:iam::123456789012:role/fraud-dev-batch"
  kms_key_arn     = "arn:aws:kms:us-east-1:123456789012:key/0000"
  jobs = {
    maintain = {
      schedule_expression = "cron(0 3 * * ? *)"
      request             = "{\"applicationId\": \"00app\", \"executionRoleArn\": \"arn:aws:iam::123456789012:role/fraud-dev-batch\", \"name\": \"fraud-maintain\"}"
    }
  }
}

run "a_schedule_starts_its_run_with_a_token_per_invocation" {
  command = plan

  assert {
    condition     = jsondecode(aws_scheduler_schedule.job["maintain"].target[0].input).clientToken == "<aws.scheduler.execution-id>"
    error_message = "EMR deduplicates a retried invocation by its token"
  }
  assert {
    condition     = aws_scheduler_schedule.job["maintain"].target[0].arn == "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
    error_message = "the scheduler calls StartJobRun itself"
  }
}

run "a_request_for_another_application_is_refused" {
  command = plan
  variables {
    jobs = {
      maintain = {
        schedule_expression = "cron(0 3 * * ? *)"
        request             = "{\"applicationId\": \"00other\", \"executionRoleArn\": \"arn:aws:iam::123456789012:role/fraud-dev-batch\"}"
      }
    }
  }
  expect_failures = [aws_scheduler_schedule.job]
}
