"""The provider runtime: the program each instance's task runs. One runtime for every provider
(instance API, key checks, status reporting, event publishing, logs); engines plug into it."""
