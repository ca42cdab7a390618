"""llama.cpp (the prebuilt `xllamacpp` wheel: its generic x86-64 build picks AVX2 or AVX-512 kernels at run time)
serving a GGUF file in-process, one parallel slot per row of a batch.

llama.cpp's sampler defaults differ from transformers' (top-k 40, min-p 0.05, a repetition penalty over the last 64
tokens only); every one is set so that the settings mean what they mean for transformers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dialoghub.core.hardware import default_threads
from dialoghub.models.backends.engine_base import Engine

CONTEXT_PER_SLOT = 2048


class LlamaCppEngine(Engine):
    name = "llamacpp"
    precision = "float32"

    def __init__(self, gguf_path: str | Path, tokenizer, eos_ids: Sequence[int], *, max_batch: int = 32) -> None:
        super().__init__(tokenizer, eos_ids)
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(gguf_path)
        params.n_parallel = max_batch
        params.n_ctx = CONTEXT_PER_SLOT * max_batch
        params.n_batch = 2048
        params.cpuparams.n_threads = default_threads()
        params.cpuparams_batch.n_threads = default_threads()
        params.warmup = False
        self.max_batch = max_batch
        self.server = xllamacpp.Server(params)

    def _request(self, prompt: list[int], settings, seed: int) -> dict:
        request = {
            "prompt": prompt,
            "n_predict": settings.max_new_tokens,
            "cache_prompt": False,
            "return_tokens": True,
            "seed": seed,
            "temperature": settings.temperature if settings.do_sample else 0.0,
            "top_p": settings.top_p if settings.do_sample else 1.0,
            "top_k": (settings.top_k or 0) if settings.do_sample else 0,
            "min_p": 0.0,
            "typical_p": 1.0,
            "repeat_penalty": settings.repetition_penalty,
            "repeat_last_n": -1,  # the whole context, as transformers applies it
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
        }
        return request

    def _complete(self, request: dict) -> list[int]:
        response = self.server.handle_completions(request)
        if isinstance(response, str):
            response = json.loads(response)
        if "error" in response:
            raise RuntimeError(f"llama.cpp: {response['error']}")
        tokens = list(response["tokens"])
        if response.get("stop_type") == "eos" and not (tokens and tokens[-1] in self.eos_ids):
            tokens.append(self.eos_ids[0])  # llama.cpp drops the end-of-turn token it stopped at
        return tokens

    def generate_ids(self, prompts: list[list[int]], settings, seeds: list[int]) -> list[list[int]]:
        requests = [self._request(prompt, settings, seed) for prompt, seed in zip(prompts, seeds, strict=True)]
        with ThreadPoolExecutor(min(self.max_batch, len(requests))) as pool:
            return list(pool.map(self._complete, requests))
