"""Below every model stage: the conversation renderer and parser, the base models, model loading and generation, and
the adapter release path."""
