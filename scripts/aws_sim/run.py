"""`make aws-sim`: the dev environment applied to an emulated AWS (moto on loopback, with the real
hashicorp/aws provider from the machine's filesystem mirror), then the job's release uploaded, a
stream run submitted, watched and cancelled through ``python -m emr``.

What is emulated and what is not is printed at the end, with the time each step took. MSK is not
(moto has no CreateConfiguration): its module is left out and the modules reading its outputs get
the values a cluster would give (scripts/aws_sim/override.tf); nor is CloudTrail's trail (moto
answers the provider's CreateTrail with 404). moto runs no job: the archive uploaded is a stand-in,
and a run's states are moto's (SUCCESS at once, and CANCELLED once cancelled, which AWS would refuse
for a finished run). moto's own defects that stop an apply AWS accepts are put right in
scripts/aws_sim/moto_server.py, each with what AWS does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from emr.terraform import provider_mirror  # noqa: E402
from fraud.cli import UserError, run  # noqa: E402

WORK = ROOT / "var" / "aws-sim"
CERT, KEY = WORK / "moto-cert.pem", WORK / "moto-key.pem"
MOTO_PYTHON = ROOT / ".venv-moto" / "bin" / "python"
# What moto cannot create, and why: left out of the apply (the rest is applied).
NOT_EMULATED = {"module.msk": "moto has no MSK CreateConfiguration",
                "aws_cloudtrail": "moto answers the provider's CreateTrail with 404 (boto3's call passes)"}


class Timer:
    def __init__(self):
        self.steps: list[tuple[str, float]] = []

    def __call__(self, name: str, action):
        started = time.perf_counter()
        result = action()
        self.steps.append((name, time.perf_counter() - started))
        print(f"aws-sim: {name}: {self.steps[-1][1]:.1f} s", flush=True)
        return result


def main(argv: list[str] | None = None) -> int:
    terraform, mirror = shutil.which("terraform"), provider_mirror()
    if terraform is None or mirror is None:
        raise UserError("aws-sim needs terraform and a filesystem mirror of hashicorp/aws (see docs/deploy-aws.md)")
    if not MOTO_PYTHON.exists():
        raise UserError("aws-sim needs moto: run `make setup` (it makes .venv-moto)")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    timer = Timer()
    moto = None
    try:
        moto, endpoint = timer("moto server", start_moto)
        # boto3 and the provider (Go) trust the emulator's certificate, and only it.
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_CA_BUNDLE": str(CERT), "SSL_CERT_FILE": str(CERT),
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
        secret_arn, certificate_arn = timer("OIDC secret and certificate", lambda: prerequisites(env))
        folder = prepare(endpoint.rsplit(":", 1)[1], secret_arn, certificate_arn)

        def tf(*args: str, check: bool = True) -> subprocess.CompletedProcess:
            result = subprocess.run([terraform, *args, "-no-color"], cwd=folder, env=env, capture_output=True, text=True)
            (WORK / "terraform.log").open("a").write(f"$ terraform {' '.join(args)}\n{result.stdout}{result.stderr}\n")
            if check and result.returncode:
                raise UserError(f"terraform {args[0]} failed: {last_error(result)} (all of it: {WORK / 'terraform.log'})")
            return result

        timer("terraform init", lambda: tf("init", f"-plugin-dir={mirror}", "-input=false"))
        planned = timer("terraform plan (the whole environment)", lambda: planned_resources(tf))
        targets = [f"-target={address}" for address in planned if emulated(address)]
        timer(f"terraform apply ({len(targets)} of {len(planned)} resources)",
              lambda: tf("apply", "-auto-approve", "-input=false", "-parallelism=8", *targets))
        # A targeted apply leaves the root outputs out; a refresh-only apply records them.
        tf("apply", "-refresh-only", "-auto-approve", "-input=false")
        created = [line for line in tf("state", "list").stdout.splitlines() if ".data." not in line
                   and not line.startswith("data.")]
        (WORK / "outputs.json").write_text(tf("output", "-json").stdout)
        archive = stand_in_archive()
        release = timer("emr upload", lambda: emr(env, "upload", "--archive", str(archive), "--json"))
        job_run_id = timer("emr submit stream", lambda: emr(env, "submit", "stream", "--archive", str(archive)))
        before = timer("emr status", lambda: emr(env, "status", job_run_id, "--json"))
        timer("emr cancel", lambda: emr(env, "cancel", job_run_id))
        after = emr(env, "status", job_run_id, "--json")
        report(planned, created, release, job_run_id, before, after, timer)
        return 0 if after.get("state") == "CANCELLED" else 1
    finally:
        if moto is not None:
            moto.terminate()
            try:
                moto.wait(timeout=30)
            except subprocess.TimeoutExpired:
                moto.kill()


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto over HTTPS on loopback, with a certificate made for 127.0.0.1 (CERT: clients trust it)."""
    from fraud_devstack.process import free_port

    write_certificate(CERT, KEY)
    port = free_port()
    log = (WORK / "moto.log").open("w")
    moto = subprocess.Popen([str(MOTO_PYTHON), str(ROOT / "scripts" / "aws_sim" / "moto_server.py"), str(port),
                             str(CERT), str(KEY)], stdout=subprocess.PIPE, stderr=log, text=True)
    if moto.stdout.readline().strip() != "ready":
        moto.kill()
        raise UserError(f"moto did not start (see {WORK / 'moto.log'})")
    moto.stdout.close()  # it prints nothing more: its requests go to the log
    return moto, f"https://127.0.0.1:{port}"


def write_certificate(cert: Path, key: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aws-sim")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(private, hashes.SHA256()))
    from fraud.secrets import write_private

    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    write_private(key, private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode())


def prerequisites(env: dict) -> tuple[str, str]:
    """What the environment expects to exist: the OIDC client's secret and the certificate."""
    import boto3

    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    url, bundle = env["AWS_ENDPOINT_URL"], env["AWS_CA_BUNDLE"]
    secret = session.client("secretsmanager", endpoint_url=url, verify=bundle).create_secret(
        Name="fraud-dev-oidc-client", SecretString="stand-in")["ARN"]
    certificate = session.client("acm", endpoint_url=url, verify=bundle).request_certificate(
        DomainName="fraud.example.com")["CertificateArn"]
    return secret, certificate


def prepare(port: str, secret_arn: str, certificate_arn: str) -> Path:
    """A copy of terraform/ with the override file and the variables beside the dev environment."""
    copy = WORK / "terraform"
    shutil.copytree(ROOT / "terraform", copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*",
                                                                            "outputs.json", "*.auto.tfvars*"))
    folder = copy / "environments" / "dev"
    override = (ROOT / "scripts" / "aws_sim" / "override.tf").read_text().replace("PORT", port)
    (folder / "aws_sim_override.tf").write_text(override)
    (folder / "aws_sim.auto.tfvars.json").write_text(json.dumps({
        "dash_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/fraud-dash:sim",
        "dash_certificate_arn": certificate_arn,
        "dash_host_names": ["fraud.example.com"],
        "dash_oidc": {"issuer": "https://login.example.com", "authorization_endpoint": "https://login.example.com/a",
                      "token_endpoint": "https://login.example.com/t", "user_info_endpoint": "https://login.example.com/u",
                      "client_id": "fraud-dash", "client_secret_arn": secret_arn},
        "deletion_protection": False, "force_destroy_buckets": True}))
    return folder


def planned_resources(tf) -> list[str]:
    """The addresses of the resources a plan of the whole environment creates."""
    tf("plan", "-input=false", "-out=full.plan")
    plan = json.loads(tf("show", "-json", "full.plan").stdout)
    return [change["address"] for change in plan["resource_changes"] if "create" in change["change"]["actions"]]


def emulated(address: str) -> bool:
    parts = address.split(".")
    return not any(address.startswith(f"{name}.") or name in parts for name in NOT_EMULATED)


def last_error(result: subprocess.CompletedProcess) -> str:
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors[0] if errors else lines[-1] if lines else "no output")[:400]


def stand_in_archive() -> Path:
    """moto runs no job: a small .tar.gz stands for the venv-pack archive emr/Dockerfile builds."""
    archive = WORK / "fraud_env.tar.gz"
    readme = WORK / "STAND-IN.txt"
    readme.write_text("aws-sim: stands in for the job's environment archive; moto runs no job\n")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(readme, arcname="STAND-IN.txt")
    return archive


def emr(env: dict, *args: str):
    """``python -m emr`` against the emulator: its JSON with ``--json``, else what it printed."""
    command = [sys.executable, "-m", "emr", *args[:1], "--outputs", str(WORK / "outputs.json"), *args[1:]]
    if args[0] in ("upload", "submit"):
        command += ["--config", str(ROOT / "conf" / "aws.yaml")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    (WORK / "emr.log").open("a").write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}\n")
    if result.returncode:
        raise UserError(f"python -m emr {args[0]} failed: {(result.stderr or result.stdout).strip()[-400:]}")
    return json.loads(result.stdout) if "--json" in args else result.stdout.strip()


def report(planned, created, release, job_run_id, before, after, timer) -> None:
    by_module: dict[str, int] = {}
    for address in created:
        module = address.split(".")[1] if address.startswith("module.") else "(root)"
        by_module[module] = by_module.get(module, 0) + 1
    print(f"\naws-sim: {len(created)} of {len(planned)} planned resources created against moto")
    for module, count in sorted(by_module.items()):
        print(f"  module.{module}: {count}")
    for name, why in NOT_EMULATED.items():
        left = sum(1 for address in planned if not emulated(address) and name in address)
        print(f"  {name}: {left} not emulated ({why})")
    print(f"aws-sim: release uploaded ({len(release['jars'])} jars, {len(release['entry_points'])} entry points);"
          f" job run {job_run_id}: {before.get('state')}, cancelled: {after.get('state')}")
    print("aws-sim: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timer.steps))


if __name__ == "__main__":
    run(main)
