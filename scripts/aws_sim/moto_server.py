"""moto's server on loopback for `make aws-sim`, with four defects of moto 5.2 put right where they
stop an apply that AWS itself accepts (each tells what AWS does):

- S3 PutBucketLogging crashes on a target bucket whose policy has a statement with the string
  principal "*" (the logs bucket's TLS-only Deny), and wants the logging service's Resource to be
  exactly ``bucket/<target prefix>*``: AWS takes any resource pattern that covers the prefix.
- EMR Serverless creates applications in STARTED; AWS creates them in CREATED (and the provider
  waits for CREATED). moto refuses the application type "spark" that AWS (and the provider) take
  for "SPARK".
- EMR Serverless accepts only release labels like emr-7.1.0; AWS also has emr-spark-8.1.0 (the
  EMR 8 names). Such a label is checked with moto's pattern on an equivalent, then kept as given.

- S3 evaluates a bucket policy's statements without their conditions: the buckets' TLS-only Deny
  (``aws:SecureTransport`` false) refuses every request. This server speaks TLS only, so for it
  such a statement never applies, as in S3.

It serves HTTPS with the certificate it is given, as S3 does.

Run with the moto venv's Python: ``.venv-moto/bin/python scripts/aws_sim/moto_server.py PORT CERT KEY``.
"""

import os
import re
import signal
import sys
import threading

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # AWS-managed policies exist, as in AWS

from moto.emrserverless import models as emr_models  # noqa: E402
from moto.s3 import models as s3_models  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _log_permissions_as_aws_reads_them(target_bucket, target_prefix) -> bool:
    """A statement of the target bucket's policy lets the logging service put objects under the prefix."""
    import fnmatch
    import json

    if not target_bucket.policy:
        return False
    wanted = f"arn:{target_bucket.partition}:s3:::{target_bucket.name}/{target_prefix or ''}x"
    for statement in json.loads(target_bucket.policy.decode()).get("Statement", []):
        principal = statement.get("Principal", {})
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        if (s3_models.LOGGING_SERVICE_PRINCIPAL in services and statement.get("Effect") == "Allow"
                and any(a in ("s3:PutObject", "s3:*", "*") for a in _as_list(statement.get("Action", [])))
                and any(fnmatch.fnmatchcase(wanted, r) for r in _as_list(statement.get("Resource", [])))):
            return True
    return False


s3_models.FakeBucket._log_permissions_enabled_policy = staticmethod(_log_permissions_as_aws_reads_them)
def _refuses_plain_http_only(statement: dict) -> bool:
    condition = statement.get("Condition", {})
    return condition.keys() == {"Bool"} and _as_list(condition["Bool"].get("aws:SecureTransport")) == ["false"]


def _get_permission_over_tls(self, action, resource):
    """The bucket policy's verdict for a request over TLS (all this server takes)."""
    import json

    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy.decode())
    statements = [s for s in _as_list(document.get("Statement", [])) if not _refuses_plain_http_only(s)]
    if not statements:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**document, "Statement": statements})).is_action_permitted(action, resource)


s3_models.FakeBucket.get_permission = _get_permission_over_tls
emr_models.APPLICATION_STATUS = "CREATED"
_create_application = emr_models.EMRServerlessBackend.create_application
_EMR8 = re.compile(r"^emr-spark-(\d)\.(\d{1,2})\.(\d+)$")


def _create_application_emr8(self, name, release_label, application_type, *args, **kwargs):
    application = _create_application(self, name, _EMR8.sub(r"emr-\1.\2.0", release_label), application_type.upper(),
                                      *args, **kwargs)
    application.release_label = release_label
    return application


emr_models.EMRServerlessBackend.create_application = _create_application_emr8

if __name__ == "__main__":
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    server = make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=True,
                         request_handler=MotoRequestHandler, ssl_context=(cert, key))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdout = sys.stderr  # the runner reads one line; anything later goes to the log
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
