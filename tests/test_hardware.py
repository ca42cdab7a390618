"""The speed defaults follow the CPU: bfloat16 only with bf16 matrix instructions (AMX or AVX512-BF16)."""

import pytest

from dialoghub.core import recipes
from dialoghub.core.recipes import CpuFeatures

INTEL_AMX = CpuFeatures(capability="AVX512", amx=True, avx512_bf16=True, cores=2)
AMD_ZEN4 = CpuFeatures(capability="AVX512", amx=False, avx512_bf16=True, cores=2)
AVX512_NO_BF16 = CpuFeatures(capability="AVX512", amx=False, avx512_bf16=False, cores=4)
AMD_AVX2 = CpuFeatures(capability="AVX2", amx=False, avx512_bf16=False, cores=2)


@pytest.mark.parametrize(
    ("features", "expected"),
    [(INTEL_AMX, "bfloat16"), (AMD_ZEN4, "bfloat16"), (AVX512_NO_BF16, "float32"), (AMD_AVX2, "float32")],
)
def test_auto_dtype_is_bfloat16_only_with_bf16_matrix_instructions(features, expected):
    assert recipes.fast_cpu_dtype(features) == expected
    assert recipes.resolve_dtype("auto", "cpu", features) == expected
    assert recipes.resolve_dtype(None, "cpu", features) == expected
    assert expected in recipes.describe_cpu(features)


def test_an_explicit_dtype_is_kept_and_gpus_keep_the_stored_dtype():
    assert recipes.resolve_dtype("float32", "cpu", INTEL_AMX) == "float32"
    assert recipes.resolve_dtype("bfloat16", "cpu", AMD_AVX2) == "bfloat16"
    assert recipes.resolve_dtype("auto", "cuda", AMD_AVX2) == "auto"


def test_threads_follow_the_usable_cores():
    assert recipes.default_threads(AVX512_NO_BF16) == 4
    assert recipes.default_threads() == recipes.cpu_features().cores >= 1


def test_this_machine_is_described():
    features = recipes.cpu_features()
    assert features.native_bf16 == (features.amx or features.avx512_bf16)
    assert recipes.describe_cpu(features).endswith(f"{recipes.fast_cpu_dtype(features)} by default")
