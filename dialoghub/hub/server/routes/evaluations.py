"""Evaluation results: a benchmark dataset's leaderboard (`get_dataset_leaderboard`); a model's results
(`model_info(expand=["evalResults"])`) are part of the repo info in `repos`."""

from fastapi import APIRouter, Request

from dialoghub.hub.server.dependencies import LOCAL_USER, RepoRef, Settings, has_valid_token, open_readable
from dialoghub.hub.server.evaluations import leaderboard_json, read_benchmark
from dialoghub.hub.server.validation import validate_repo_id

router = APIRouter()


@router.get("/api/datasets/{namespace}/{name}/leaderboard")
def dataset_leaderboard(
    request: Request,
    settings: Settings,
    namespace: str,
    name: str,
    base_model: bool = True,
    task_id: str | None = None,
):
    """`base_model` is what `get_dataset_leaderboard(base_model_only=...)` sends; `task_id` (this Hub's own) picks a
    task of the benchmark other than its first."""
    ref = RepoRef("dataset", validate_repo_id(namespace, name))
    with open_readable(request, ref) as repo:
        benchmark = read_benchmark(settings.storage, repo, ref.id)
    return leaderboard_json(
        settings.storage, ref.id, benchmark, task_id, base_model, has_valid_token(request), LOCAL_USER
    )
