"""Stage: the Gradio demo Space."""
