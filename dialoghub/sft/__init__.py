"""Stage: supervised LoRA/QLoRA fine-tuning of the summarizer and dialogue-generator adapters."""
