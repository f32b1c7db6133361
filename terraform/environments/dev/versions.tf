terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.100.0"
    }
  }

  # State holds identifiers and the OIDC client secret (see modules/dash_app): keep it in
  # an encrypted, private backend. Pass its settings at init:
  #   terraform init -backend-config="bucket=..." -backend-config="key=fraud/dev.tfstate" \
  #     -backend-config="region=us-east-1" -backend-config="encrypt=true" -backend-config="use_lockfile=true"
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "fraud-streaming"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
