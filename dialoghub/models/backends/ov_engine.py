"""OpenVINO GenAI's continuous-batching pipeline on a GGUF file, on CPU.

Precision is pinned to what transformers computes on an AVX2 CPU: float32 activations (`INFERENCE_PRECISION_HINT`),
a float32 KV cache (OpenVINO's CPU default is u8) and no dynamic int8 quantization of activations (its default for
compressed weights). The weights are the GGUF's (the base's own Q4_1 blocks, or float32 after a merge), the same
values the transformers path holds dequantized.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dialoghub.models.backends.engine_base import Engine

# Float32 compute and KV cache: the transformers path's numbers (OpenVINO's CPU defaults are u8 KV, int8 activations).
EXACT_PROPERTIES = {
    "INFERENCE_PRECISION_HINT": "f32",
    "KV_CACHE_PRECISION": "f32",
    "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
}
KV_CACHE_GB = 2


class OpenVinoEngine(Engine):
    name = "openvino"
    precision = "float32"

    def __init__(self, gguf_path: str | Path, tokenizer, eos_ids: Sequence[int], *, max_batch: int = 32) -> None:
        super().__init__(tokenizer, eos_ids)
        import openvino_genai

        scheduler = openvino_genai.SchedulerConfig()
        scheduler.cache_size = KV_CACHE_GB
        scheduler.max_num_seqs = max_batch
        scheduler.max_num_batched_tokens = 4096
        scheduler.dynamic_split_fuse = True
        self.pipeline = openvino_genai.ContinuousBatchingPipeline(str(gguf_path), scheduler, "CPU", EXACT_PROPERTIES)

    def _config(self, settings, seed: int):
        import openvino_genai

        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = settings.max_new_tokens
        config.do_sample = settings.do_sample
        if settings.do_sample:
            config.temperature = settings.temperature
            config.top_p = settings.top_p
            config.top_k = settings.top_k or 0
            config.rng_seed = seed
        config.repetition_penalty = settings.repetition_penalty
        config.stop_token_ids = set(self.eos_ids)
        config.eos_token_id = self.eos_ids[0]
        return config

    def generate_ids(self, prompts: list[list[int]], settings, seeds: list[int]) -> list[list[int]]:
        import numpy as np
        import openvino as ov

        inputs = [ov.Tensor(np.array([ids], dtype=np.int64)) for ids in prompts]
        configs = [self._config(settings, seed) for seed in seeds]
        results = self.pipeline.generate(inputs, configs)
        return [list(result.m_generation_ids[0]) for result in results]
