# MSK with IAM authentication only, TLS between clients and brokers and between brokers,
# storage encrypted with the environment's key, broker logs in CloudWatch.
resource "aws_security_group" "msk" {
  name        = "${var.name}-msk"
  description = "MSK brokers: IAM over TLS (9098) from the job and the producers"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "clients" {
  # count, not for_each: the group ids are unknown until the groups exist.
  count                        = length(var.client_security_group_ids)
  security_group_id            = aws_security_group.msk.id
  description                  = "Kafka IAM/TLS from a client security group"
  referenced_security_group_id = var.client_security_group_ids[count.index]
  from_port                    = 9098
  to_port                      = 9098
  ip_protocol                  = "tcp"
}

resource "aws_msk_configuration" "this" {
  name           = "${var.name}-kafka"
  kafka_versions = [var.kafka_version]
  # Topics are created by the setup step (jobs/migrate.py), never on a first write: a mistyped
  # topic fails instead of appearing. Replication 3 with min.insync.replicas 2: an acknowledged
  # write (acks=all) is on two brokers, and writes go on while one broker is patched or lost.
  # The record contract's size bound (max_message_bytes) and a producer clock at most an hour ahead
  # (no bound by default before Kafka 4) hold for every topic, the ones migrate.py creates too.
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    num.partitions=${var.partitions}
    default.replication.factor=3
    min.insync.replicas=2
    log.retention.hours=${var.retention_hours}
    message.max.bytes=${var.max_message_bytes}
    log.message.timestamp.after.max.ms=3600000
  PROPERTIES
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/${var.name}/msk"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count

  broker_node_group_info {
    instance_type   = var.instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.msk.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.volume_size_gb
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      iam = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }

  tags = var.tags
}
