"""Terraform on this machine: the filesystem mirror of the hashicorp/aws provider (no registry is
reachable here; ``terraform init -plugin-dir=<mirror>`` installs from it). Used by the provider
tests (tests/test_terraform_provider.py) and the emulated deploy (scripts/aws_sim)."""

from __future__ import annotations

import os
from pathlib import Path

PROVIDER = "terraform-provider-aws_*"
# Where a mirror is looked for: FRAUD_TF_PLUGIN_DIR first, then the usual places.
MIRROR_CANDIDATES = ["/opt", "/usr/local/share", "/usr/local/lib", "/usr/share", str(Path.home() / ".terraform.d"),
                     str(Path.home() / ".local" / "share" / "terraform")]


def provider_mirror() -> Path | None:
    """The folder to pass as ``-plugin-dir``: the one holding ``registry.terraform.io``."""
    roots = [os.environ["FRAUD_TF_PLUGIN_DIR"]] if os.environ.get("FRAUD_TF_PLUGIN_DIR") else MIRROR_CANDIDATES
    for root in roots:
        for depth in ("", "*/", "*/*/"):
            for binary in sorted(Path(root).glob(f"{depth}registry.terraform.io/hashicorp/aws/*/*/{PROVIDER}")):
                return binary.parents[5]
    return None
