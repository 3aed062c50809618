"""Time from a reviewer's approval to the product being published, against the bare merge and sync.

    .venv/bin/python bench/review.py [--repeat 3] [--scale 0.02] [--keep DIR]

Builds the demo at a small scale in a temporary directory (with its own copy of the dbt project,
so the repo's dbt/ is never touched) with PORTAL_REVIEW=required, then, per repetition, creates
two products as the author ann (both wait in review; untimed setup) and times (a) the reviewer
rita's `review.approve` of the first, end to end, and (b) on the second, the bare work any
approval must do at least: under the project lock, its files in the checkout, `commits.merge`
of its branch into main, `dbt parse`, and a `sync` of the new manifest in one transaction. The
order of (a) and (b) alternates between repetitions to spread drift. Prints the medians, the
ratio approval/bare, and where the approval's time went. The machine may be shared: expect
noise, and read the ratio with the spread next to it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from create import environ_for, spec  # noqa: E402  (bench/create.py: the same product, the same demo)

from portal.auth.access import Principal  # noqa: E402
from portal.creation import commits, review  # noqa: E402
from portal.creation import flow as creation  # noqa: E402
from portal.creation.lifecycle import models_dir  # noqa: E402
from portal.creation.publish.registry import publisher_for  # noqa: E402
from portal.creation.scaffold import write_product  # noqa: E402
from portal.demo.build import build_demo  # noqa: E402
from portal.project.artifacts import Artifacts, find_artifact, load_manifest  # noqa: E402
from portal.project.dbt_runner import project_lock, run_dbt  # noqa: E402
from portal.project.repository import ProjectRepository  # noqa: E402
from portal.project.sync import sync  # noqa: E402
from portal.service import PortalService  # noqa: E402
from portal.settings import Settings  # noqa: E402

AUTHOR = Principal("ann@example.com", kind="oidc", groups=("bench",), role="creator")
REVIEWER = Principal("rita@example.com", kind="oidc", groups=("reviewers",), role="reviewer")
OTHER = "other: checks, lock, reads, files"


def submit(service: PortalService, name: str) -> int:
    """Create `name` as the author; it waits in review. Returns its proposal's id."""
    result = creation.create(service, spec(name), AUTHOR)
    if result.status != "in_review" or result.proposal_id is None:
        raise SystemExit(
            f"{name} is not in review ({result.status}):\n{result.problems}\n{result.log[-3000:]}"
        )
    return result.proposal_id


@contextmanager
def spans(service: PortalService, into: dict[str, float]) -> Iterator[None]:
    """Time, while it lasts, the steps approve calls (each by the name approve looks it up by)."""
    publisher = type(publisher_for(service.settings))
    steps: list[tuple[Any, str, str]] = [
        (review, "stale_reason", "stale check (git diff)"),
        (publisher, "publish_held", "publish_held (audit -> gold)"),
        (commits, "merge", "git merge into main"),
        (ProjectRepository, "push", "git push"),
        (review, "run_dbt", "dbt parse"),
        (review, "_record_approval", "record: proposal, run, sync, events"),
        (service, "reload", "service.reload"),
    ]
    saved = [(owner, attr, getattr(owner, attr), attr in vars(owner)) for owner, attr, _ in steps]
    for (owner, attr, label), (_, _, original, _) in zip(steps, saved, strict=True):

        def timed(*args: Any, _original: Any = original, _label: str = label, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                into[_label] = into.get(_label, 0.0) + time.perf_counter() - started

        setattr(owner, attr, timed)
    try:
        yield
    finally:
        for owner, attr, original, own in saved:
            if own:
                setattr(owner, attr, original)
            else:
                delattr(owner, attr)


def approve(service: PortalService, proposal_id: int, into: dict[str, float]) -> float:
    """(a) The reviewer's approval, end to end; `into` gets its steps."""
    with spans(service, into):
        started = time.perf_counter()
        decision = review.approve(service, proposal_id, REVIEWER)
        elapsed = time.perf_counter() - started
    if decision.proposal.state != "published":
        raise SystemExit(f"proposal {proposal_id} is {decision.proposal.state}: {decision.message}")
    into[OTHER] = elapsed - sum(into.values())
    return elapsed


def bare(service: PortalService, proposal_id: int) -> float:
    """(b) What any approval must do at least: merge, parse and sync, under the project lock."""
    settings = service.settings
    proposal = review.get(service, proposal_id)
    started = time.perf_counter()
    with project_lock(settings, wait=False):
        repo = commits.repository(settings)
        # The checkout holds the files pinned to the audit schema: the merge needs the proposal's.
        write_product(models_dir(settings), review.proposed_files(repo, service, proposal), overwrite=True)
        committed = commits.Committed(proposal.branch, proposal.commit_sha, proposal.base_sha)
        message = commits.message_for(proposal.action, proposal.product, REVIEWER, "Bare merge (bench).")
        commits.merge(repo, committed, REVIEWER, message=message)
        parse = run_dbt(settings, ["parse"], lock=False)
        if not parse.ok:
            raise SystemExit(f"dbt parse failed:\n{parse.tail()}")
        path = find_artifact(settings.target_dir, "manifest")
        assert path is not None
        with service.sessions.begin() as session:
            artifacts = Artifacts(load_manifest(path), None, None)
            sync(session, artifacts, data_products_path=settings.data_products_path, actor=REVIEWER.user)
    return time.perf_counter() - started


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir, removed)")
    args = parser.parse_args()

    base = args.keep or Path(tempfile.mkdtemp(prefix="asgard-bench-review-"))
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        ROOT / "dbt", base / "dbt", ignore=shutil.ignore_patterns("target", "logs"), dirs_exist_ok=True
    )
    settings = Settings.from_env({**environ_for(base, args.scale), "PORTAL_REVIEW": "required"})
    print(f"Building the demo at scale {args.scale:g} in {base} …", flush=True)
    build_demo(settings, say=lambda _line: None)
    service = PortalService(settings)

    approved: list[float] = []
    bares: list[float] = []
    ratios: list[float] = []
    steps: dict[str, list[float]] = {}
    for index in range(args.repeat):
        first, second = f"dp_bench_review_a_{index}", f"dp_bench_review_b_{index}"
        proposal_a, proposal_b = submit(service, first), submit(service, second)
        into: dict[str, float] = {}
        if index % 2 == 0:
            approved.append(approve(service, proposal_a, into))
            bares.append(bare(service, proposal_b))
        else:
            bares.append(bare(service, proposal_b))
            approved.append(approve(service, proposal_a, into))
        ratios.append(approved[-1] / bares[-1])
        for step, seconds in into.items():
            steps.setdefault(step, []).append(seconds)
        order = "approve first" if index % 2 == 0 else "bare first"
        print(
            f"  {index}: approve {first} {approved[-1]:5.2f} s · bare merge+parse+sync {second} "
            f"{bares[-1]:5.2f} s · {ratios[-1]:.2f}x ({order})",
            flush=True,
        )

    approve_s, bare_s = statistics.median(approved), statistics.median(bares)
    print()
    print(f"approval -> published     (median of {args.repeat}): {spread(approved)}")
    print(f"bare merge + parse + sync (median of {args.repeat}): {spread(bares)}")
    print(
        f"ratio: {approve_s / bare_s:.2f}x (per repetition min {min(ratios):.2f}x, max {max(ratios):.2f}x); "
        f"extra {approve_s - bare_s:+.2f} s"
    )
    print("where the approval's time went (median s):")
    for step, values in sorted(steps.items(), key=lambda item: -statistics.median(item[1])):
        print(f"  {statistics.median(values):5.2f}  {step}")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
