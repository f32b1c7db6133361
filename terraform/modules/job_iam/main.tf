# The job's runtime role (assumed by EMR Serverless for this application only) and a
# producer policy for whatever runs the simulator. Least privilege: only the environment's
# bucket prefixes, its one secret and key, this cluster's three topics and the Spark
# source's consumer groups.
data "aws_caller_identity" "current" {}

locals {
  # bucket purpose => the prefix the job uses in it (conf/aws.yaml via job_environment).
  read_write = {
    lake        = "lake"
    checkpoints = "checkpoints"
    models      = "models"
  }
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

data "aws_iam_policy_document" "job" {
  dynamic "statement" {
    for_each = local.read_write
    content {
      sid       = "List${title(statement.key)}"
      actions   = ["s3:ListBucket"]
      resources = [var.bucket_arns[statement.key]]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = [statement.value, "${statement.value}/*"]
      }
    }
  }

  # Hadoop's S3 client and pyarrow (the model registry) look up each bucket's region.
  statement {
    sid       = "LocateBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [for purpose in keys(local.read_write) : var.bucket_arns[purpose]]
  }

  statement {
    sid     = "ReadWriteDataPrefixes"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [
      for purpose, prefix in local.read_write : "${var.bucket_arns[purpose]}/${prefix}/*"
    ]
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

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "ReadDatabasePassword"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.db_secret_arn]
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

resource "aws_iam_role" "job" {
  name               = "${var.name}-emr-job"
  description        = "Runtime role of the fraud stream and training on EMR Serverless"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "job" {
  name   = "fraud-job"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
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
  }
}

resource "aws_iam_policy" "producer" {
  name        = "${var.name}-kafka-producer"
  description = "Run the fraud simulator against ${var.name}: MSK IAM produce, ground truth in PostgreSQL"
  policy      = data.aws_iam_policy_document.producer.json
  tags        = var.tags
}
