mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name                      = "fraud-dev"
  vpc_id                    = "vpc-0123"
  subnet_ids                = ["subnet-a", "subnet-b", "subnet-c"]
  client_security_group_ids = ["sg-job", "sg-producer"]
  kms_key_arn               = "arn:aws:kms:us-east-1:123456789012:key/0000"
}

run "brokers_take_iam_over_tls_only_and_keep_a_write_on_two_brokers" {
  command = plan

  assert {
    condition     = aws_msk_cluster.this.number_of_broker_nodes == 3
    error_message = "three brokers by default"
  }
  assert {
    condition = (aws_msk_cluster.this.client_authentication[0].unauthenticated == false
    && aws_msk_cluster.this.client_authentication[0].sasl[0].iam == true)
    error_message = "IAM authentication only"
  }
  assert {
    condition = (aws_msk_cluster.this.encryption_info[0].encryption_in_transit[0].client_broker == "TLS"
      && aws_msk_cluster.this.encryption_info[0].encryption_in_transit[0].in_cluster
    && aws_msk_cluster.this.encryption_info[0].encryption_at_rest_kms_key_arn == var.kms_key_arn)
    error_message = "TLS between clients and brokers and inside the cluster; the project's key at rest"
  }
  assert {
    condition     = aws_msk_cluster.this.broker_node_group_info[0].connectivity_info[0].public_access[0].type == "DISABLED"
    error_message = "no public access"
  }
  assert {
    condition = alltrue([for line in ["auto.create.topics.enable=false", "default.replication.factor=3",
    "min.insync.replicas=2", "message.max.bytes=18432"] : strcontains(aws_msk_configuration.this.server_properties, line)])
    error_message = "no auto-created topics, replication 3 with two in sync, the record bound"
  }
  assert {
    condition     = alltrue([for r in aws_vpc_security_group_ingress_rule.clients : r.from_port == 9098 && r.to_port == 9098])
    error_message = "clients reach the IAM/TLS port only"
  }
}

run "two_brokers_are_refused" {
  command = plan
  variables {
    broker_count = 2
  }
  expect_failures = [var.broker_count]
}

run "a_message_bound_below_the_framing_is_refused" {
  command = plan
  variables {
    max_message_bytes = 2048
  }
  expect_failures = [var.max_message_bytes]
}
