# The EMR Serverless application the stream and training run on: emr-spark-8.1.0
# (Spark 4.1, Delta 4.2, Python 3.11), started on the first job submission, stopped
# after idle minutes, never larger than the maximum capacity. Workers run in the private
# subnets and may open connections only inside the VPC and to S3.
resource "aws_security_group" "emr" {
  #checkov:skip=CKV2_AWS_5:Attached through the EMR Serverless application's network_configuration, which checkov does not follow
  name        = "${var.name}-emr"
  description = "EMR Serverless workers: out to MSK, PostgreSQL, endpoints and S3 only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  # Spark driver and executors talk to each other on arbitrary ports.
  ingress {
    description = "Spark driver and executors, from each other"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    self        = true
  }

  egress {
    description = "Spark driver and executors, to each other"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    self        = true
  }

  dynamic "egress" {
    for_each = { kafka = 9098, postgres = 5432, endpoints = 443 }
    content {
      description = "${egress.key} inside the VPC"
      from_port   = egress.value
      to_port     = egress.value
      protocol    = "tcp"
      cidr_blocks = [var.vpc_cidr]
    }
  }

  egress {
    description     = "S3 through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [var.s3_prefix_list_id]
  }
}

resource "aws_emrserverless_application" "this" {
  name          = var.name
  release_label = var.release_label
  type          = "spark"
  architecture  = var.architecture

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  maximum_capacity {
    cpu    = "${var.max_vcpu} vCPU"
    memory = "${var.max_memory_gb} GB"
    disk   = "${var.max_disk_gb} GB"
  }

  network_configuration {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.emr.id]
  }

  tags = var.tags
}
