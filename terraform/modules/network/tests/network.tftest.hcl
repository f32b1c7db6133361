mock_provider "aws" {
  source = "../../mocks"
}

variables {
  name               = "fraud-dev"
  availability_zones = ["us-east-1a", "us-east-1b"]
  kms_key_arn        = "arn:aws:kms:us-east-1:123456789012:key/0000"
}

run "no_public_addresses_and_every_flow_logged" {
  command = plan

  assert {
    condition     = alltrue([for s in aws_subnet.public : !s.map_public_ip_on_launch])
    error_message = "no instance gets a public address, even in the public subnets (the load balancer's)"
  }
  assert {
    condition     = length(aws_subnet.private) == 2 && alltrue([for s in aws_subnet.private : s.map_public_ip_on_launch != true])
    error_message = "a private subnet per zone, without public addresses"
  }
  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL"
    error_message = "every flow of the VPC logged"
  }
  assert {
    condition     = alltrue([for i in aws_security_group.endpoints.ingress : alltrue([for c in i.cidr_blocks : c == var.cidr_block])])
    error_message = "the interface endpoints answer the VPC only"
  }
}

run "the_private_subnets_reach_the_internet_through_one_nat_gateway" {
  command = plan

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_route.private_internet) == 1
    error_message = "the Dash tasks' path to the load balancer's public keys"
  }
  assert {
    condition     = aws_route.private_internet[0].destination_cidr_block == "0.0.0.0/0"
    error_message = "a default route for the private subnets"
  }
}

run "without_the_nat_gateway_the_private_subnets_have_no_route_out" {
  command = plan
  variables {
    nat_gateway = false
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 0 && length(aws_route.private_internet) == 0
    error_message = "no NAT, no route"
  }
}

run "one_zone_is_refused" {
  command = plan
  variables {
    availability_zones = ["us-east-1a"]
  }
  expect_failures = [var.availability_zones]
}
