mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name              = "fraud-dev"
  vpc_id            = "vpc-0123"
  vpc_cidr          = "10.40.0.0/16"
  subnet_ids        = ["subnet-a", "subnet-b"]
  s3_prefix_list_id = "pl-0123"
}

run "spark_8_in_private_subnets_with_a_ceiling_and_no_egress_beyond_the_vpc_and_s3" {
  command = plan

  assert {
    condition     = aws_emrserverless_application.this.release_label == "emr-spark-8.1.0" && aws_emrserverless_application.this.type == "spark"
    error_message = "Spark 4.1.1 (emr-spark-8.1.0)"
  }
  assert {
    condition     = aws_emrserverless_application.this.maximum_capacity[0].cpu == "32 vCPU"
    error_message = "a capacity ceiling"
  }
  assert {
    condition     = aws_emrserverless_application.this.auto_stop_configuration[0].enabled
    error_message = "stops when idle"
  }
  assert {
    condition     = alltrue([for e in aws_security_group.emr.egress : alltrue([for c in coalesce(e.cidr_blocks, []) : c == var.vpc_cidr])])
    error_message = "egress to the workers themselves, the VPC and S3 only: no 0.0.0.0/0"
  }
  assert {
    condition     = alltrue([for e in aws_security_group.emr.egress : length(coalesce(e.ipv6_cidr_blocks, [])) == 0])
    error_message = "no IPv6 egress at all"
  }
}

run "an_unknown_architecture_is_refused" {
  command = plan
  variables {
    architecture = "RISCV"
  }
  expect_failures = [var.architecture]
}
