"""The documentation: a README a newcomer reads in minutes, pages that exist where they are linked,
and a benchmarks page that is what the results files say."""

import re

from benchmarks.page import PAGE, render

from conftest import ROOT

DOCS = ["architecture", "operations", "model", "data-quality", "reliability", "deploy-aws", "benchmarks", "design"]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_readme_is_short_and_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for page in DOCS:
        assert (ROOT / "docs" / f"{page}.md").exists(), page
        assert f"docs/{page}.md" in readme, page


def test_every_relative_link_leads_to_a_file():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, _anchor in LINK.findall(path.read_text()):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def test_benchmarks_page_is_generated_from_the_results():
    assert PAGE.read_text() == render(), "docs/benchmarks.md is stale: run make benchmarks-page"
