mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name            = "fraud-dev-dash"
  image           = "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud-dash:1"
  certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/0000"
  oidc = {
    issuer                 = "https://login.example.com"
    authorization_endpoint = "https://login.example.com/authorize"
    token_endpoint         = "https://login.example.com/token"
    user_info_endpoint     = "https://login.example.com/userinfo"
    client_id              = "fraud-dash"
    client_secret_arn      = "arn:aws:secretsmanager:us-east-1:123456789012:secret:oidc"
  }
  db_dsn                  = "host=db.internal dbname=fraud"
  kafka_bootstrap_servers = "b-1.msk.internal:9098"
  producer_policy_arn     = "arn:aws:iam::123456789012:policy/producer"
  db_user_arn_prefix      = "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-0000"
  kms_key_arn             = "arn:aws:kms:us-east-1:123456789012:key/0000"
  vpc_id                  = "vpc-0123"
  vpc_cidr                = "10.40.0.0/16"
  public_subnet_ids       = ["subnet-pa", "subnet-pb"]
  private_subnet_ids      = ["subnet-a", "subnet-b"]
  s3_prefix_list_id       = "pl-0123"
  models_bucket           = "fraud-dev-models-123456789012"
  access_logs_bucket      = "fraud-dev-logs-123456789012"
}

# ARNs known at plan, so the WAF's association can be checked there.
override_resource {
  target          = aws_lb.this
  override_during = plan
  values          = { arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/fraud-dev-dash/1" }
}

override_resource {
  target          = aws_wafv2_web_acl.dash
  override_during = plan
  values          = { arn = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/fraud-dev-dash/1" }
}

run "the_app_is_behind_tls_an_oidc_login_and_the_waf" {
  command = plan

  assert {
    condition     = aws_lb_listener.https.protocol == "HTTPS" && startswith(aws_lb_listener.https.ssl_policy, "ELBSecurityPolicy-TLS13")
    error_message = "HTTPS with a TLS 1.3 policy"
  }
  assert {
    condition     = aws_lb_listener.https.default_action[0].type == "authenticate-oidc"
    error_message = "the OIDC login comes before any request reaches the app"
  }
  assert {
    condition     = aws_lb_listener.http_redirect.default_action[0].type == "redirect"
    error_message = "HTTP only redirects to HTTPS"
  }
  assert {
    condition     = aws_lb.this.drop_invalid_header_fields
    error_message = "invalid headers are dropped"
  }
  assert {
    condition = (aws_wafv2_web_acl_association.dash.web_acl_arn == aws_wafv2_web_acl.dash.arn
    && aws_wafv2_web_acl_association.dash.resource_arn == aws_lb.this.arn)
    error_message = "the WAF is associated with the load balancer"
  }
  assert {
    condition     = alltrue([for e in aws_security_group.tasks.egress : length(coalesce(e.ipv6_cidr_blocks, [])) == 0])
    error_message = "no IPv6 egress at all"
  }
  assert {
    condition = alltrue([for e in aws_security_group.tasks.egress : e.from_port == 443 && e.to_port == 443
    || alltrue([for c in coalesce(e.cidr_blocks, []) : c == var.vpc_cidr])])
    error_message = "beyond the VPC and S3, the tasks reach HTTPS only"
  }
  assert {
    condition = anytrue([for e in aws_security_group.tasks.egress : e.from_port == 443 && e.to_port == 443
    && contains(coalesce(e.cidr_blocks, []), "0.0.0.0/0")])
    error_message = "the tasks reach the load balancer's public-key endpoint (outside the VPC), or no login verifies"
  }
}

run "a_rate_limit_under_the_waf_minimum_is_refused" {
  command = plan
  variables {
    requests_per_5_min_per_ip = 50
  }
  expect_failures = [var.requests_per_5_min_per_ip]
}
