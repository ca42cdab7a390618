"""The non-model baselines over rows of the tweetsumm-clean schema."""

import json
from statistics import fmean

import pytest

from dialoghub.core.paths import shared_data_dir
from dialoghub.evaluation.baselines import TEMPLATED_LEAD, baseline_predictions, lead, templated_lead
from dialoghub.metrics import rouge_per_sample

ROW = {
    "conversation_id": "c1",
    "dialogue": [
        {"role": "Customer", "text": "My watchlist is not updating. Any idea why?"},
        {"role": "Agent", "text": "Sorry for the trouble! We're looking into this."},
        {"role": "Customer", "text": "Thanks."},
        {"role": "Agent", "text": "Anytime."},
    ],
    "summaries": ["Customer is complaining that the watchlist is not updating. Agent says they are looking into it."],
}


def test_lead_and_templated_lead_use_the_first_customer_and_agent_turns():
    assert lead(ROW) == "My watchlist is not updating. Any idea why? Sorry for the trouble! We're looking into this."
    assert templated_lead(ROW) == (
        "Customer is complaining that My watchlist is not updating. Any idea why? "
        "Agent Sorry for the trouble! We're looking into this."
    )
    assert TEMPLATED_LEAD == "Customer is complaining that {customer} Agent {agent}"


def test_agent_first_dialogues_and_dialogues_without_agent():
    agent_first = {**ROW, "dialogue": [ROW["dialogue"][1], ROW["dialogue"][0]]}
    assert lead(agent_first) == lead(ROW)
    customer_only = {**ROW, "dialogue": ROW["dialogue"][:1]}
    assert lead(customer_only) == "My watchlist is not updating. Any idea why?"
    assert (
        templated_lead(customer_only)
        == "Customer is complaining that My watchlist is not updating. Any idea why? Agent"
    )


@pytest.mark.parametrize(
    ("dialogue", "message"),
    [
        ([], "c9: the row has no dialogue turns"),
        ([{"role": "Agent", "text": "Hello"}], "c9: the dialogue has no Customer turn"),
        ([{"role": "Customer"}], "c9: dialogue turn 0 is not a {role, text} mapping"),
    ],
)
def test_bad_rows_name_the_conversation(dialogue, message):
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        lead({"conversation_id": "c9", "dialogue": dialogue})


def test_unknown_baseline_is_rejected():
    with pytest.raises(ValueError, match="unknown baseline 'oracle'"):
        baseline_predictions("oracle", [ROW])


def _validation_rows(limit: int) -> list[dict]:
    """The first validation dialogs of the raw corpus in the tweetsumm-clean schema (without its text cleaning)."""
    path = shared_data_dir() / "tweetsumm" / "valid.jsonl"
    rows = []
    with path.open(encoding="utf-8") as lines:
        for line, _ in zip(lines, range(limit), strict=False):
            record = json.loads(line)
            rows.append(
                {
                    "conversation_id": record["dialog"]["dialog_id"],
                    "dialogue": [
                        {"role": "Agent" if turn["is_agent"] else "Customer", "text": " ".join(turn["sentences"])}
                        for turn in record["dialog"]["turns"]
                    ],
                    "summaries": [" ".join(summary) for summary in record["summaries"]["abstractive_summaries"]],
                }
            )
    return rows


def test_template_words_lift_rouge_above_the_plain_lead():
    rows = _validation_rows(30)
    references = [row["summaries"] for row in rows]
    plain = rouge_per_sample(baseline_predictions("lead", rows), references, "jackknife")
    templated = rouge_per_sample(baseline_predictions("templated-lead", rows), references, "jackknife")
    # Measured on these 30 dialogs: R1 32.4 -> 39.8, R2 17.5 -> 19.8, RL 28.1 -> 34.5.
    assert fmean(templated["rouge1"]) > fmean(plain["rouge1"]) + 0.05
    assert fmean(templated["rougeL"]) > fmean(plain["rougeL"]) + 0.05
    assert fmean(templated["rouge2"]) > fmean(plain["rouge2"])
