"""The inference server: the chat-completions API over the project's models and adapters on the Hub."""
