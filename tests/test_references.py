"""The repository's citations stay honest.

* every benchmark record a README or model card cites exists in ``benchmarks/results/``,
  and every record kept in git is cited somewhere (``benchmarks/README.md``, "Results
  kept in git");
* every repository path the references page and the model cards name exists;
* nothing cites the team's working folders outside the repository (the papers and the
  reconstruction notes are cited through ``docs/``);
* ``CITATION.cff`` agrees with ``pyproject.toml`` (version, licence).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: Documents whose citations are checked.
CITING = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md",
                 ROOT / "benchmarks" / "suites" / "README.md",
                 *(ROOT / "models").glob("*.md"), *(ROOT / "docs").rglob("*.md")])

#: A benchmark record's file name: ``<script>_<UTC stamp>[<suffix>].<ext>``.
RECORD = re.compile(r"(?<![\w-])([a-z][a-z_]*_\d{8}T\d{4,6}Z[\w.-]*?\.(?:jsonl|json|png|csv))")
#: A path inside the repository, as the documents write them (in backticks).
REPO_PATH = re.compile(r"`((?:recopt|models|tests|benchmarks|docs|instances)/[^`\s]*)`")
#: Paths of the team's folders outside the repository (built so this file does not match).
OUTSIDE = re.compile("|".join([r"\bshared/", r"\bseeds/[\w-]+\.txt", r"(?<!reconstruction/)"
                                r"\bformulations/[\w-]+\.md"]))


def _cited_records() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for doc in CITING:
        for name in RECORD.findall(doc.read_text(encoding="utf-8")):
            out.setdefault(name, []).append(str(doc.relative_to(ROOT)))
    return out


def _tracked(path: Path) -> list[str] | None:
    """Files of ``path`` in git (relative to it), or None outside a git checkout."""
    if shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return [str(Path(f).relative_to(path.relative_to(ROOT))) for f in done.stdout.split()]


def test_every_cited_benchmark_record_exists():
    cited = _cited_records()
    assert cited, "no record cited at all: the pattern no longer matches the READMEs"
    missing = {name: docs for name, docs in cited.items() if not (RESULTS / name).is_file()}
    assert missing == {}, f"cited but not in benchmarks/results: {missing}"


def test_every_record_kept_in_git_is_cited():
    tracked = _tracked(RESULTS)
    if tracked is None:  # not a git checkout (an sdist): what is there is what was shipped
        tracked = [str(p.relative_to(RESULTS)) for p in RESULTS.rglob("*") if p.is_file()]
    cited = _cited_records()
    uncited = sorted(f for f in tracked if f not in cited)
    assert uncited == [], (f"records in git that no README or card cites (cite them or "
                           f"`git rm` them): {uncited}")


def test_repository_paths_in_references_and_cards_exist():
    missing = []
    for doc in CITING:
        for raw in REPO_PATH.findall(doc.read_text(encoding="utf-8")):
            path = raw.rstrip(".,:;)")
            if "<" in path or "{" in path:  # a placeholder such as results/lp_<stamp>.jsonl
                continue
            hits = list(ROOT.glob(path)) if "*" in path else [ROOT / path]
            if not any(p.exists() for p in hits):
                missing.append(f"{doc.relative_to(ROOT)}: {raw}")
    assert missing == [], "\n".join(missing)


def test_nothing_cites_folders_outside_the_repository():
    files = [p for p in ROOT.rglob("*")
             if p.suffix in (".md", ".py", ".toml", ".cff", ".txt") and p.is_file()
             and not any(part.startswith(".") or part.endswith(".egg-info")
                         for part in p.relative_to(ROOT).parts)]
    offenders = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
                 for p in files if p != Path(__file__).resolve()
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if OUTSIDE.search(line)]
    assert offenders == [], "\n".join(offenders)


def test_citation_cff_agrees_with_pyproject():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == project["version"]
    assert cff["license"] == project["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    dois = {r.get("doi") for r in cff["references"]}
    assert {"10.1109/ACCESS.2022.3191804", "10.1016/j.apenergy.2021.118484"} <= dois
    refs = (ROOT / "docs" / "references.md").read_text(encoding="utf-8")
    assert all(doi in refs for doi in dois if doi), "a DOI of CITATION.cff is not in the page"


@pytest.mark.parametrize("doc", [p for p in CITING if p.parent.name == "models"],
                         ids=lambda p: p.name)
def test_each_model_card_points_to_the_references(doc):
    text = doc.read_text(encoding="utf-8")
    assert "docs/references.md" in text or "docs/reconstruction/" in text, doc.name
