"""The client side of the Hub: publishing, repo references and the embedded Hub session."""
