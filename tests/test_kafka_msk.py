"""MSK IAM for the simulator's librdkafka clients: region, settings and the OAUTHBEARER token.

No AWS endpoint is reached: a token is a SigV4-presigned URL signed locally with
whatever credentials the chain finds (fake ones here), and one test replaces the
signer itself.
"""

import base64
import time
from urllib.parse import parse_qs, urlparse

import pytest

from fraud.cli import UserError
from fraud.config import load_config
from fraud.kafka import client_settings, msk_iam_token_callback, msk_region

from conftest import ROOT


@pytest.mark.parametrize(
    "servers, region",
    [
        ("b-1.fraud.abc123.c2.kafka.eu-west-1.amazonaws.com:9098", "eu-west-1"),
        ("b-2.x.y.c3.kafka.us-gov-west-1.amazonaws.com:9098,b-1.x.y.c3.kafka.us-gov-west-1.amazonaws.com:9098",
         "us-gov-west-1"),
        ("boot-abc.c1.kafka-serverless.ap-southeast-2.amazonaws.com:9098", "ap-southeast-2"),
    ],
)
def test_region_comes_from_the_broker_host_names(servers, region):
    assert msk_region(servers, environ={"AWS_REGION": "sa-east-1"}) == region


def test_region_falls_back_to_the_environment_then_fails_in_one_line():
    assert msk_region("broker.internal:9098", environ={"AWS_DEFAULT_REGION": "eu-central-1"}) == "eu-central-1"
    with pytest.raises(UserError, match="set AWS_REGION") as err:
        msk_region("broker.internal:9098", environ={})
    assert "\n" not in str(err.value)


def test_aws_config_maps_msk_iam_to_oauthbearer_with_a_callback():
    settings = client_settings(load_config(ROOT / "conf" / "aws.yaml", environ={}))
    assert settings["security.protocol"] == "SASL_SSL"
    assert settings["sasl.mechanism"] == "OAUTHBEARER"
    assert callable(settings["oauth_cb"])


def test_local_config_has_no_token_callback():
    config = load_config(ROOT / "conf" / "local.yaml", environ={"FRAUD_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    settings = client_settings(config)
    assert settings == {"bootstrap.servers": "127.0.0.1:1", "security.protocol": "PLAINTEXT"}


def test_callback_returns_the_signers_token_and_expiry_in_seconds(monkeypatch):
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    calls = []

    def fake_generate(region, aws_credentials_provider):
        calls.append(region)
        return "signed-token", 1_700_000_900_000

    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token_from_credentials_provider", fake_generate)
    oauth_cb = msk_iam_token_callback("eu-west-1")
    assert oauth_cb("ignored librdkafka sasl.oauthbearer.config") == ("signed-token", 1_700_000_900.0)
    assert calls == ["eu-west-1"]


def test_real_signer_presigns_a_kafka_connect_request_with_the_callers_credentials(monkeypatch):
    """The signer works offline: it only signs. Fake credentials, no metadata service."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKE0000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-not-used-anywhere")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)

    token, expiry_s = msk_iam_token_callback("eu-west-1")(None)

    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.netloc == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAFAKEFAKEFAKE0000/")
    assert "/eu-west-1/kafka-cluster/aws4_request" in query["X-Amz-Credential"][0]
    assert "fake-secret" not in token
    assert time.time() < expiry_s <= time.time() + 3600


def test_missing_credentials_end_in_one_line(monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    with pytest.raises(UserError, match="no AWS credentials found"):
        msk_iam_token_callback("eu-west-1")(None)
