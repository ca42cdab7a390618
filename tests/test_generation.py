"""The shared generator: revisions resolved to shas, batched = one at a time, seeded sampling, loop stopping,
adapters. Models are the scripted tiny Llama (tests/scripted_model.py), published to the real embedded Hub."""

import dataclasses
import json

import pytest
from huggingface_hub import HfApi

from dialoghub.hub.client import resolve_repo, split_revision
from dialoghub.models import prompts
from dialoghub.models.generation import (
    STOP_EOS,
    STOP_LENGTH,
    STOP_LOOP,
    GenerationSettings,
    load_generator,
)
from tests.scripted_model import AGENT_CLOSINGS, CUSTOMER_OPENERS, FILLER, dialogue_script, save_scripted_model

SUMMARIES = [
    "Customer cannot log in.",
    "The customer says the parcel is late and asks where it is; the agent asks for the order number in a DM.",
    "Refund.",
    "Customer is complaining about a double charge. Agent refunds it.",
    "Customer asks about a cancelled flight and the agent rebooks it.",
]


@pytest.fixture(scope="module")
def scripted_repo(hub, tmp_path_factory):
    """The scripted model (half its dialogues end in a loop) on the Hub, tagged v1; a second commit on main."""
    api = HfApi(endpoint=hub.endpoint)
    folder = save_scripted_model(tmp_path_factory.mktemp("scripted"), dialogue_script(loop_after_closing=True))
    repo_id = "tests/scripted-generator"
    api.create_repo(repo_id, exist_ok=True)
    first = api.upload_folder(repo_id=repo_id, folder_path=folder).oid
    api.create_tag(repo_id, tag="v1", revision=first)
    second = api.upload_file(repo_id=repo_id, path_or_fileobj=b"notes", path_in_repo="NOTES.md").oid
    return {"repo_id": repo_id, "v1": first, "main": second, "folder": folder}


@pytest.fixture(scope="module")
def generator(scripted_repo):
    return load_generator(f"{scripted_repo['repo_id']}@v1")


def conversations():
    return [prompts.generate_messages(summary) for summary in SUMMARIES]


def test_settings_round_trip_through_json_and_reject_bad_values():
    settings = GenerationSettings(max_new_tokens=64, do_sample=True, temperature=0.7, top_p=0.9, seed=3, stop_loops=3)
    assert GenerationSettings.from_json(settings.to_json()) == settings
    assert json.loads(settings.to_json())["temperature"] == 0.7
    with pytest.raises(ValueError, match="unknown generation setting"):
        GenerationSettings.from_dict({"max_new_tokens": 8, "beams": 4})
    with pytest.raises(ValueError, match="batch_size must be >= 1.*top_p must be in"):
        GenerationSettings(batch_size=0, top_p=1.5)
    with pytest.raises(ValueError, match="stop_loops"):
        GenerationSettings(stop_loops=1)
    greedy = GenerationSettings(temperature=0.5).transformers_kwargs()
    assert greedy == {"max_new_tokens": 256, "do_sample": False}, "greedy decoding must not carry sampling knobs"


def test_revisions_resolve_to_commit_shas(scripted_repo, tmp_path):
    repo_id = scripted_repo["repo_id"]
    assert split_revision("org/model@v1.0") == ("org/model", "v1.0")
    assert split_revision("org/model") == ("org/model", None)
    assert resolve_repo(f"{repo_id}@v1").sha == scripted_repo["v1"]
    assert resolve_repo(repo_id).sha == scripted_repo["main"]
    assert resolve_repo(repo_id, revision=scripted_repo["v1"]).revision == scripted_repo["v1"]
    local = resolve_repo(str(scripted_repo["folder"]))
    assert (local.sha, local.is_local) == (None, True)
    with pytest.raises(ValueError, match="has no revision 'v9'"):
        resolve_repo(f"{repo_id}@v9")
    with pytest.raises(ValueError, match="no model repo 'tests/nowhere'"):
        resolve_repo("tests/nowhere")
    with pytest.raises(ValueError, match="names revision 'v1' but revision='main'"):
        resolve_repo(f"{repo_id}@v1", revision="main")


def test_generator_records_what_it_loaded(generator, scripted_repo):
    provenance = generator.provenance()
    assert provenance["model_id"] == scripted_repo["repo_id"]
    assert (provenance["model_revision"], provenance["model_sha"]) == ("v1", scripted_repo["v1"])
    assert provenance["adapter_id"] is None
    assert provenance["prompt_version"] == prompts.PROMPT_VERSION
    assert generator.tokenizer.padding_side == "left"


def test_beam_search_settings_reach_generate_and_decode_every_prompt(generator):
    with pytest.raises(ValueError, match="beam search"):
        GenerationSettings(num_beams=4, stop_loops=3)
    with pytest.raises(ValueError, match="beam search"):
        GenerationSettings(num_beams=4, do_sample=True)
    beams = GenerationSettings(max_new_tokens=12, num_beams=3, length_penalty=0.5, no_repeat_ngram_size=3)
    assert beams.transformers_kwargs() == {
        "max_new_tokens": 12,
        "do_sample": False,
        "num_beams": 3,
        "length_penalty": 0.5,
        "early_stopping": True,
        "no_repeat_ngram_size": 3,
    }
    completions = generator.generate(conversations(), dataclasses.replace(beams, batch_size=2), progress=False)
    assert len(completions) == len(SUMMARIES)
    assert all(any(completion.text.startswith(opener) for opener in CUSTOMER_OPENERS) for completion in completions)


def test_batched_generation_equals_one_at_a_time_and_keeps_the_order(generator):
    settings = GenerationSettings(max_new_tokens=12, batch_size=2)
    batched = generator.generate(conversations(), settings, progress=False)
    single = [
        generator.generate([conversation], GenerationSettings(max_new_tokens=12, batch_size=1), progress=False)[0]
        for conversation in conversations()
    ]
    assert [completion.text for completion in batched] == [completion.text for completion in single]
    # The prompts differ in length (left padding in a batch), and the order of the answers is the order asked.
    assert len({completion.prompt_tokens for completion in batched}) == len(SUMMARIES)
    assert [completion.prompt_tokens for completion in batched] == [completion.prompt_tokens for completion in single]
    # Greedy decoding follows one branch of the script and ends the turn.
    assert len({completion.text for completion in batched}) == 1
    assert any(batched[0].text.startswith(opener) for opener in CUSTOMER_OPENERS)
    assert all(completion.stop_reason == STOP_EOS and completion.finished for completion in batched)


def test_sampling_is_reproducible_with_its_seed(generator):
    def texts(seed):
        settings = GenerationSettings(max_new_tokens=12, do_sample=True, seed=seed, batch_size=3)
        return [completion.text for completion in generator.generate(conversations(), settings, progress=False)]

    first = texts(1)
    assert texts(1) == first
    assert texts(2) != first
    assert len(set(first)) > 1, "sampling from the script gives different dialogues"


def loops(text: str) -> bool:
    return FILLER * 3 in text


def test_length_and_loop_stops_are_reported(generator):
    # With enough prompts, some samples take the looping branch after the closing line.
    many = conversations() * 4
    cut = generator.generate(many, GenerationSettings(max_new_tokens=30, do_sample=True, seed=0), progress=False)
    looped = [completion for completion in cut if loops(completion.text)]
    assert looped and all(completion.stop_reason == STOP_LENGTH for completion in looped)
    assert all(completion.new_tokens == 30 for completion in looped)
    assert all(completion.stop_reason == STOP_EOS for completion in cut if not loops(completion.text))

    settings = GenerationSettings(max_new_tokens=30, do_sample=True, seed=0, stop_loops=3)
    stopped = generator.generate(many, settings, progress=False)
    for before, after in zip(cut, stopped, strict=True):
        if loops(before.text):
            assert after.stop_reason == STOP_LOOP
            assert after.new_tokens < 30
            assert after.text.startswith(before.text[: before.text.index(FILLER * 3)])
        else:
            assert (after.text, after.stop_reason) == (before.text, STOP_EOS)
    assert any(closing in after.text for after in stopped for closing in AGENT_CLOSINGS)


def test_an_adapter_is_loaded_at_its_revision_and_merged(scripted_repo, hub, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    api = HfApi(endpoint=hub.endpoint)
    base = AutoModelForCausalLM.from_pretrained(scripted_repo["folder"])
    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    adapted = get_peft_model(base, lora)
    adapted.peft_config["default"].base_model_name_or_path = scripted_repo["repo_id"]
    adapted.peft_config["default"].revision = "v1"
    adapted.save_pretrained(tmp_path / "adapter")
    adapter_id = "tests/scripted-adapter"
    api.create_repo(adapter_id, exist_ok=True)
    adapter_sha = api.upload_folder(repo_id=adapter_id, folder_path=tmp_path / "adapter").oid
    api.create_tag(adapter_id, tag="v1", revision=adapter_sha)

    # No model given: the adapter's own base (and revision) from adapter_config.json.
    merged = load_generator(None, f"{adapter_id}@v1")
    assert merged.adapter_merged
    assert merged.provenance() | {"backend": None} == {
        "model_id": scripted_repo["repo_id"],
        "model_revision": "v1",
        "model_sha": scripted_repo["v1"],
        "adapter_id": adapter_id,
        "adapter_revision": "v1",
        "adapter_sha": adapter_sha,
        "backend": None,
        "prompt_version": prompts.PROMPT_VERSION,
    }
    unmerged = load_generator(f"{scripted_repo['repo_id']}@v1", f"{adapter_id}@v1", merge_adapter=False)
    assert not unmerged.adapter_merged
    plain = load_generator(f"{scripted_repo['repo_id']}@v1")
    settings = GenerationSettings(max_new_tokens=6)
    merged_texts = [c.text for c in merged.generate(conversations(), settings, progress=False)]
    unmerged_texts = [c.text for c in unmerged.generate(conversations(), settings, progress=False)]
    plain_texts = [c.text for c in plain.generate(conversations(), settings, progress=False)]
    assert merged_texts == unmerged_texts
    assert merged_texts != plain_texts, "the adapter changes what the model writes"
