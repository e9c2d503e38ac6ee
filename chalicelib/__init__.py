"""Everything the Lambda needs: the shared core, use cases, adapters and their wiring."""
