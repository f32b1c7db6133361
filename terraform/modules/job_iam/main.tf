# The jobs' runtime roles (assumed by EMR Serverless for this application only): the stream's, the
# batch jobs', and the migrations', and a producer policy for whatever runs the simulator.
# Least privilege: only the environment's bucket prefixes (conf/aws.yaml via job_environment:
# lake/, checkpoints/, models/), its key, this cluster's three topics and the Spark source's
# consumer groups. In PostgreSQL each connects as its own login role (fraud.roles) with an IAM
# token (rds-db:connect on that user only); the master secret is the migrate role's alone.
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  topic_arns = [for topic in var.topics : "${var.topic_arn_prefix}${topic}"]
  # fraud.roles.login(component)
  db_user_arns = { for component in ["stream", "batch", "simulator"] : component => "${var.db_user_arn_prefix}fraud_${component}" }
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

# What every job run needs: its code and logs, the data key through S3.
data "aws_iam_policy_document" "job_run" {
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

  # Through S3 (the buckets' objects) only, never directly.
  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

# The stream's and the batch jobs': the lake, the registry readable.
data "aws_iam_policy_document" "common" {
  source_policy_documents = [data.aws_iam_policy_document.job_run.json]

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

  statement {
    sid       = "ConnectAsStreamRole"
    actions   = ["rds-db:connect"]
    resources = [local.db_user_arns["stream"]]
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

  statement {
    sid       = "ConnectAsBatchRole"
    actions   = ["rds-db:connect"]
    resources = [local.db_user_arns["batch"]]
  }
}

# The data stores' setup (jobs/migrate.py): the one role that reads the master secret, and the one
# that creates topics; no lake, no registry, no topic's data.
data "aws_iam_policy_document" "migrate" {
  source_policy_documents = [data.aws_iam_policy_document.job_run.json]

  statement {
    sid       = "ConnectToCluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [var.cluster_arn]
  }

  statement {
    sid       = "CreateTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic"]
    resources = local.topic_arns
  }

  statement {
    sid       = "ReadMasterSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [var.db_secret_arn]
  }

  statement {
    sid       = "DecryptMasterSecret"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
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

resource "aws_iam_role" "migrate" {
  name               = "${var.name}-emr-migrate"
  description        = "Runtime role of the database migrations (roles, schema, grants) on EMR Serverless"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "migrate" {
  name   = "fraud-migrate"
  role   = aws_iam_role.migrate.id
  policy = data.aws_iam_policy_document.migrate.json
}

# For the simulator: write the three topics (jobs/migrate.py creates them) and record the run's
# ground truth in PostgreSQL as fraud_simulator.
data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "ConnectToCluster"
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:WriteDataIdempotently"]
    resources = [var.cluster_arn]
  }

  statement {
    sid       = "WriteTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"]
    resources = local.topic_arns
  }

  statement {
    sid       = "ConnectAsSimulatorRole"
    actions   = ["rds-db:connect"]
    resources = [local.db_user_arns["simulator"]]
  }
}

resource "aws_iam_policy" "producer" {
  name        = "${var.name}-kafka-producer"
  description = "Run the fraud simulator against ${var.name}: MSK IAM produce, ground truth in PostgreSQL"
  policy      = data.aws_iam_policy_document.producer.json
  tags        = var.tags
}
