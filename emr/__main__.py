"""``python -m emr``: upload, submit, watch and cancel the job on EMR Serverless.

Every command reads the deployment from ``terraform output -json`` (``--outputs``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from fraud.cli import ArgumentParser, UserError, report, run

ROOT = Path(__file__).resolve().parents[1]
# Defaults live in the repository; paths given on the command line are relative to the current folder.
DEFAULT_OUTPUTS = ROOT / "terraform" / "environments" / "dev" / "outputs.json"
DEFAULT_ARCHIVE = ROOT / "dist" / "fraud_env.tar.gz"
DEFAULT_CONFIG = ROOT / "conf" / "aws.yaml"
DEFAULT_SCHEDULES = ROOT / "terraform" / "environments" / "dev" / "schedules.auto.tfvars.json"
# Batch jobs that run on a schedule (terraform/modules/schedules) and when, by default (UTC): lake
# maintenance daily, at night; drift hourly; retraining weekly, Monday night (a challenger to compare).
SCHEDULABLE = {"maintain": "cron(0 3 * * ? *)", "drift": "rate(1 hour)", "retrain": "cron(0 4 ? * MON *)"}


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m emr",
        description="Run the fraud streaming job and training on EMR Serverless (see docs/deploy-aws.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ArgumentParser)

    def command(name: str, help_text: str) -> ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--outputs", type=Path, default=DEFAULT_OUTPUTS,
                         help="`terraform output -json` of the environment (default: %(default)s)")
        return sub

    def artifacts(sub: ArgumentParser) -> None:
        sub.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE,
                         help="venv-pack archive built with emr/Dockerfile (default: %(default)s)")
        sub.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="job config (default: %(default)s)")

    upload = command("upload", "Upload archive, config, entry points and jars to the artifacts bucket.")
    artifacts(upload)
    upload.add_argument("--json", action="store_true", help="machine-readable output")

    from emr.runs import JOB_KINDS

    submit = command("submit", "Upload (if changed) and start the streaming job, a training run or lake maintenance.")
    submit.add_argument("kind", choices=tuple(JOB_KINDS))
    artifacts(submit)
    submit.add_argument("--max-failed-attempts-per-hour", type=int, default=5,
                        help="stream: EMR restarts a failed stream at most this often an hour, 1-10 "
                        "(default: %(default)s)")
    submit.add_argument("--max-attempts", type=int, default=1,
                        help="train: attempts in all, 1-10 (default: %(default)s)")
    submit.add_argument("--train-test-id", action="append", default=[], help="train: simulator run(s) to train on")
    submit.add_argument("--eval-test-id", action="append", default=[], help="train: held-out run(s)")
    submit.add_argument("--promote", action="store_true", help="train: promote the new version")
    submit.add_argument("--client-token", help="idempotency token (default: a digest of the request)")
    submit.add_argument("--wait", action="store_true",
                        help="then wait until the run is RUNNING (a stream) or finished (a batch run); exit 1 if it failed")

    schedule = command("schedule", "Upload (if changed) and write a batch job's schedule for Terraform "
                       "(terraform/modules/schedules); `terraform apply` then creates or updates it.")
    schedule.add_argument("kind", choices=tuple(SCHEDULABLE))
    artifacts(schedule)
    schedule.add_argument("--expression", help="EventBridge Scheduler expression, UTC: rate(...) or cron(...) "
                          "(default: maintain daily at 03:00, cron(0 3 * * ? *))")
    schedule.add_argument("--tfvars", type=Path, default=DEFAULT_SCHEDULES,
                          help="variables file the kind's entry is written to, others kept (default: %(default)s)")

    for name, help_text in (("status", "Print a job run's state."),
                            ("logs", "Print where a job run's logs are and a link to its Spark UI.")):
        sub = command(name, help_text)
        sub.add_argument("job_run_id")
        sub.add_argument("--json", action="store_true", help="machine-readable output")

    wait = command("wait", "Poll a job run with backoff until it is RUNNING or finished.")
    wait.add_argument("job_run_id")
    wait.add_argument("--until", choices=("RUNNING", "SUCCESS"), default="RUNNING",
                      help="state to wait for; any final state also ends the wait (default: %(default)s)")
    wait.add_argument("--timeout", type=float, default=1800, help="seconds (default: %(default)s)")

    cancel = command("cancel", "Cancel a job run.")
    cancel.add_argument("job_run_id")
    cancel.add_argument("--grace-period", type=int, default=None,
                        help="seconds to let the running micro-batch finish before the stop")

    cost = commands.add_parser("cost", help="Print the cost table (emr/prices.yaml) as Markdown.")
    cost.add_argument("--prices", default=str(Path(__file__).with_name("prices.yaml")))
    return parser


def _clients(region: str):
    import boto3

    session = boto3.session.Session(region_name=region)
    return session.client("s3"), session.client("emr-serverless")


def _release(args, deployment, s3):
    from emr.artifacts import upload_release
    from fraud.config import load_config
    from fraud.jars import ensure_jars, spark_jars

    # Fail before uploading anything if the config would not load on EMR.
    load_config(args.config, environ=deployment.job_environment)
    jars = spark_jars() + ensure_jars("msk-iam")  # Delta, Kafka source, the velocity operator, MSK IAM
    return upload_release(s3, deployment.artifacts_bucket, ROOT, args.archive, args.config, jars)


def _train_arguments(args) -> list[str]:
    if args.kind != "train":
        if args.train_test_id or args.eval_test_id or args.promote:
            raise UserError("--train-test-id, --eval-test-id and --promote are for `submit train`")
        return []
    if not args.train_test_id or not args.eval_test_id:
        raise UserError("submit train needs --train-test-id and --eval-test-id")
    arguments = [f"--train-test-id={t}" for t in args.train_test_id]
    arguments += [f"--eval-test-id={t}" for t in args.eval_test_id]
    return arguments + (["--promote"] if args.promote else [])


def write_schedule(tfvars: Path, kind: str, expression: str, request: dict) -> None:
    """Set ``kind``'s entry of ``scheduled_jobs`` in a Terraform variables file (JSON), keeping the
    other kinds'. The schedule gives each run its own client token, so the request carries none."""
    if not re.fullmatch(r"(rate|cron)\(.+\)", expression.strip()):
        raise UserError(f"--expression must be rate(...) or cron(...), got {expression!r}")
    try:
        current = json.loads(tfvars.read_text()) if tfvars.exists() else {}
    except json.JSONDecodeError as err:
        raise UserError(f"{tfvars} is not JSON ({err}): fix or delete it") from None
    request = {k: v for k, v in request.items() if k != "clientToken"}
    jobs = current.get("scheduled_jobs", {})
    jobs[kind] = {"schedule_expression": expression.strip(), "request": json.dumps(request, sort_keys=True)}
    tfvars.write_text(json.dumps(current | {"scheduled_jobs": jobs}, indent=2) + "\n")


def _print_run(run: dict) -> None:
    details = f" ({run['stateDetails']})" if run.get("stateDetails") else ""
    print(f"{run['jobRunId']} {run.get('mode', '')} {run['state']} attempt {run.get('attempt', 1)}{details}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "cost":
        from emr.cost import markdown_table

        print(markdown_table(Path(args.prices)))
        return 0

    from emr import runs
    from emr.deployment import load_deployment

    deployment = load_deployment(args.outputs)
    app = deployment.application_id
    # Validate arguments before any AWS call.
    arguments = _train_arguments(args) if args.command == "submit" else []
    s3, emr = _clients(deployment.region)

    if args.command == "upload":
        release = _release(args, deployment, s3)
        report({"archive": release.archive, "config": release.config, "entry_points": release.entry_points,
                "jars": list(release.jars)}, args.json)
        return 0
    if args.command == "submit":
        request = runs.start_job_run_request(
            args.kind, deployment, _release(args, deployment, s3), arguments,
            max_failed_attempts_per_hour=args.max_failed_attempts_per_hour,
            max_attempts=args.max_attempts, client_token=args.client_token)
        job_run_id = runs.submit(emr, request)
        print(job_run_id)
        print(f"logs: {runs.log_location(deployment, app, job_run_id)}", file=sys.stderr)
        if not args.wait:
            return 0
        # A stream is up once RUNNING; a batch run (training, migrations) only when it succeeded.
        until = "RUNNING" if runs.JOB_KINDS[args.kind].mode == "STREAMING" else "SUCCESS"
        run = runs.wait(emr, app, job_run_id, until=until, report=_print_run)
        return 0 if run["state"] in (until, "SUCCESS") else 1
    if args.command == "schedule":
        write_schedule(args.tfvars, args.kind, args.expression or SCHEDULABLE[args.kind],
                       runs.start_job_run_request(args.kind, deployment, _release(args, deployment, s3)))
        print(f"wrote the {args.kind} schedule to {args.tfvars}: run `terraform apply` in its folder", file=sys.stderr)
        return 0
    if args.command == "status":
        run = runs.job_run(emr, app, args.job_run_id)
        if args.json:
            report(run, as_json=True)
        else:
            _print_run(run)
        return 0
    if args.command == "wait":
        run = runs.wait(emr, app, args.job_run_id, until=args.until, timeout_s=args.timeout, report=_print_run)
        return 0 if run["state"] in (args.until, "SUCCESS") else 1
    if args.command == "logs":
        location = {"logs": runs.log_location(deployment, app, args.job_run_id),
                    "spark_ui": runs.dashboard_url(emr, app, args.job_run_id)}
        report(location, args.json)
        return 0
    if args.command == "cancel":
        runs.cancel(emr, app, args.job_run_id, args.grace_period)
        print(f"cancelling {args.job_run_id}", file=sys.stderr)
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    run(main)
