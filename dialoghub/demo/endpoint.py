"""The demo's models run on a chat-completions endpoint (`python -m dialoghub.inference serve`, or `make hub`'s
server on :8766) instead of in the demo's process, asked exactly as any user asks it: `huggingface_hub.InferenceClient`
with the messages `dialoghub.models.prompts` renders and the demo's decoding settings."""

from __future__ import annotations

from dataclasses import dataclass, fields

from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, HTTPError

from dialoghub.models.decoding import GenerationSettings

# Generating the longest answer (prompts.ANSWER_MAX_NEW_TOKENS) on a CPU takes minutes; past this the UI says so.
ENDPOINT_TIMEOUT_S = 600.0
# Settings the chat-completions API carries; any other one set away from its default would be silently dropped.
CHAT_API_SETTINGS = {"max_new_tokens", "do_sample", "temperature", "top_p", "seed", "batch_size"}


class EndpointError(RuntimeError):
    """The endpoint did not answer, or answered with an error; the message says which, for the UI."""


def chat_parameters(settings: GenerationSettings) -> dict[str, float | int]:
    """`chat_completion` keyword arguments that decode as `settings` does: greedy is temperature 0, as on the
    OpenAI API and this project's server; sampling sends its temperature, top_p and seed."""
    defaults = GenerationSettings()
    unsupported = [
        item.name
        for item in fields(GenerationSettings)
        if item.name not in CHAT_API_SETTINGS and getattr(settings, item.name) != getattr(defaults, item.name)
    ]
    if unsupported:
        raise ValueError(f"The chat-completions API cannot carry these decoding settings: {', '.join(unsupported)}")
    if not settings.do_sample:
        return {"max_tokens": settings.max_new_tokens, "temperature": 0.0}
    return {
        "max_tokens": settings.max_new_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "seed": settings.seed,
    }


@dataclass
class EndpointModel:
    """`model` (a Hub repo `ID` or `ID@REV`, as the endpoint takes it) run by the endpoint at `url`."""

    url: str
    model: str
    note: str

    def answer(self, messages: list[dict[str, str]], settings: GenerationSettings) -> str:
        client = InferenceClient(base_url=self.url, timeout=ENDPOINT_TIMEOUT_S)
        try:
            output = client.chat_completion(messages, model=self.model, **chat_parameters(settings))
        except HfHubHTTPError as error:  # it answered, with an error status
            raise EndpointError(f"The inference endpoint {self.url} refused {self.model}: {error}") from error
        except HTTPError as error:  # any other transport error: refused, reset or timed out, so no answer at all
            raise EndpointError(
                f"The inference endpoint {self.url} did not answer ({type(error).__name__}: {error}). Start it "
                "(`make hub` serves one on :8766), or unset inference_url to run the models in the demo."
            ) from error
        content = output.choices[0].message.content if output.choices else None
        if content is None:
            raise EndpointError(f"The inference endpoint {self.url} returned no text for {self.model}")
        return content.strip()
