# Batch jobs on a schedule (lake maintenance, retraining): EventBridge Scheduler calls EMR
# Serverless' StartJobRun itself (a universal target), so nothing runs between the two. Each job's
# request is what `python -m emr schedule KIND` writes: the release's content-addressed S3 keys are
# fixed in it, so a new release is scheduled by running that command again and applying.
data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    # Only this account's schedules of this environment may use the role.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:aws:scheduler:*:${data.aws_caller_identity.current.account_id}:schedule/default/${var.name}-*"]
    }
  }
}

# Start runs of this application only, and pass the job's runtime role to EMR Serverless only.
data "aws_iam_policy_document" "start_jobs" {
  statement {
    sid       = "StartJobRuns"
    actions   = ["emr-serverless:StartJobRun", "emr-serverless:TagResource"]
    resources = [var.application_arn, "${var.application_arn}/jobruns/*"]
  }
  statement {
    sid       = "PassJobRole"
    actions   = ["iam:PassRole"]
    resources = [var.job_role_arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }
  # The schedules' targets are encrypted with the environment's key; the role decrypts its own
  # schedules' only (Scheduler's encryption context names the schedule).
  statement {
    sid       = "DecryptOwnSchedules"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:scheduler:schedule-arn"
      values   = ["arn:aws:scheduler:*:${data.aws_caller_identity.current.account_id}:schedule/default/${var.name}-*"]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "start_jobs" {
  name   = "start-jobs"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.start_jobs.json
}

resource "aws_scheduler_schedule" "job" {
  for_each = var.jobs

  name                         = "${var.name}-${each.key}"
  schedule_expression          = each.value.schedule_expression
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = var.kms_key_arn

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = "arn:aws:scheduler:::aws-sdk:emrserverless:startJobRun"
    role_arn = aws_iam_role.scheduler.arn
    # A token per invocation (EMR deduplicates runs by it): the scheduler's execution id.
    input = jsonencode(merge(jsondecode(each.value.request), { clientToken = "<aws.scheduler.execution-id>" }))

    retry_policy {
      maximum_retry_attempts       = 2
      maximum_event_age_in_seconds = 3600
    }
  }

  lifecycle {
    precondition {
      condition = (jsondecode(each.value.request).applicationId == var.application_id
      && jsondecode(each.value.request).executionRoleArn == var.job_role_arn)
      error_message = "The scheduled request is for another application or role: run `python -m emr schedule ${each.key}` against this environment's outputs."
    }
  }
}
