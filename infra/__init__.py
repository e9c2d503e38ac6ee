"""Infrastructure as code: templates (resources.yaml, service.yaml) and the tool that joins them."""
