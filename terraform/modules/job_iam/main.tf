# The jobs' runtime roles (assumed by EMR Serverless for this application only), one for the
# stream and one for the batch jobs, and a producer policy for whatever runs the simulator.
# Least privilege: only the environment's bucket prefixes (conf/aws.yaml via job_environment:
# lake/, checkpoints/, models/), its one secret and key, this cluster's three topics and the
# Spark source's consumer groups.
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  topic_arns = [for topic in var.topics : "${var.topic_arn_prefix}${topic}"]
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    # This application (or one of its job runs) only, never another application's jobs.
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [var.application_arn, "${var.application_arn}/jobruns/*"]
    }
  }
}

# What every job run needs: its code and logs, the lake, the data key through S3 and Secrets
# Manager, the database password.
data "aws_iam_policy_document" "common" {
  statement {
    sid       = "ListLake"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arns["lake"]]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["lake", "lake/*"]
    }
  }

  statement {
    sid       = "ReadWriteLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arns["lake"]}/lake/*"]
  }

  statement {
    sid       = "ListModels"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arns["models"]]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["models", "models/*"]
    }
  }

  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arns["models"]}/models/*"]
  }

  # Hadoop's S3 client and pyarrow (the model registry) look up each bucket's region.
  statement {
    sid       = "LocateBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [for purpose in ["lake", "checkpoints", "models"] : var.bucket_arns[purpose]]
  }

  statement {
    sid       = "ReadJobArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arns["artifacts"]}/emr/*"]
  }

  statement {
    sid       = "WriteJobLogs"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arns["artifacts"]}/logs/*"]
  }

  # Through S3 (the buckets' objects) and Secrets Manager (the database password) only, never directly.
  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.name}.amazonaws.com", "secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadDatabasePassword"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.db_secret_arn]
  }
}

# The stream: its checkpoint and the topics; the registry read-only (it never registers or
# promotes a model, so a compromised stream cannot plant one).
data "aws_iam_policy_document" "stream" {
  source_policy_documents = [data.aws_iam_policy_document.common.json]

  statement {
    sid       = "ListCheckpoints"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arns["checkpoints"]]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["checkpoints", "checkpoints/*"]
    }
  }

  statement {
    sid       = "ReadWriteCheckpoints"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arns["checkpoints"]}/checkpoints/*"]
  }

  statement {
    sid       = "ConnectToCluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [var.cluster_arn]
  }

  statement {
    sid       = "ReadTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"]
    resources = local.topic_arns
  }

  statement {
    sid       = "UseSparkConsumerGroups"
    actions   = ["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"]
    resources = ["${var.group_arn_prefix}${var.consumer_group_prefix}*"]
  }
}

# The batch jobs (training, retraining, drift, maintenance): the lake and the registry, no
# topics and no checkpoint.
data "aws_iam_policy_document" "batch" {
  source_policy_documents = [data.aws_iam_policy_document.common.json]

  statement {
    sid       = "WriteModels"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arns["models"]}/models/*"]
  }
}

resource "aws_iam_role" "stream" {
  name               = "${var.name}-emr-stream"
  description        = "Runtime role of the fraud stream on EMR Serverless"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "stream" {
  name   = "fraud-stream"
  role   = aws_iam_role.stream.id
  policy = data.aws_iam_policy_document.stream.json
}

resource "aws_iam_role" "batch" {
  name               = "${var.name}-emr-batch"
  description        = "Runtime role of the fraud batch jobs (training, retraining, drift, maintenance) on EMR Serverless"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "batch" {
  name   = "fraud-batch"
  role   = aws_iam_role.batch.id
  policy = data.aws_iam_policy_document.batch.json
}

# For the simulator: write the three topics (created on first use) and record the run's
# ground truth in PostgreSQL, which needs the database password.
data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "ConnectToCluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.cluster_arn]
  }

  statement {
    sid       = "WriteTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:WriteData"]
    resources = local.topic_arns
  }

  statement {
    sid       = "ReadDatabasePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.db_secret_arn]
  }

  statement {
    sid       = "DecryptDatabasePassword"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "producer" {
  name        = "${var.name}-kafka-producer"
  description = "Run the fraud simulator against ${var.name}: MSK IAM produce, ground truth in PostgreSQL"
  policy      = data.aws_iam_policy_document.producer.json
  tags        = var.tags
}
