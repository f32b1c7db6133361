"""terraform/ with the real ``hashicorp/aws`` provider, offline: ``terraform validate`` and ``terraform
test`` (mock providers: ``terraform/mocks``) of every module and of the environment, and a test that
trips every variable validation and precondition (``expect_failures``).

The provider comes from a filesystem mirror (the setup cannot install it: no registry is reachable);
where terraform or the mirror is missing, the tests skip with one line saying which.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT
from emr.terraform import MIRROR_CANDIDATES, PROVIDER, provider_mirror
from test_terraform import ROOTS, TERRAFORM, blocks

TERRAFORM_BIN = shutil.which("terraform")
MIRROR = provider_mirror()
# The tests' override_resource blocks with override_during came with Terraform 1.11.
MINIMUM = (1, 11)


def terraform_version() -> tuple[int, ...]:
    if TERRAFORM_BIN is None:
        return ()
    out = subprocess.run([TERRAFORM_BIN, "version", "-json"], capture_output=True, text=True,
                         env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}).stdout
    return tuple(int(p) for p in json.loads(out)["terraform_version"].split(".")[:2])


pytestmark = [
    pytest.mark.skipif(TERRAFORM_BIN is None, reason="no terraform binary on this machine"),
    pytest.mark.skipif(TERRAFORM_BIN is not None and terraform_version() < MINIMUM,
                       reason=f"terraform older than {'.'.join(map(str, MINIMUM))} (the tests' override_during)"),
    pytest.mark.skipif(MIRROR is None, reason=f"no {PROVIDER} mirror under {', '.join(MIRROR_CANDIDATES)}"),
]
# No user CLI config, no checkpoint calls home: the runs see the mirror and nothing else.
TF_ENV = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}


def terraform(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TERRAFORM_BIN, *args, "-no-color"], cwd=folder, env=TF_ENV, capture_output=True,
                          text=True, timeout=600)


def check_root(folder: Path) -> dict[str, subprocess.CompletedProcess]:
    init = terraform(folder, "init", "-backend=false", f"-plugin-dir={MIRROR}", "-input=false")
    if init.returncode:
        return {"init": init}
    return {"init": init, "validate": terraform(folder, "validate"), "test": terraform(folder, "test")}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict[str, subprocess.CompletedProcess]]:
    """Every root initialised against the mirror, validated and tested, in a copy of terraform/ (the
    runs' .terraform folders and lock files stay out of the checkout); two at a time."""
    copy = tmp_path_factory.mktemp("terraform") / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    folders = {root.name: copy / root.relative_to(TERRAFORM) for root in ROOTS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(folders, pool.map(check_root, folders.values())))


def _tail(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr)[-3000:]


@pytest.mark.parametrize("root", [r.name for r in ROOTS])
def test_validate_passes_with_the_real_provider(results, root):
    result = results[root]
    assert result["init"].returncode == 0, _tail(result["init"])
    assert result["validate"].returncode == 0, _tail(result["validate"])
    assert "Success! The configuration is valid." in result["validate"].stdout


@pytest.mark.parametrize("root", [r.name for r in ROOTS])
def test_plan_level_tests_pass_against_the_mock_provider(results, root):
    result = results[root]
    assert result["init"].returncode == 0, _tail(result["init"])
    test = result["test"]
    assert test.returncode == 0, _tail(test)
    passed = re.search(r"Success! (\d+) passed, 0 failed", test.stdout)
    assert passed and int(passed.group(1)) >= 1, _tail(test)


def test_every_validation_and_precondition_has_a_test_that_trips_it():
    """A ``validation`` of variable V in a root needs ``expect_failures = [var.V]`` in that root's tests;
    a resource's ``precondition`` needs its address there."""
    missing = []
    for root in ROOTS:
        tests = "".join(p.read_text() for p in sorted((root / "tests").glob("*.tftest.hcl")))
        tripped = {m.strip() for group in re.findall(r"expect_failures\s*=\s*\[([^\]]*)\]", tests)
                   for m in group.split(",")}
        for name, body in blocks(root, "variable").items():
            if body.get("validation") and f"var.{name}" not in tripped:
                missing.append(f"{root.name}: var.{name}")
        for address, body in blocks(root, "resource").items():
            if any("precondition" in life for life in body.get("lifecycle", [])) and address not in tripped:
                missing.append(f"{root.name}: {address}")
    assert missing == []


def test_the_mirror_is_found_where_the_machine_keeps_it():
    assert (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir()
    assert ROOT not in MIRROR.parents
