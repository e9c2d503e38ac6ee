"""The shared domain core. Imports only the standard library: the Lambda code and the
provider runtime both build on it."""
