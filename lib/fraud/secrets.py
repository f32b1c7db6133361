"""Secrets by reference: the only place a password is read, from AWS Secrets Manager."""

import json

from fraud.cli import UserError


def secret_password(secret_arn: str) -> str:
    """The ``password`` field of a Secrets Manager secret (RDS-managed secrets use this layout)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
    except (BotoCoreError, ClientError) as err:
        raise UserError(f"cannot read secret {secret_arn}: {err}") from None
    try:
        return json.loads(value)["password"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"secret {secret_arn} holds no JSON 'password' field") from None
