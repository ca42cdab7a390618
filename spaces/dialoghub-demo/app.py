"""dialoghub demo Space: summarize a support dialogue, or write one from a summary, with the published adapters.

Repos come from the Hub that HF_ENDPOINT names; override them with DIALOGHUB_DEMO_BASE_MODEL,
DIALOGHUB_DEMO_SUMMARIZER_ADAPTER, DIALOGHUB_DEMO_GENERATOR_ADAPTER (each ID or ID@REV), DIALOGHUB_DEMO_DATASET and
DIALOGHUB_DEMO_RESULTS_REPO. With DIALOGHUB_INFERENCE_URL set (the variable the Hub's pages read), the models run on
that chat-completions endpoint instead of in this process.
"""

import dialoghub.core.hubenv  # noqa: F401

from dialoghub.demo.app import DemoConfig, build_demo

demo = build_demo(DemoConfig.from_env())

if __name__ == "__main__":
    demo.launch()
