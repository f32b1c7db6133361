mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name = "fraud-dev"
}

run "the_data_key_rotates_and_waits_before_deletion" {
  command = plan

  assert {
    condition     = aws_kms_key.data.enable_key_rotation
    error_message = "yearly rotation"
  }
  assert {
    condition     = aws_kms_key.data.deletion_window_in_days == 30
    error_message = "30 days to take a deletion back"
  }
  assert {
    condition = alltrue([for s in data.aws_iam_policy_document.key.statement : s.sid == "AccountAdministersThroughIam"
    || (!contains(s.actions, "kms:*") && length(coalesce(s.condition, [])) > 0)])
    error_message = "only the account's administration takes kms:*; each service's use is bound by a condition"
  }
}
