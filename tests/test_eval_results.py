"""Evaluation results the Hub's way, against the real embedded Hub and through the unmodified client: the benchmark's
`eval.yaml`, `.eval_results` in two tiny adapters' repos, `get_dataset_leaderboard`, `model_info(expand=
["evalResults"])`, a `--submit` run shown with its pull request number until the maintainer's re-run verifies and
merges it, and every copy of every number agreeing."""

import dataclasses
import importlib.util
import types
import uuid

import pytest
import requests
import yaml
from huggingface_hub import CommitOperationAdd, EvalResultEntry, HfApi, ModelCard, ModelCardData, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.repocard_data import model_index_to_eval_results

from dialoghub.core.paths import REPO_ROOT
from dialoghub.evaluation import benchmark, comparisons, leaderboard, results, submissions
from dialoghub.evaluation.run import evaluate
from dialoghub.metrics import paired
from evaluation import leaderboard as leaderboard_cli
from tests.test_leaderboard import common, lora_adapter, publish_tiny_world
from tests.test_metrics_models import bert_tokenizer, tiny_sentence_transformer  # noqa: F401 (fixtures)

TASK = "tweetsumm-abstractive"


@pytest.fixture(scope="module")
def bench(hub, tmp_path_factory, tiny_sentence_transformer):  # noqa: F811
    """A benchmark dataset (tag v1.0, then its eval.yaml), a base model, an embedder and two adapters whose cards
    declare their base model, as trained adapters' cards do."""
    api = HfApi(endpoint=hub.endpoint)
    suffix = uuid.uuid4().hex[:8]
    world = types.SimpleNamespace(
        api=api,
        base=f"tests/er-base-{suffix}",
        dataset=f"tests/er-tweetsumm-{suffix}",
        embedder=f"tests/er-embedder-{suffix}",
        adapters=[f"tests/er-adapter-a-{suffix}", f"tests/er-adapter-b-{suffix}"],
        results=f"tests/er-results-{suffix}",
    )
    publish_tiny_world(api, world, tmp_path_factory, tiny_sentence_transformer)
    for seed, adapter in enumerate(world.adapters):
        api.create_repo(adapter)
        card_data = ModelCardData(model_name=adapter.split("/")[-1], base_model=world.base, library_name="peft")
        ModelCard.from_template(card_data).push_to_hub(adapter)
        folder = lora_adapter(world.base, tmp_path_factory.mktemp(f"adapter-{seed}"), seed)
        api.upload_folder(repo_id=adapter, folder_path=folder, allow_patterns=["adapter_*"])
        api.create_tag(adapter, tag="v1.0")
    world.config = lambda **overrides: common(world, **overrides)  # `common` reads .dataset and .embedder
    return world


def benchmark_values(record: dict) -> dict[str, float]:
    """Benchmark task id -> value of every result metric the record has."""
    task = results.get_task(record["task"])
    values = {benchmark.benchmark_task_id(task, metric): benchmark.recorded_value(record, metric)
              for metric in benchmark.result_metrics(task)}  # fmt: skip
    return {task_id: value for task_id, value in values.items() if value is not None}


def test_eval_yaml_makes_the_dataset_a_benchmark(bench):
    assert benchmark.publish_benchmark(bench.dataset) is not None
    assert benchmark.publish_benchmark(bench.dataset) is None  # already there
    with open(hf_hub_download(bench.dataset, "eval.yaml", repo_type="dataset"), encoding="utf-8") as file:
        spec = yaml.safe_load(file)
    assert spec["evaluation_framework"] == "inspect-ai"
    task_ids = [task["id"] for task in spec["tasks"]]
    assert task_ids[:2] == [TASK, "synthetic-dialogue"]  # the headline leaderboards first
    assert f"{TASK}/rouge1" in task_ids and f"{TASK}/rougeL" not in task_ids
    assert {task["split"] for task in spec["tasks"]} == {"test"}
    assert bench.dataset in {info.id for info in bench.api.list_datasets(benchmark=True)}
    # The tag the evaluations pin still names the data alone.
    assert "eval.yaml" not in bench.api.list_repo_files(bench.dataset, repo_type="dataset", revision="v1.0")


def test_two_adapters_ranked_a_submission_verified_and_every_number_agrees(bench, capsys):
    api = bench.api
    if not benchmark.has_benchmark(bench.dataset):
        benchmark.publish_benchmark(bench.dataset)
    # The base model's zero-shot row: the parent of the adapters' paired comparisons.
    zero_shot = evaluate(bench.config(model=f"{bench.base}@v1.0"))
    leaderboard.push(zero_shot, bench.results)
    first_adapter, second_adapter = bench.adapters

    # Adapter A: evaluated and written directly (the pipeline's --update_card).
    evaluation = evaluate(bench.config(adapter=f"{first_adapter}@v1.0"))
    leaderboard.push(evaluation, bench.results, update_card=True)
    record_a = evaluation.record
    card = ModelCard.load(first_adapter)
    assert f"## {comparisons.SECTION_HEADING}" in card.text and "paired-bootstrap" in card.text
    # The paired delta of a mean metric is the difference of the two rows' values, inside its own interval.
    deltas = paired.paired_deltas(evaluation.details, zero_shot.details, ["rougeL", "rouge1", "chrf"], 100, 0)
    assert [delta.metric for delta in deltas] == ["rougeL", "rouge1"]  # corpus chrF has no per-dialog scores
    for delta in deltas:
        difference = record_a["metrics"][delta.metric]["value"] - zero_shot.record["metrics"][delta.metric]["value"]
        assert delta.delta == pytest.approx(difference) and delta.ci_low <= delta.delta <= delta.ci_high
        assert (
            delta.n_pairs == 6
            and f"| {results.get_task(TASK).label(delta.metric)} | {delta.delta:+.2f} |" in card.text
        )

    # Adapter B: submitted as pull requests from the CLI.
    flags = ["--dataset", f"{bench.dataset}@v1.0", "--embedding_model", bench.embedder, "--n_bootstrap", "100",
             "--max_new_tokens", "12", "--batch_size", "4",
             "--results_repo", bench.results, "--progress", "false"]  # fmt: skip
    submit = ["--adapter", f"{second_adapter}@v1.0", "--submit", "true"]
    assert leaderboard_cli.main(["eval", *submit, *flags]) == 0
    printed = capsys.readouterr().out
    assert f"submitted: {second_adapter} pull request #" in printed
    (model_pr,) = [d.num for d in api.get_repo_discussions(second_adapter) if d.is_pull_request]
    (results_pr,) = [d.num for d in api.get_repo_discussions(bench.results, repo_type="dataset") if d.is_pull_request]
    assert f"#{model_pr} (.eval_results/{TASK}.yaml)" in printed and f"pull request #{results_pr}" in printed
    assert ".eval_results/tweetsumm-abstractive.yaml" not in api.list_repo_files(second_adapter)  # not merged yet

    # The adapters declare a base model: the Hub's default view leaves them out, base_model_only=False ranks them.
    assert api.get_dataset_leaderboard(bench.dataset) == []
    board = api.get_dataset_leaderboard(bench.dataset, base_model_only=False)
    assert [entry.rank for entry in board] == [1, 2]
    assert sorted(entry.model_id for entry in board) == sorted(bench.adapters)
    assert [entry.value for entry in board] == sorted((entry.value for entry in board), reverse=True)
    by_model = {entry.model_id: entry for entry in board}
    assert by_model[first_adapter].value == record_a["metrics"]["rougeL"]["value"]
    assert (by_model[first_adapter].pull_request, by_model[first_adapter].verified) == (None, False)
    assert (by_model[second_adapter].pull_request, by_model[second_adapter].verified) == (model_pr, False)
    assert by_model[second_adapter].author.name == "tests" and by_model[first_adapter].source["url"]

    # model_info(expand=["evalResults"]) parses into EvalResultEntry objects, the open PR's among them.
    info = api.model_info(second_adapter, expand=["evalResults"])
    assert info.eval_results and all(isinstance(entry, EvalResultEntry) for entry in info.eval_results)
    assert {entry.task_id for entry in info.eval_results} >= {TASK, f"{TASK}/rouge1"}
    (listed,) = api.list_models(search=second_adapter, expand=["evalResults"])
    assert listed.eval_results == info.eval_results and listed.sha is None  # only what was asked for

    # The maintainer re-runs it from the recorded revisions: it reproduces, both PRs are merged, the result verified.
    assert leaderboard_cli.main(["verify", "--repo", second_adapter, "--pr", str(model_pr)]) == 0
    assert "Verification: reproduced within 0.5 points." in capsys.readouterr().out
    assert api.get_discussion_details(second_adapter, model_pr).status == "merged"
    assert api.get_discussion_details(bench.results, results_pr, repo_type="dataset").status == "merged"
    board = api.get_dataset_leaderboard(bench.dataset, base_model_only=False)
    by_model = {entry.model_id: entry for entry in board}
    assert (by_model[second_adapter].pull_request, by_model[second_adapter].verified) == (None, True)
    assert by_model[first_adapter].verified is False
    card_b = ModelCard.load(second_adapter).text  # merged: its comparison with the base model
    assert f"Against **{bench.base}@v1.0" in card_b and "Against **" + first_adapter not in card_b

    # A verify token copied from another model's verification vouches for nothing: it names B's file and numbers.
    token = next(entry.verify_token for entry in api.model_info(second_adapter, expand=["evalResults"]).eval_results)
    assert token.startswith(f"datasets/{bench.results}/blob/")
    entries_a = benchmark.read_eval_results(first_adapter, f".eval_results/{TASK}.yaml")
    forged = [dataclasses.replace(entry, verify_token=token) for entry in entries_a]
    api.upload_file(
        path_or_fileobj=benchmark.eval_results_bytes(forged), path_in_repo=f".eval_results/{TASK}.yaml",
        repo_id=first_adapter, commit_message="Borrowed token",
    )  # fmt: skip
    by_model = {entry.model_id: entry for entry in api.get_dataset_leaderboard(bench.dataset, base_model_only=False)}
    assert by_model[first_adapter].verified is False and by_model[second_adapter].verified is True

    # The base model declares no base model of its own: once it carries results, the Hub's default view ranks it.
    submission = leaderboard.submit(zero_shot, bench.results)
    (shown,) = api.get_dataset_leaderboard(bench.dataset)
    assert (shown.model_id, shown.pull_request, shown.verified) == (bench.base, submission.model_pr, False)
    assert submissions.verify(bench.base, submission.model_pr).verified
    (shown,) = api.get_dataset_leaderboard(bench.dataset, base_model_only=True)
    assert (shown.model_id, shown.pull_request, shown.verified) == (bench.base, None, True)
    assert shown.value == zero_shot.record["metrics"]["rougeL"]["value"]

    # Every copy of every number agrees: card model-index, .eval_results, results JSON and the leaderboard.
    records, _ = results.load_records(bench.results)
    for adapter in bench.adapters:
        (record,) = [r for r in records if r["system"].get("adapter_id") == adapter]
        expected = benchmark_values(record)
        entries = api.model_info(adapter, expand=["evalResults"]).eval_results
        assert {entry.task_id: entry.value for entry in entries} == expected
        assert {entry.dataset_revision for entry in entries} == {record["dataset"]["sha"]}
        assert all(record["created_at"] == entry.date and results.record_paths(record)[0] in entry.source_url
                   for entry in entries)  # fmt: skip
        _, model_index = model_index_to_eval_results(ModelCard.load(adapter).data.to_dict()["model-index"])
        task = results.get_task(record["task"])
        assert {(r.metric_type, r.metric_value) for r in model_index} == {
            (metric, record["metrics"][metric]["value"]) for metric in task.leaderboard_metrics
        }
        assert {f"{TASK}/toxicity_mean", f"{TASK}/toxic_fraction", f"{TASK}/chrf", TASK} <= set(expected)
        for task_id, value in expected.items():
            ranked = benchmark.dataset_leaderboard(bench.dataset, None if task_id == TASK else task_id, api=api)
            assert {entry.model_id: entry.value for entry in ranked}[adapter] == value

    # `leaderboard show` ranks from the Hub's leaderboard, in its order, with the record details.
    assert leaderboard_cli.main(["show", "--results_repo", bench.results, "--dataset", bench.dataset]) == 0
    markdown = capsys.readouterr().out
    positions = [markdown.index(f"{entry.model_id}@v1.0") for entry in board]
    assert positions == sorted(positions)
    assert "· verified" in markdown and "· merged" in markdown
    assert f"| {bench.base}@v1.0" in markdown
    by_rouge1, _ = leaderboard.render_leaderboard(bench.results, dataset=bench.dataset, sort_by="rouge1")
    assert "ROUGE-1" in by_rouge1


def test_a_submission_that_does_not_reproduce_stays_open(bench, tmp_path):
    api = bench.api
    if not benchmark.has_benchmark(bench.dataset):
        benchmark.publish_benchmark(bench.dataset)
    adapter = f"{bench.adapters[0]}-tampered"  # its own repo: the other tests rank the bench's two adapters
    api.create_repo(adapter)
    api.upload_folder(repo_id=adapter, folder_path=lora_adapter(bench.base, tmp_path / "adapter", seed=2))
    evaluation = evaluate(bench.config(adapter=adapter, embedding_model=None))
    submission = leaderboard.submit(evaluation, bench.results + "-tampered")
    revision = f"refs/pr/{submission.model_pr}"
    entries = benchmark.read_eval_results(submission.model_repo, submission.eval_results_file, revision=revision)
    inflated = [dataclasses.replace(entry, value=entry.value + 5) for entry in entries]
    api.create_commit(
        submission.model_repo,
        [CommitOperationAdd(submission.eval_results_file, benchmark.eval_results_bytes(inflated))],
        commit_message="Better numbers",
        revision=revision,
    )
    verification = submissions.verify(submission.model_repo, submission.model_pr)
    assert not verification.verified
    assert {round(row["difference"], 6) for row in verification.comparisons} == {-5.0}
    details = api.get_discussion_details(submission.model_repo, submission.model_pr)
    assert details.status == "open" and "NOT reproduced" in details.events[-1].content
    board = api.get_dataset_leaderboard(bench.dataset, base_model_only=False)
    (shown,) = [entry for entry in board if entry.pull_request == submission.model_pr]
    assert shown.verified is False


def test_bad_requests_get_4xx(bench, hub):
    api = bench.api
    with pytest.raises(HfHubHTTPError) as error:
        api.get_dataset_leaderboard(f"{bench.base}-not-a-dataset")
    assert error.value.response.status_code in (401, 404)
    plain = f"tests/er-plain-{uuid.uuid4().hex[:8]}"
    api.create_repo(plain, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="notes.txt", repo_id=plain, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as error:
        api.get_dataset_leaderboard(plain)
    assert error.value.response.status_code == 404 and "no eval.yaml" in str(error.value)
    api.upload_file(path_or_fileobj=b"name: [unclosed", path_in_repo="eval.yaml", repo_id=plain, repo_type="dataset")
    leaderboard_url = f"{hub.endpoint}/api/datasets/{plain}/leaderboard"
    assert requests.get(leaderboard_url, timeout=30).status_code == 422
    if not benchmark.has_benchmark(bench.dataset):
        benchmark.publish_benchmark(bench.dataset)
    url = f"{hub.endpoint}/api/datasets/{bench.dataset}/leaderboard"
    assert requests.get(url, params={"task_id": "nope"}, timeout=30).status_code == 400
    assert requests.get(url, params={"base_model": "perhaps"}, timeout=30).status_code == 400
    model_url = f"{hub.endpoint}/api/models/{bench.base}"
    assert requests.get(model_url, params={"expand": "bogus"}, timeout=30).status_code == 400
    # A results file that does not parse is reported as such, and the client skips it.
    broken = f"tests/er-broken-{uuid.uuid4().hex[:8]}"
    api.create_repo(broken)
    api.upload_file(path_or_fileobj=b"- dataset: {id: x}\n", path_in_repo=".eval_results/x.yaml", repo_id=broken)
    raw = requests.get(f"{hub.endpoint}/api/models/{broken}", params={"expand": "evalResults"}, timeout=30).json()
    assert raw["evalResults"][0]["filename"] == ".eval_results/x.yaml" and "error" in raw["evalResults"][0]
    assert api.model_info(broken, expand=["evalResults"]).eval_results == []


def ranked_adapters(bench) -> list:
    """The Hub's ranking of the bench's adapters, evaluating them first if the other tests have not."""
    if not benchmark.has_benchmark(bench.dataset):
        benchmark.publish_benchmark(bench.dataset)
    board = bench.api.get_dataset_leaderboard(bench.dataset, base_model_only=False)
    if not {entry.model_id for entry in board} >= set(bench.adapters):
        for adapter in bench.adapters:
            leaderboard.push(evaluate(bench.config(adapter=f"{adapter}@v1.0")), bench.results, update_card=True)
        board = bench.api.get_dataset_leaderboard(bench.dataset, base_model_only=False)
    return [entry for entry in board if entry.model_id in bench.adapters and entry.pull_request is None]


def test_the_space_tab_ranks_as_the_hub_and_sorts_and_filters(bench):
    from dialoghub.demo.app import leaderboard_view

    order = [entry.model_id for entry in ranked_adapters(bench)]
    markdown, chart = leaderboard_view(bench.results, bench.dataset)
    positions = [markdown.index(f"| {model_id}@v1.0") for model_id in order]
    assert positions == sorted(positions) and chart.endswith(".png")
    by_chrf, _ = leaderboard_view(bench.results, bench.dataset, sort_by="chrf")
    records, _ = results.load_records(bench.results)
    chrf = {r["system"]["adapter_id"]: r["metrics"]["chrf"]["value"] for r in records if r["system"].get("adapter_id")}
    by_value = sorted(order, key=lambda model_id: -chrf[model_id])
    positions = [by_chrf.index(f"| {model_id}@v1.0") for model_id in by_value]
    assert positions == sorted(positions)
    other_task, _ = leaderboard_view(bench.results, bench.dataset, task="synthetic-dialogue")
    assert bench.adapters[0] not in other_task


def test_the_space_shows_the_hubs_order_in_headless_chromium(bench, tmp_path):
    from tests.browser import require_browser
    from tests.test_demo_browser import demo_in_chromium

    require_browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from dialoghub.demo.app import DemoConfig, build_demo

    order = [entry.model_id for entry in ranked_adapters(bench)]
    config = DemoConfig(
        base_model=bench.base, summarizer_adapter=None, generator_adapter=None, dataset=bench.dataset,
        results_repo=bench.results, max_new_tokens=8,
    )  # fmt: skip
    with demo_in_chromium(build_demo(config), tmp_path / "chromium-profile") as browser:
        wait = WebDriverWait(browser, 120)
        wait.until(lambda _: [tab for tab in browser.find_elements(By.CSS_SELECTOR, "button[role='tab']")
                              if tab.text == "Leaderboard"])  # fmt: skip
        [tab for tab in browser.find_elements(By.CSS_SELECTOR, "button[role='tab']") if tab.text == "Leaderboard"][
            0
        ].click()
        table = browser.find_element(By.CSS_SELECTOR, "#leaderboard-table")
        wait.until(lambda _: all(model_id in table.text for model_id in order))
        shown = [table.text.index(model_id) for model_id in order]
        assert shown == sorted(shown), table.text
        assert browser.find_elements(By.CSS_SELECTOR, "#leaderboard-chart img")
        assert browser.find_elements(By.CSS_SELECTOR, "#leaderboard-sort") and browser.find_elements(
            By.CSS_SELECTOR, "#leaderboard-task"
        )
        assert browser.save_screenshot(str(tmp_path / "leaderboard.png"))


def test_the_pipeline_check_script_agrees_with_the_hub(bench, capsys):
    """`scripts/check_leaderboard.py`, which the lead runs after `make pipeline`, on this test benchmark."""
    spec = importlib.util.spec_from_file_location("check_leaderboard", REPO_ROOT / "scripts" / "check_leaderboard.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    order = [entry.model_id for entry in ranked_adapters(bench)]
    arguments = ["--dataset", bench.dataset, "--results_repo", bench.results]
    board = bench.api.get_dataset_leaderboard(bench.dataset, base_model_only=False)
    for edited in [entry for entry in board if entry.model_id.endswith("-tampered") and entry.pull_request]:
        # The open PR whose numbers were raised after its record (see above) is caught; closing it removes it.
        assert script.main(arguments) == 1
        assert f"{edited.model_id}: the Hub's value {edited.value} is not its record's" in capsys.readouterr().err
        bench.api.change_discussion_status(edited.model_id, edited.pull_request, "closed", comment="Disputed")
    assert script.main(arguments) == 0
    printed = capsys.readouterr().out
    assert "leaderboard show: same order" in printed
    markdown, _ = leaderboard.render_leaderboard(bench.results, dataset=bench.dataset)
    assert script.in_order(script.positions(markdown, order))
    assert not script.in_order(script.positions("| b@v1 |\n| a@v1 |", ["a", "b"]))


def test_the_pipeline_check_script_sees_the_same_order_in_the_space(bench, monkeypatch, capsys):
    """`scripts/check_leaderboard.py --browser`: the Space, configured as `make demo` configures it (environment
    variables), in headless Chromium."""
    from tests.browser import require_browser

    require_browser()
    spec = importlib.util.spec_from_file_location("check_leaderboard", REPO_ROOT / "scripts" / "check_leaderboard.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ranked_adapters(bench)
    for name, value in (("base_model", bench.base), ("summarizer_adapter", "none"), ("generator_adapter", "none"),
                        ("dataset", bench.dataset), ("results_repo", bench.results)):  # fmt: skip
        monkeypatch.setenv(f"DIALOGHUB_DEMO_{name.upper()}", value)
    board = bench.api.get_dataset_leaderboard(bench.dataset, base_model_only=False)
    for edited in [entry for entry in board if entry.model_id.endswith("-tampered") and entry.pull_request]:
        bench.api.change_discussion_status(edited.model_id, edited.pull_request, "closed", comment="Disputed")
    assert script.main(["--dataset", bench.dataset, "--results_repo", bench.results, "--browser"]) == 0
    assert "Space leaderboard tab: same order" in capsys.readouterr().out
