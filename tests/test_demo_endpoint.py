"""The demo on the inference endpoint: with `inference_url` set, the demo's summarize and generate functions ask the
real inference server (a separate process, on a tiny adapter published to the test Hub) through `InferenceClient` and
give the same text as the demo's in-process models; with the server down or refusing, the UI gets a clear error."""

import gradio as gr
import httpx
import pytest

from dialoghub.demo.app import LoadedModel, generate_dialogue, load_with_adapter, summarize
from dialoghub.demo.endpoint import EndpointModel, chat_parameters
from dialoghub.models.decoding import GenerationSettings
from dialoghub.models.prompts import generate_messages
from tests.test_inference_server import InferenceServer, publish_tiny_adapter

DIALOGUE = "Customer: my order is late.\nAgent: sorry, let me check the tracking number."
SUMMARY = "The customer's order is late; the agent checks the tracking."
MAX_NEW_TOKENS = 8


def loaded_repos(server_url: str) -> list[str]:
    return [model["id"] for model in httpx.get(f"{server_url}/v1/models").json()["data"]]


def test_the_demo_answers_through_the_endpoint_as_it_does_in_process(hub, hub_api, repo_name, tmp_path):
    tiny = publish_tiny_adapter(hub_api, repo_name, tmp_path / "tiny")
    missing_generator = f"{repo_name}-no-generator"
    in_process_summarizer = load_with_adapter(tiny.base, tiny.adapter, "Summarize")
    in_process_writer = load_with_adapter(tiny.base, missing_generator, "Generate")
    assert isinstance(in_process_summarizer, LoadedModel)
    expected_summary = summarize(in_process_summarizer, DIALOGUE, MAX_NEW_TOKENS)
    expected_dialogue = generate_dialogue(in_process_writer, SUMMARY, MAX_NEW_TOKENS)
    sampling = GenerationSettings(
        max_new_tokens=MAX_NEW_TOKENS, do_sample=True, temperature=0.8, top_p=0.9, seed=3, batch_size=1
    )
    expected_sampled = in_process_writer.answer(generate_messages(SUMMARY), sampling)
    assert expected_summary, "the tiny adapter answers the prompt with some text"

    server = InferenceServer(hub.endpoint, tmp_path / "inference.log")
    try:
        assert loaded_repos(server.url) == []
        summarizer = load_with_adapter(tiny.base, tiny.adapter, "Summarize", server.url)
        writer = load_with_adapter(tiny.base, missing_generator, "Generate", server.url)
        assert isinstance(summarizer, EndpointModel) and summarizer.model == tiny.adapter
        assert writer.model == tiny.base and "zero-shot" in writer.note  # no adapter published: the base model

        assert summarize(summarizer, DIALOGUE, MAX_NEW_TOKENS) == expected_summary
        assert loaded_repos(server.url) == [tiny.adapter]  # the server ran it, not this process
        assert generate_dialogue(writer, SUMMARY, MAX_NEW_TOKENS) == expected_dialogue
        assert writer.answer(generate_messages(SUMMARY), sampling) == expected_sampled  # the same seeded sampling

        pinned = load_with_adapter(tiny.base, f"{tiny.adapter}@{tiny.adapter_sha}", "Summarize", server.url)
        assert summarize(pinned, DIALOGUE, MAX_NEW_TOKENS) == expected_summary
        with pytest.raises(gr.Error, match=r"refused tests/not-on-the-hub: .*404"):
            summarize(EndpointModel(server.url, "tests/not-on-the-hub", "Summarize"), DIALOGUE, MAX_NEW_TOKENS)
    finally:
        server.stop()
    assert "Traceback" not in server.log_path.read_text()

    with pytest.raises(gr.Error, match=rf"The inference endpoint {server.url} did not answer .*make hub"):
        summarize(summarizer, DIALOGUE, MAX_NEW_TOKENS)


def test_decoding_settings_map_to_chat_completion_parameters():
    assert chat_parameters(GenerationSettings(max_new_tokens=16, batch_size=1)) == {
        "max_tokens": 16,
        "temperature": 0.0,
    }
    sampled = GenerationSettings(max_new_tokens=16, do_sample=True, temperature=0.7, top_p=0.9, seed=5, batch_size=1)
    assert chat_parameters(sampled) == {"max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "seed": 5}
    with pytest.raises(ValueError, match="num_beams"):
        chat_parameters(GenerationSettings(num_beams=2))
