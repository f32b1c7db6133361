"""Cost per day of the dev deployment, idle and at normal load, from ``prices.yaml``.

``python -m emr cost`` prints the cost table of docs/deploy-aws.md. Every figure is list price times
quantity; the quantities are the Terraform dev defaults and the stream's Spark resources
(``emr.runs.JOB_KINDS``), so changing either changes the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from emr.runs import JOB_KINDS

PRICES = Path(__file__).with_name("prices.yaml")
HOURS_PER_DAY = 24
DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class Line:
    item: str
    idle_per_day: float
    normal_per_day: float


def worker_size(cores: str, memory: str) -> tuple[int, int]:
    """(vCPU, GB) EMR Serverless bills for a Spark driver or executor: memory + 10 % overhead, whole GB."""
    gigabytes = int(memory.rstrip("g"))
    return int(cores), math.ceil(gigabytes * 1.1)


def stream_resources() -> tuple[int, int]:
    """(vCPU, GB) of the streaming job at its minimum size: driver + minimum executors."""
    conf = JOB_KINDS["stream"].resources
    driver = worker_size(conf["spark.driver.cores"], conf["spark.driver.memory"])
    executor = worker_size(conf["spark.executor.cores"], conf["spark.executor.memory"])
    count = int(conf["spark.dynamicAllocation.minExecutors"])
    return driver[0] + count * executor[0], driver[1] + count * executor[1]


def cost_lines(path: Path = PRICES) -> tuple[str, list[Line]]:
    data = yaml.safe_load(path.read_text())
    p, d, load = data["prices"], data["deployment"], data["normal_load"]
    day = HOURS_PER_DAY

    def monthly(amount: float) -> float:
        return amount / DAYS_PER_MONTH

    vcpu, gb = stream_resources()
    emr = (vcpu * p["emr_serverless_vcpu_hour"] + gb * p["emr_serverless_gb_hour"]) * day
    events = load["events_per_min"] * 60 * day
    batches = day * 3600 / load["micro_batch_seconds"]
    s3_requests = batches * (load["s3_puts_per_batch"] * p["s3_put_per_1000"]
                             + load["s3_gets_per_batch"] * p["s3_get_per_1000"]) / 1000
    stored_gb = events * load["stored_bytes_per_event"] / 1e9
    wire_gb = events * load["wire_bytes_per_event"] / 1e9

    msk = (d["msk_brokers"] * p["msk_kafka_t3_small_broker_hour"] * day
           + monthly(d["msk_brokers"] * d["msk_storage_gb_per_broker"] * p["msk_storage_gb_month"]))
    rds = p["rds_db_t4g_micro_hour"] * day + monthly(d["rds_storage_gb"] * p["rds_gp3_gb_month"])
    endpoints = d["interface_endpoints"] * d["availability_zones"] * p["vpc_interface_endpoint_az_hour"] * day
    nat = d["nat_gateways"] * p["nat_gateway_hour"] * day
    dash = (p["alb_hour"] + d["alb_lcu_average"] * p["alb_lcu_hour"]) * day + d["dash_tasks"] * (
        d["dash_task_vcpu"] * p["fargate_vcpu_hour"] + d["dash_task_gb"] * p["fargate_gb_hour"]) * day
    keys = monthly(d["kms_keys"] * p["kms_key_month"] + d["secrets"] * p["secret_month"])
    lines = [
        Line(f"EMR Serverless stream ({vcpu} vCPU, {gb} GB)", 0.0, emr),
        Line(f"MSK ({d['msk_brokers']} x kafka.t3.small, {d['msk_storage_gb_per_broker']} GB each)", msk, msk),
        Line("RDS PostgreSQL (db.t4g.micro, single-AZ)", rds, rds),
        Line(f"VPC interface endpoints ({d['interface_endpoints']} x {d['availability_zones']} AZ)",
             endpoints, endpoints),
        Line("NAT gateway (the Dash login's public keys)", nat, nat),
        Line("Dash app (ALB + 1 Fargate task)", dash, dash),
        Line("KMS keys, Secrets Manager", keys, keys),
        Line("S3 requests (micro-batch writes, checkpoints)", 0.0, s3_requests),
        Line("S3 storage added per day (lake grows)", 0.0, monthly(stored_gb * p["s3_standard_gb_month"])),
        Line("Cross-AZ transfer, CloudWatch logs", 0.0,
             wire_gb * p["cross_az_transfer_gb"] + load["log_gb_per_day"] * p["cloudwatch_logs_ingest_gb"]),
    ]
    return data["region"], lines


def markdown_table(path: Path = PRICES) -> str:
    region, lines = cost_lines(path)
    rows = [f"| item ({region}, USD) | idle, per day | normal load, per day |", "|---|---:|---:|"]
    rows += [f"| {line.item} | {line.idle_per_day:.2f} | {line.normal_per_day:.2f} |" for line in lines]
    idle = sum(line.idle_per_day for line in lines)
    normal = sum(line.normal_per_day for line in lines)
    rows.append(f"| **total per day** | **{idle:.2f}** | **{normal:.2f}** |")
    rows.append(f"| total per 30-day month | {idle * DAYS_PER_MONTH:.0f} | {normal * DAYS_PER_MONTH:.0f} |")
    return "\n".join(rows)
