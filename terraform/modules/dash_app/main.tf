# The Dash monitoring app on ECS Fargate in the private subnets, behind an internet-facing
# Application Load Balancer that signs users in with OIDC before forwarding anything.
# The app connects to PostgreSQL as its own role with IAM tokens its task role signs (fraud.roles).
#
# The OIDC client secret is read from Secrets Manager at plan time: the ALB API takes it
# as a value, so it lands in Terraform state; keep state in an encrypted, private backend.
data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

data "aws_secretsmanager_secret_version" "oidc" {
  secret_id = var.oidc.client_secret_arn
}

# --- load balancer ------------------------------------------------------------------

resource "aws_security_group" "alb" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers with a redirect to HTTPS
  name        = "${var.name}-dash-alb"
  description = "Dash load balancer: HTTPS in; out to the tasks and the identity provider"
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description = "HTTPS from users"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "HTTP from users, redirected to HTTPS"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  egress {
    description = "Dash tasks"
    from_port   = var.container_port
    to_port     = var.container_port
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "OIDC token and user info endpoints of the identity provider"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_lb" "this" {
  name                       = "${var.name}-dash"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  tags                       = var.tags

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "alb"
    enabled = true
  }
}

# Rate limiting per client IP in front of the login, and AWS's managed rules for common exploits
# and known bad inputs.
resource "aws_wafv2_web_acl" "dash" {
  name  = "${var.name}-dash"
  scope = "REGIONAL"
  tags  = var.tags

  default_action {
    allow {}
  }

  rule {
    name     = "rate-per-ip"
    priority = 1
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.requests_per_5_min_per_ip
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dash-rate"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "common"
    priority = 2
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dash-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 3
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dash-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  # Tor exits and anonymising proxies blocked; hosting providers only counted (corporate VPNs
  # egress from them, and analysts sign in through those).
  rule {
    name     = "anonymous-ip"
    priority = 4
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-dash-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-dash"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "dash" {
  resource_arn = aws_lb.this.arn
  web_acl_arn  = aws_wafv2_web_acl.dash.arn
}

# WAF's own log of blocked and sampled requests (its log group's name must start with aws-waf-logs-).
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${var.name}-dash"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "dash" {
  resource_arn            = aws_wafv2_web_acl.dash.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
}

resource "aws_lb_target_group" "dash" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays inside the VPC's private subnets
  name        = "${var.name}-dash"
  port        = var.container_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id
  tags        = var.tags

  health_check {
    path    = var.health_check_path
    matcher = "200"
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn
  tags              = var.tags

  default_action {
    type  = "authenticate-oidc"
    order = 1
    authenticate_oidc {
      issuer                     = var.oidc.issuer
      authorization_endpoint     = var.oidc.authorization_endpoint
      token_endpoint             = var.oidc.token_endpoint
      user_info_endpoint         = var.oidc.user_info_endpoint
      client_id                  = var.oidc.client_id
      client_secret              = data.aws_secretsmanager_secret_version.oidc.secret_string
      on_unauthenticated_request = "authenticate"
      session_timeout            = 28800
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.dash.arn
  }
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  tags              = var.tags

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

# --- tasks --------------------------------------------------------------------------

resource "aws_security_group" "tasks" {
  name        = "${var.name}-dash-tasks"
  description = "Dash tasks: from the load balancer; out to PostgreSQL and the endpoints" # ForceNew: kept
  vpc_id      = var.vpc_id
  tags        = var.tags

  ingress {
    description     = "From the load balancer"
    from_port       = var.container_port
    to_port         = var.container_port
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }

  egress {
    description = "PostgreSQL inside the VPC"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "HTTPS: the endpoints inside the VPC, the load balancer public keys (public-keys.auth.elb.REGION.amazonaws.com) through the NAT gateway"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "MSK brokers (IAM over TLS) inside the VPC: the simulator of the load tests"
    from_port   = 9098
    to_port     = 9098
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description     = "ECR image layers from S3 through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [var.s3_prefix_list_id]
  }
}

resource "aws_cloudwatch_log_group" "dash" {
  name              = "/${var.name}/dash"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = "${var.name}-dash"
  tags = var.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    # Only this account's use of the service may assume the role (confused deputy).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# Pulls the image and writes logs.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-dash-execution"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

# What the app itself may do: connect to PostgreSQL as fraud_dash (fraud.roles; an IAM token, no
# password); read the model registry and move its current and challenger pointers (the model page's
# promote and rollback), nothing else. Its load tests' rights are the producer policy's (below).
data "aws_iam_policy_document" "task" {
  statement {
    actions   = ["rds-db:connect"]
    resources = ["${var.db_user_arn_prefix}fraud_dash"]
  }

  statement {
    actions   = ["s3:ListBucket"]
    resources = ["arn:aws:s3:::${var.models_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.models_prefix}/*"]
    }
  }

  statement {
    actions   = ["s3:GetObject"]
    resources = ["arn:aws:s3:::${var.models_bucket}/${var.models_prefix}/*"]
  }

  statement {
    actions = ["s3:PutObject", "s3:DeleteObject"]
    resources = [for name in ["current.json", "current.json.tmp", "challenger.json", "challenger.json.tmp"] :
    "arn:aws:s3:::${var.models_bucket}/${var.models_prefix}/${name}"]
  }

  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-dash-task"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "fraud-dash"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# The load tests the app starts run the simulator: it produces to the topics (job_iam's producer
# policy, which also lets it connect as fraud_simulator).
resource "aws_iam_role_policy_attachment" "producer" {
  role       = aws_iam_role.task.name
  policy_arn = var.producer_policy_arn
}

resource "aws_ecs_task_definition" "dash" {
  family                   = "${var.name}-dash"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = var.tags

  # Read-only root file system; the app writes only to this scratch volume.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = "dash"
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = var.container_port, protocol = "tcp" }]
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    environment = [
      { name = "FRAUD_DASH_CONFIG", value = "/app/conf/aws.yaml" },
      { name = "FRAUD_DASH_BIND", value = "0.0.0.0:${var.container_port}" },
      # Only tokens this load balancer signed are accepted (dash_app.identity).
      { name = "FRAUD_DASH_ALB_ARN", value = aws_lb.this.arn },
      # The Host names the app answers to (any other: 400): the load balancer's and the certificate's.
      { name = "FRAUD_DASH_TRUSTED_HOSTS", value = join(",", concat([aws_lb.this.dns_name], var.host_names)) },
      { name = "FRAUD_DASH_RUN_DIR", value = "/tmp/load-tests" },
      { name = "FRAUD_MODELS_ROOT", value = "s3://${var.models_bucket}/${var.models_prefix}" },
      { name = "FRAUD_POSTGRES_DSN", value = var.db_dsn },
      { name = "FRAUD_KAFKA_BOOTSTRAP_SERVERS", value = var.kafka_bootstrap_servers },
      # The RDS CA bundle in the image (dash_app/Dockerfile): the server's certificate is verified.
      { name = "FRAUD_POSTGRES_SSL_ROOT_CERT", value = "/etc/ssl/rds-ca.pem" },
      { name = "AWS_REGION", value = data.aws_region.current.name },
    ]
    healthCheck = {
      command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${var.container_port}${var.health_check_path}', timeout=4)"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.dash.name
        awslogs-region        = data.aws_region.current.name
        awslogs-stream-prefix = "dash"
      }
    }
  }])
}

resource "aws_ecs_service" "dash" {
  name             = "dash"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.dash.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  tags             = var.tags

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.dash.arn
    container_name   = "dash"
    container_port   = var.container_port
  }

  depends_on = [aws_lb_listener.https]
}
