"""The embedded Hub server: the Hub HTTP API over bare git repos (`python -m dialoghub.hub serve`)."""
