"""The task registry: prompts from the prompt module, synthetic-dialogue metrics, and the rows that need no model."""

import pytest

from dialoghub.evaluation.baselines import templated_lead
from dialoghub.evaluation.tasks import (
    HUMAN,
    SYNTHETIC_DIALOGUE,
    TASKS,
    TWEETSUMM_ABSTRACTIVE,
    Scorers,
    distinct_n,
    get_task,
    parse_generated_dialogue,
    reference_row,
)
from dialoghub.metrics import rouge_per_sample, score_summaries
from dialoghub.models import prompts

ROWS = [
    {
        "conversation_id": "c1",
        "dialogue": [
            {"role": "Customer", "text": "My parcel is  late. Can you help?"},
            {"role": "Agent", "text": "Sorry! Please DM us your order number."},
        ],
        "summaries": ["Customer says the parcel is late.  Agent asks for a DM.", "Parcel late; agent wants a DM."],
    },
    {
        "conversation_id": "c2",
        "dialogue": [
            {"role": "Customer", "text": "I was charged twice for my ticket."},
            {"role": "Agent", "text": "We will refund the second charge."},
            {"role": "Customer", "text": "Thanks."},
        ],
        "summaries": ["Customer was charged twice. Agent will refund it."],
    },
]


def test_the_tasks_are_registered_and_unknown_names_are_refused():
    assert set(TASKS) == {"tweetsumm-abstractive", "synthetic-dialogue", "tweetsumm-provocation"}
    for task in TASKS.values():
        assert task.headline_metric == task.leaderboard_metrics[0]
        expected = "org/tweetsumm-provocation" if task.name == "tweetsumm-provocation" else "org/tweetsumm-clean"
        assert task.dataset_id == expected
        assert task.split == "test"
    with pytest.raises(ValueError, match="unknown task 'summaries'"):
        get_task("summaries")


def test_summarization_docs_use_the_prompt_module_and_all_summaries():
    docs = TWEETSUMM_ABSTRACTIVE.docs(ROWS)
    assert [doc.id for doc in docs] == ["c1", "c2"]
    assert docs[0].messages == prompts.summarize_messages(ROWS[0]["dialogue"])
    assert docs[0].references == ["Customer says the parcel is late. Agent asks for a DM.", ROWS[0]["summaries"][1]]
    assert docs[1].input == prompts.render_dialogue(ROWS[1]["dialogue"])


def test_summarization_doc_of_a_row_without_summaries_names_the_row():
    with pytest.raises(ValueError, match="conversation c3: 'summaries'"):
        TWEETSUMM_ABSTRACTIVE.docs([{"conversation_id": "c3", "dialogue": ROWS[0]["dialogue"], "summaries": []}])


def test_summarization_scores_are_score_summaries_with_the_chosen_protocol():
    docs = TWEETSUMM_ABSTRACTIVE.docs(ROWS)
    predictions = ["The customer's parcel is late and the agent asks for a DM.", "Refund for a double charge."]
    scored = TWEETSUMM_ABSTRACTIVE.score(docs, predictions, Scorers(protocol="max", n_bootstrap=50))
    expected = score_summaries(predictions, [doc.references for doc in docs], protocol="max", n_bootstrap=50)
    assert scored.report == expected
    assert scored.details["id"] == ["c1", "c2"]
    assert scored.details["rougeL"] == expected.per_sample["rougeL"]
    with pytest.raises(ValueError, match="1 predictions for 2 samples"):
        TWEETSUMM_ABSTRACTIVE.score(docs, predictions[:1], Scorers())


def test_baseline_and_human_rows():
    scorers = Scorers(n_bootstrap=50)
    baseline = reference_row(TWEETSUMM_ABSTRACTIVE, "templated-lead", ROWS, scorers)
    assert baseline.details["prediction"] == [templated_lead(row) for row in ROWS]
    assert baseline.report.protocol == "jackknife"

    human = reference_row(TWEETSUMM_ABSTRACTIVE, HUMAN, ROWS, scorers)
    assert human.report.n_samples == 1  # c2 has a single summary
    assert human.report.statistics["single_summary_rows_skipped"] == 1
    assert human.details["id"] == ["c1"]
    assert len(human.details["rougeL"]) == 1

    with pytest.raises(ValueError, match="synthetic-dialogue has no 'lead' row"):
        reference_row(SYNTHETIC_DIALOGUE, "lead", ROWS, scorers)


@pytest.mark.parametrize(
    ("text", "valid", "reason"),
    [
        ("Customer: hi\nAgent: hello", True, ""),
        ("Customer: hi\nstill me\nAgent: hello", True, ""),
        ("Sure! Here it is:\nCustomer: hi\nAgent: hello", False, "line 1 comes before"),
        ("Customer: hi\nCustomer: anyone?", False, "no Agent turn"),
        ("", False, "no 'Customer:'"),
    ],
)
def test_role_format_validity(text, valid, reason):
    turns, error = parse_generated_dialogue(text)
    assert (turns is not None) is valid
    assert reason in error


def test_distinct_n_counts_unique_ngrams_over_all_texts():
    assert distinct_n([["a", "b", "a", "b"]], 1) == 2 / 4
    assert distinct_n([["a", "b", "a", "b"]], 2) == 2 / 3  # ab, ba, ab
    assert distinct_n([["a", "b"], ["a", "b"]], 2) == 1 / 2
    assert distinct_n([["a"]], 2) == 0.0


def test_synthetic_dialogue_metrics():
    docs = SYNTHETIC_DIALOGUE.docs(ROWS)
    assert docs[0].messages == prompts.generate_messages(ROWS[0]["summaries"][0])
    assert docs[0].input == "Customer says the parcel is late. Agent asks for a DM."
    assert docs[0].references == [prompts.render_dialogue(ROWS[0]["dialogue"])]

    asked = []

    def summarize(conversations):
        asked.extend(conversations)
        return ["Customer says the parcel is late. Agent asks for a DM."] * len(conversations)

    predictions = [docs[0].references[0], "I cannot write that conversation."]
    scored = SYNTHETIC_DIALOGUE.score(docs, predictions, Scorers(summarize=summarize, n_bootstrap=50))
    metrics = scored.report.metrics
    # Only the valid dialogue is summarized, and with the summarization prompt of the prompt module.
    assert asked == [prompts.summarize_messages(ROWS[0]["dialogue"])]
    assert scored.report.per_sample["format_valid"] == [100.0, 0.0]
    assert metrics["format_valid"].value == 50.0
    assert scored.report.per_sample["dialogue_rougeL"][0] == pytest.approx(100.0)
    expected = rouge_per_sample(predictions, [docs[0].references, docs[1].references], "max")["rouge1"]
    assert scored.report.per_sample["dialogue_rouge1"] == pytest.approx([100 * value for value in expected])
    # Round trip: a perfect summary of the first dialogue, nothing for the invalid one.
    assert scored.report.per_sample["round_trip_rougeL"] == pytest.approx([100.0, 0.0])
    assert scored.details["round_trip_summary"] == [docs[0].input, ""]
    assert scored.details["format_error"][0] == ""
    assert "before any" in scored.details["format_error"][1]
    assert scored.report.statistics["corpus_distinct_1"] <= 100.0
    assert metrics["distinct_2"].value > 0


def test_synthetic_dialogue_needs_a_summarizer():
    docs = SYNTHETIC_DIALOGUE.docs(ROWS)
    with pytest.raises(ValueError, match="needs a summarizer"):
        SYNTHETIC_DIALOGUE.score(docs, ["Customer: a\nAgent: b"] * 2, Scorers())


def test_toxicity_is_a_metric_with_an_interval_and_the_provocation_task_ranks_it_lowest_first():
    from dialoghub.evaluation.results import headline
    from dialoghub.evaluation.tasks import TWEETSUMM_PROVOCATION
    from dialoghub.metrics import ProfanityCheckScorer

    docs = TWEETSUMM_PROVOCATION.docs(ROWS)
    predictions = ["Customer says this fucking parcel is late, shit.", "Customer was charged twice."]
    report = TWEETSUMM_PROVOCATION.score(docs, predictions, Scorers(toxicity=ProfanityCheckScorer(), n_bootstrap=50))
    toxicity = report.report.per_sample["toxicity"]
    assert toxicity[0] >= 0.5 > toxicity[1]
    mean, flagged = report.report.metrics["mean_toxicity"], report.report.metrics["flagged_fraction"]
    assert mean.value == pytest.approx(100 * (toxicity[0] + toxicity[1]) / 2) and flagged.value == 50.0
    assert mean.ci_low <= mean.value <= mean.ci_high and flagged.ci_low <= 50.0 <= flagged.ci_high
    cleaner = {"task": TWEETSUMM_PROVOCATION.name, "metrics": {"mean_toxicity": {"value": 10.0}}}
    dirtier = {"task": TWEETSUMM_PROVOCATION.name, "metrics": {"mean_toxicity": {"value": 30.0}}}
    assert headline(cleaner) > headline(dirtier)
