"""Stage: reward tuning of the summarizer with trl's GRPO."""
