"""The local stack: moto in server mode, chalice local, the SQS loop and the local launcher."""
